import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { bearerToken, keyAccepted } from '../auth.ts';
import { createContext, type ServerContext, type ServerDeps } from '../context.ts';
import { ApiError, type ErrorCode, toApiError, tooLarge } from '../errors.ts';
import { playgroundRoutes } from '../playground/routes.ts';
import { openaiRoutes } from './openai.ts';
import { infoRoutes, opsRoutes } from './ops.ts';
import { tokenizeRoutes } from './tokenize.ts';
import type { AppEnv } from './types.ts';

function fromHttpException(e: HTTPException): ApiError {
  const byStatus: Record<number, ErrorCode> = { 400: 'invalid_request', 401: 'unauthorized', 404: 'not_found', 413: 'too_large' };
  return new ApiError(byStatus[e.status] ?? 'internal', e.message || `HTTP ${e.status}`);
}

/**
 * The HTTP API as a Hono app. Routes:
 *   GET  /health, /ready, /metrics                      (open)
 *   POST /v1/completions, /v1/chat/completions          (API key when configured)
 *   GET  /v1/models, /v1/streams/recent                 (API key when configured)
 *   POST /tokenize, /detokenize                         (API key when configured; vLLM's paths)
 * Every error leaves as OpenAI's envelope via the one table in ../errors.ts.
 */
export function createApp(deps: ServerDeps | ServerContext): Hono<AppEnv> {
  const ctx = 'runner' in deps ? deps : createContext(deps);
  const app = new Hono<AppEnv>();

  app.onError((err, c) => {
    const e = err instanceof HTTPException ? fromHttpException(err) : toApiError(err);
    ctx.metrics.countError(e.code);
    if (e.code === 'internal') ctx.logger.error({ err, path: c.req.path }, 'request failed');
    else ctx.logger.debug({ code: e.code, path: c.req.path, msg: e.message }, 'request refused');
    return e.toResponse();
  });
  app.notFound((c) => {
    ctx.metrics.countError('not_found');
    return new ApiError('not_found', `No route for ${c.req.method} ${c.req.path}.`).toResponse();
  });

  // Before auth: a preflight carries no credentials, and error answers need the CORS headers to be readable.
  if (ctx.cors.enabled) app.use('*', ctx.cors.middleware());
  const keyCheck: MiddlewareHandler<AppEnv> = async (c, next) => {
    c.set('clientSignal', c.req.raw.signal); // before bodyLimit swaps the Request
    if (!keyAccepted(ctx.config.apiKey, bearerToken(c.req.header('authorization')))) {
      throw new ApiError('unauthorized', 'Incorrect or missing API key: send "Authorization: Bearer <key>".');
    }
    await next();
  };
  const sizeCheck = bodyLimit({
    maxSize: ctx.config.maxBodyBytes,
    onError: () => {
      throw tooLarge(ctx.config.maxBodyBytes);
    },
  });
  for (const path of ['/v1/*', '/tokenize', '/detokenize']) app.use(path, keyCheck, sizeCheck);

  app.route('/', opsRoutes(ctx));
  app.route('/', playgroundRoutes()); // GET / and /playground/*: the web playground (open, like /health)
  app.route('/v1', infoRoutes(ctx));
  app.route('/v1', openaiRoutes(ctx));
  app.route('/', tokenizeRoutes(ctx));
  return app;
}
