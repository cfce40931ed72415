import type { IncomingMessage } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { ApiError } from './errors.ts';

/**
 * Which browser origins may use the server: `--cors-origins`, a comma-separated list of origins
 * (`https://app.example.com`) or `*`. The same list guards HTTP (through Hono's CORS middleware) and WebSocket
 * upgrades (browsers send `Origin` on those but apply no CORS to them, so the server must check it itself).
 * Clients that send no `Origin` (curl, SDKs, servers) are never affected.
 */
export class CorsPolicy {
  readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(list: string) {
    const entries = list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    this.any = entries.includes('*');
    this.origins = new Set(entries.filter((e) => e !== '*').map((e) => e.replace(/\/+$/, '')));
  }

  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  allows(origin: string): boolean {
    return this.any || this.origins.has(origin);
  }

  /**
   * A WebSocket upgrade is allowed without an Origin (not a browser), from the server's own origin (the
   * playground) or from a listed one.
   */
  allowsUpgrade(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined || this.allows(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  /**
   * Hono's CORS middleware for the listed origins, behind a clear refusal of a preflight from any other origin
   * (Hono would answer it 204 without the allow header, which browsers reject without saying why).
   */
  middleware(): MiddlewareHandler {
    const allowed = cors({
      origin: (origin) => (this.any ? '*' : this.allows(origin) ? origin : null),
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      allowHeaders: ['Authorization', 'Content-Type'],
      exposeHeaders: ['Retry-After'],
      maxAge: 600,
    });
    return async (c, next) => {
      const origin = c.req.header('origin');
      if (c.req.method === 'OPTIONS' && origin !== undefined && c.req.header('access-control-request-method') && !this.allows(origin)) {
        throw forbiddenOrigin(origin);
      }
      return allowed(c, next);
    };
  }
}

export function forbiddenOrigin(origin: string): ApiError {
  return new ApiError(
    'forbidden_origin',
    `Origin ${JSON.stringify(origin.slice(0, 200))} is not allowed; the server's --cors-origins lists the ones that are.`,
  );
}
