import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { EngineError, type EngineErrorCode } from '../engine/index.ts';
import type { ErrorEnvelope, ErrorFrame, ParamProblem } from '../protocol/index.ts';

/**
 * Every error the server can report, in ONE table: HTTP status, OpenAI error `type`, WebSocket close code (for
 * the few that end a socket) — the code itself is the WebSocket `error` frame's `code`, the OpenAI `code` and the
 * `specd_request_errors_total{code}` label.
 */
export type ErrorCode =
  | EngineErrorCode
  | 'invalid_json' // body / frame is not JSON
  | 'invalid_frame' // WebSocket: binary frame, not an object, unknown or missing `type`
  | 'unsupported_parameter' // a known OpenAI parameter specd does not implement
  | 'duplicate_id' // WebSocket: a generate id already in flight on this socket
  | 'unauthorized' // API key missing or wrong
  | 'forbidden_origin' // a browser origin not in --cors-origins (CORS preflight, WebSocket upgrade)
  | 'too_large' // body / frame over the size limit
  | 'too_many_streams' // WebSocket: the socket already has wsMaxStreams generations in flight
  | 'too_many_connections' // the server already holds maxConnections connections
  | 'not_found'; // no such route

interface ErrorSpec {
  status: number;
  type: string;
  /** Close code when this error ends a WebSocket. */
  wsClose?: number;
  /** Send Retry-After (seconds) with the HTTP response. */
  retryAfter?: boolean;
}

export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorSpec>> = Object.freeze({
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_frame: { status: 400, type: 'invalid_request_error' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  duplicate_id: { status: 400, type: 'invalid_request_error' },
  prompt_too_long: { status: 400, type: 'invalid_request_error' },
  unauthorized: { status: 401, type: 'authentication_error', wsClose: 1008 },
  forbidden_origin: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  too_large: { status: 413, type: 'invalid_request_error', wsClose: 1009 },
  overloaded: { status: 429, type: 'overloaded', retryAfter: true },
  too_many_streams: { status: 429, type: 'overloaded' },
  cancelled: { status: 499, type: 'cancelled' }, // nginx's "client closed request": nobody is left to read it
  internal: { status: 500, type: 'server_error', wsClose: 1011 },
  not_ready: { status: 503, type: 'unavailable', retryAfter: true },
  too_many_connections: { status: 503, type: 'unavailable', wsClose: 1013, retryAfter: true },
  shutting_down: { status: 503, type: 'unavailable', wsClose: 1001, retryAfter: true },
});

const DEFAULT_RETRY_AFTER_S = 1;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get spec(): ErrorSpec {
    return ERROR_TABLE[this.code];
  }

  get status(): number {
    return this.spec.status;
  }

  /** Seconds for Retry-After: the engine's hint if it gave one, else 1. */
  get retryAfterS(): number | null {
    if (!this.spec.retryAfter) return null;
    const hint = this.details?.['retryAfterS'];
    return typeof hint === 'number' && hint > 0 ? Math.ceil(hint) : DEFAULT_RETRY_AFTER_S;
  }

  envelope(): ErrorEnvelope {
    return { error: { message: this.message, type: this.spec.type, param: this.param, code: this.code } };
  }

  frame(id?: string): ErrorFrame {
    const details = { ...(this.param ? { param: this.param } : {}), ...(this.details ?? {}) };
    return {
      type: 'error',
      ...(id !== undefined ? { id } : {}),
      code: this.code,
      message: this.message,
      ...(Object.keys(details).length > 0 ? { details } : {}),
    };
  }

  /**
   * The headers every answer of this error carries; `close` adds Connection: close. By default only a 413 from
   * Hono closes: there the body was being streamed (no Content-Length, or it lied) and its rest is never read,
   * so the connection cannot carry another request, and a keep-alive client would send its next one into a
   * socket the server is closing. (A declared oversized body is refused before Hono and drained instead.)
   */
  headers(close = this.code === 'too_large'): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=UTF-8' };
    const retry = this.retryAfterS;
    if (retry !== null) headers['retry-after'] = String(retry);
    if (this.code === 'unauthorized') headers['www-authenticate'] = 'Bearer';
    if (close) headers['connection'] = 'close';
    return headers;
  }

  toResponse(): Response {
    return new Response(JSON.stringify(this.envelope()), { status: this.status, headers: this.headers() });
  }

  /**
   * Answers straight from Node, before Hono and before reading the body, which is discarded. keepAlive: the
   * connection carries the next request once the body is drained (closing a socket with unread bytes would
   * reset it under the client's feet, losing this answer); otherwise it closes after the answer.
   */
  writeTo(req: IncomingMessage, res: ServerResponse, keepAlive = false): void {
    const body = JSON.stringify(this.envelope());
    if (!keepAlive) res.shouldKeepAlive = false;
    res.writeHead(this.status, { ...this.headers(!keepAlive), 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
    req.resume();
  }

  /** Answers a refused WebSocket upgrade on its raw socket, and closes it. */
  endUpgrade(socket: Duplex): void {
    const body = JSON.stringify(this.envelope());
    const headers = { ...this.headers(true), 'content-length': String(Buffer.byteLength(body)) };
    socket.end([`HTTP/1.1 ${this.status} ${this.code}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', body].join('\r\n'));
  }

  static fromProblem(p: ParamProblem): ApiError {
    return new ApiError(p.code, p.message, p.param);
  }
}

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_TABLE, code);
}

/**
 * Normalises anything thrown into an ApiError. `inputParam` names the request field holding the prompt
 * (`prompt` or `messages`) for prompt_too_long, whose message quotes both token counts.
 */
export function toApiError(e: unknown, inputParam: 'prompt' | 'messages' | null = null): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof EngineError) {
    const code: ErrorCode = isErrorCode(e.code) ? e.code : 'internal';
    const details = e.details ?? {};
    const param = typeof details['param'] === 'string' ? details['param'] : code === 'prompt_too_long' ? inputParam : null;
    let message = e.message;
    const { promptTokens, limit } = details as { promptTokens?: unknown; limit?: unknown };
    if (code === 'prompt_too_long' && typeof promptTokens === 'number' && typeof limit === 'number') {
      message = `The prompt is ${promptTokens} tokens long, over this server's limit of ${limit} prompt tokens. ` + 'Shorten the prompt.';
    }
    const { param: _drop, ...rest } = details;
    return new ApiError(code, message, param, Object.keys(rest).length > 0 ? rest : undefined);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError('internal', `internal error: ${message}`);
}

export function tooLarge(limit: number): ApiError {
  return new ApiError('too_large', `The request body is over this server's limit of ${limit} bytes.`);
}

export function tooManyConnections(limit: number): ApiError {
  return new ApiError(
    'too_many_connections',
    `The server already holds ${limit} connections (its limit); retry shortly or on another instance.`,
    null,
    { limit },
  );
}
