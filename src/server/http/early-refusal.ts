import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, keyAccepted } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { tooLarge, tooManyConnections } from '../errors.ts';

/** Oversized bodies up to this size are read and discarded after the 413; larger ones get Connection: close. */
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * What is answered in Node before Hono sees the request, and why there:
 * - over --max-connections: a full server should spend nothing on the request (ops routes are still answered,
 *   but no connection over the cap is kept alive);
 * - a declared body over --max-body-bytes: refused before a byte is read and drained (nginx's lingering close,
 *   in effect), so the client can read its 413 and reuse the connection; Hono's bodyLimit would cancel the
 *   request stream and reset the socket mid-upload. Unauthorised requests are left to Hono's 401.
 * Returns true when it answered.
 */
export function answeredEarly(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): boolean {
  if (ctx.connections.over(req.socket)) {
    res.shouldKeepAlive = false;
    if (ctx.connections.refuses(req.socket, req.url)) {
      ctx.metrics.countError('too_many_connections');
      tooManyConnections(ctx.connections.limit).writeTo(req, res);
      return true;
    }
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (
    declared > ctx.config.maxBodyBytes &&
    /^\/(v1\/|tokenize|detokenize)/.test(req.url ?? '') &&
    keyAccepted(ctx.config.apiKey, bearerToken(req.headers.authorization))
  ) {
    ctx.metrics.countError('too_large');
    tooLarge(ctx.config.maxBodyBytes).writeTo(req, res, declared <= DRAIN_LIMIT_BYTES);
    return true;
  }
  return false;
}
