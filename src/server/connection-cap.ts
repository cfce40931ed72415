import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

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
