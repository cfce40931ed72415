import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { settleWithin } from '../../lib/async.ts';
import { bearerToken, keyAccepted } from '../auth.ts';
import type { ServerContext } from '../context.ts';
import { ApiError, tooManyConnections } from '../errors.ts';
import { WsSession } from './session.ts';
import { forbiddenOrigin } from '../cors.ts';

export const WS_PATH = '/v1/stream';

export interface WsHub {
  readonly sessions: ReadonlySet<WsSession>;
  /** Refuse new upgrades (503) from now on; open sockets refuse new generations themselves (lifecycle flag). */
  beginShutdown(): void;
  /** Drops every socket at once (stalled clients during shutdown). */
  terminateAll(): void;
  /** Waits (up to timeoutMs) for in-flight generations to send their final frames, then closes every socket. */
  closeAll(code: number, reason: string, timeoutMs: number): Promise<void>;
}

/**
 * The WebSocket endpoint on the HTTP server's 'upgrade' event (`noServer`, so HTTP and WS share one port).
 * Auth: with an API key, the upgrade needs `Authorization: Bearer <key>` or `?api_key=<key>`; a wrong or missing
 * key completes the handshake and closes with 1008 (browsers cannot read a refused upgrade's status).
 */
export function attachWebSocket(server: Server, ctx: ServerContext): WsHub {
  const wss = new WebSocketServer({ noServer: true, maxPayload: ctx.config.wsMaxFrameBytes });
  const sessions = new Set<WsSession>();
  let accepting = true;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== WS_PATH) {
      new ApiError('not_found', `No WebSocket endpoint at ${url.pathname}; use ${WS_PATH}.`).endUpgrade(socket);
      return;
    }
    if (!ctx.cors.allowsUpgrade(req)) {
      ctx.metrics.countError('forbidden_origin');
      forbiddenOrigin(req.headers.origin ?? '').endUpgrade(socket);
      return;
    }
    if (!accepting || ctx.lifecycle.shuttingDown) {
      ctx.metrics.countError('shutting_down');
      new ApiError('shutting_down', 'The server is shutting down.').endUpgrade(socket);
      return;
    }
    // Refused before the handshake, like HTTP's 503: a balancer retries the upgrade on another replica, which it
    // cannot do for an error frame on a socket it has already handed to the client.
    if (!ctx.engine.ready && !ctx.lifecycle.shuttingDown) {
      ctx.metrics.countError('not_ready');
      const reason = ctx.engine.health().reason;
      new ApiError('not_ready', reason ? `The engine is not serving: ${reason}.` : 'Models are still loading.').endUpgrade(socket);
      return;
    }
    if (ctx.connections.refuses(socket, req.url)) {
      ctx.metrics.countError('too_many_connections');
      tooManyConnections(ctx.connections.limit).endUpgrade(socket);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!keyAccepted(ctx.config.apiKey, bearerToken(req.headers.authorization) ?? url.searchParams.get('api_key'))) {
        ctx.metrics.countError('unauthorized');
        ws.close(1008, 'invalid api key');
        return;
      }
      const session = new WsSession(ws, ctx);
      sessions.add(session);
      ws.on('close', () => sessions.delete(session));
      ctx.logger.debug({ session: session.seq }, 'websocket open');
    });
  };
  server.on('upgrade', onUpgrade);

  const heartbeat =
    ctx.config.wsHeartbeatMs > 0
      ? setInterval(() => {
          for (const s of sessions) {
            if (!s.ping()) {
              ctx.logger.info({ session: s.seq }, 'terminating a websocket that missed its pong');
              s.terminate();
            }
          }
        }, ctx.config.wsHeartbeatMs).unref()
      : null;

  return {
    sessions,
    beginShutdown() {
      accepting = false;
    },
    terminateAll() {
      for (const s of sessions) s.terminate();
    },
    async closeAll(code, reason, timeoutMs) {
      if (heartbeat) clearInterval(heartbeat);
      await settleWithin(Promise.all([...sessions].map((s) => s.settled())), timeoutMs);
      for (const s of sessions) s.close(code, reason);
      const closed = Promise.all(
        [...sessions].map(
          (s) =>
            new Promise<void>((resolve) => {
              if (!sessions.has(s)) resolve();
              else s.onClosed(resolve);
            }),
        ),
      );
      if ((await settleWithin(closed, 1000)) === 'timeout') for (const s of sessions) s.terminate();
      server.off('upgrade', onUpgrade);
      wss.close();
    },
  };
}
