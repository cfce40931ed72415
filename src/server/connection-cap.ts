import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ApiError } from './errors.ts';

/** Routes an orchestrator or Prometheus must reach even on a full server (a probe refused at capacity would restart a healthy replica). */
const OPS_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * `--max-connections`: HTTP and WebSocket connections together. A connection beyond the limit is still accepted
 * so that it can be told why (503 `too_many_connections` + Retry-After, then closed), except for the ops routes;
 * past a further headroom the kernel-level cap (`server.maxConnections`) drops new sockets outright, so a flood
 * of silent connections cannot exhaust file descriptors either.
 */
export class ConnectionCap {
  private open = 0;
  private readonly overLimit = new WeakSet<Duplex>();

  constructor(readonly limit: number) {}

  get count(): number {
    return this.open;
  }

  /** Headroom of over-limit connections that still get a readable refusal. */
  get hardLimit(): number {
    return this.limit + Math.max(64, Math.ceil(this.limit / 4));
  }

  attach(server: Server): void {
    server.maxConnections = this.hardLimit;
    server.on('connection', (socket: Socket) => {
      this.open++;
      if (this.open > this.limit) this.overLimit.add(socket);
      socket.once('close', () => {
        this.open--;
      });
    });
  }

  /** True when this connection was accepted beyond the limit. */
  over(socket: Duplex): boolean {
    return this.overLimit.has(socket);
  }

  /** True when this request's connection is over the limit and its route is not exempt. */
  refuses(socket: Duplex, url: string | undefined): boolean {
    if (!this.overLimit.has(socket)) return false;
    const path = (url ?? '/').split('?', 1)[0]!;
    return !OPS_PATHS.has(path);
  }
}

/** Headers and body of a refusal written straight to Node (before Hono, or on an upgrade's raw socket). */
export function rawRefusal(e: ApiError): { status: number; headers: Record<string, string>; body: string } {
  const body = JSON.stringify(e.envelope());
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
  const retry = e.retryAfterS;
  if (retry !== null) headers['retry-after'] = String(retry);
  return { status: e.status, headers, body };
}

/**
 * Answers before reading the body. keepAlive: Node discards the unread body and the connection carries the
 * next request (closing a socket with unread bytes would reset it under the client's feet, losing this answer).
 */
export function refuseRequest(req: IncomingMessage, res: ServerResponse, e: ApiError, keepAlive = false): void {
  const { status, headers, body } = rawRefusal(e);
  if (keepAlive) delete headers['connection'];
  else res.shouldKeepAlive = false;
  res.writeHead(status, headers);
  res.end(body);
  req.resume(); // discard the body
}

export function refuseUpgradeSocket(socket: Duplex, e: ApiError): void {
  const { status, headers, body } = rawRefusal(e);
  socket.end([`HTTP/1.1 ${status} ${e.code}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', body].join('\r\n'));
}
