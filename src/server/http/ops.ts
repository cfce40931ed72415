import { Hono } from 'hono';
import type { ModelLayout } from '../../engine/index.ts';
import type { ModelList } from '../../protocol/index.ts';
import type { ServerContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import type { AppEnv } from './types.ts';

/** GET /health, /ready, /metrics: unauthenticated operational endpoints. */
export function opsRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Liveness: fails only when the engine cannot serve at all (its model worker is dead), so a probe that
  // restarts the process on it never fires during a model load or a drain.
  app.get('/health', (c) => {
    const h = ctx.engine.health();
    if (!h.ok) return c.json({ status: 'unhealthy', reason: h.reason, worker_restarts: h.workerRestarts }, 503);
    return c.json({ status: 'ok', worker_restarts: h.workerRestarts });
  });
  app.get('/ready', (c) => {
    if (ctx.lifecycle.shuttingDown) throw new ApiError('shutting_down', 'The server is shutting down.');
    if (!ctx.engine.ready) {
      const reason = ctx.engine.health().reason;
      throw new ApiError('not_ready', reason ? `The engine is not serving: ${reason}.` : 'Models are still loading.');
    }
    const stats = ctx.engine.stats();
    return c.json({ status: 'ready', running: stats.running, queued: stats.queued });
  });
  app.get('/metrics', async (c) => {
    const { contentType, body } = await ctx.metrics.render();
    return c.body(body, 200, { 'content-type': contentType });
  });
  return app;
}

/** GET /v1/models and GET /v1/streams/recent (behind the API key like the rest of /v1). */
export function infoRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const started = Math.floor(Date.now() / 1000);
  app.get('/models', (c) => {
    const info = ctx.engine.info(); // throws not_ready → 503 while loading
    const entry = (id: string, role: 'target' | 'draft', l: ModelLayout): ModelList['data'][number] => ({
      id,
      object: 'model',
      created: started,
      owned_by: 'specd',
      role,
      context_length: l.contextLength,
      specd: {
        family: l.family,
        dtype: l.dtype,
        file: l.file,
        attention: l.attention,
        heads: l.heads,
        kv_heads: l.kvHeads,
        head_dim: l.headDim,
        kv_dtype: l.kvDtype,
        logits_dtype: l.logitsDtype,
        merged_decoder: l.merged,
        position_ids: l.positionIds,
        kv_in_place: l.pooled,
        layers: l.layers,
      },
    });
    const data: ModelList['data'] = [entry(info.target.id, 'target', info.target.layout)];
    if (info.draft) data.push(entry(info.draft.id, 'draft', info.draft.layout));
    return c.json({ object: 'list', data } satisfies ModelList);
  });
  app.get('/streams/recent', (c) => {
    const raw = c.req.query('limit');
    const capacity = ctx.config.recentStreams;
    let limit = capacity;
    if (raw !== undefined) {
      limit = Number(raw);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new ApiError('invalid_request', `Invalid 'limit': must be a positive integer (got ${JSON.stringify(raw)})`, 'limit');
      }
    }
    return c.json({ object: 'list', capacity, data: ctx.recorder.recent(Math.min(limit, capacity)) });
  });
  return app;
}
