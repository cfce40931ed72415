import { createServer as createHttpServer, type RequestListener, type Server, type ServerOptions as ServerOptionsHttp } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import { settleWithin, until } from '../lib/async.ts';
import { createContext, type ServerContext, type ServerDeps } from './context.ts';
import { createApp } from './http/app.ts';
import { answeredEarly } from './http/early-refusal.ts';
import type { AppEnv } from './http/types.ts';
import { attachWebSocket, type WsHub } from './ws/hub.ts';

export interface SpecdServer {
  readonly ctx: ServerContext;
  readonly app: Hono<AppEnv>;
  readonly http: Server;
  readonly ws: WsHub;
  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /**
   * Graceful shutdown (what SIGTERM/SIGINT run): stop accepting connections, upgrades and generations; let the
   * engine drain (running streams get graceMs, then end with finish_reason "shutdown", which the transports
   * forward as final frames / chunks); then close sockets with 1001, flush the stream log and close the engine.
   * Idempotent.
   */
  shutdown(graceMs?: number): Promise<void>;
}

export interface ServerOptions {
  /** Time allowed, beyond the grace period, for transports to write final frames before stalled clients are cut (5 s). */
  flushMs?: number;
}

export function createServer(deps: ServerDeps, options: ServerOptions = {}): SpecdServer {
  const FLUSH_MS = options.flushMs ?? 5_000;
  const ctx = createContext(deps);
  const app = createApp(ctx);
  const http = createAdaptorServer({
    fetch: app.fetch,
    // Some refusals are answered before Hono sees the request (http/early-refusal.ts says which, and why).
    createServer: ((options: ServerOptionsHttp, listener: RequestListener) =>
      createHttpServer(options, (req, res) => {
        if (!answeredEarly(ctx, req, res)) listener(req, res);
      })) as typeof createHttpServer,
  }) as Server;
  ctx.connections.attach(http);
  const ws = attachWebSocket(http, ctx);
  let shuttingDown: Promise<void> | null = null;
  let responding = 0; // HTTP responses not yet finished
  http.on('request', (_req, res) => {
    responding++;
    res.once('close', () => {
      responding--;
    });
  });

  const shutdown = async (graceMs: number): Promise<void> => {
    const { logger, engine } = ctx;
    ctx.lifecycle.shuttingDown = true;
    ws.beginShutdown();
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
    logger.info({ graceMs, running: engine.stats().running, queued: engine.stats().queued }, 'shutting down: draining streams');
    const drained = engine.drain(graceMs);
    if ((await settleWithin(drained, graceMs + FLUSH_MS)) === 'timeout') {
      // A stream paused on a client that stopped reading never pulls its final event, so the engine cannot
      // finish it: cut those connections (their streams then end as cancelled) and let the drain complete.
      logger.warn('streams stalled on clients that stopped reading; closing their connections');
      ws.terminateAll();
      http.closeAllConnections();
      await drained;
    }
    if ((await settleWithin(ctx.runner.idle(), FLUSH_MS)) === 'timeout') logger.warn('some streams did not finish forwarding in time');
    await ws.closeAll(1001, 'server shutting down', FLUSH_MS);
    // Every stream has ended; give responses being written a moment, then drop the remaining (idle or
    // request-less pre-connected) sockets instead of waiting for their timeouts.
    await until(() => responding === 0, 2_000);
    http.closeAllConnections();
    await httpClosed;
    await ctx.recorder.close();
    await engine.close();
    logger.info('shutdown complete');
  };

  return {
    ctx,
    app,
    http,
    ws,
    listen(port = ctx.config.port, host = ctx.config.host) {
      return new Promise((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        http.once('error', onError);
        http.listen(port, host, () => {
          http.off('error', onError);
          const addr = http.address() as AddressInfo;
          const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          resolve({ host: addr.address, port: addr.port, url: `http://${shownHost}:${addr.port}` });
        });
      });
    },
    shutdown(graceMs = ctx.config.shutdownGraceMs) {
      shuttingDown ??= shutdown(graceMs);
      return shuttingDown;
    },
  };
}
