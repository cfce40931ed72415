import type { Logger } from 'pino';
import type { DoneEvent, Engine, EngineEvent, GenerateRequest, Mode, StartEvent } from '../engine/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { ApiError, toApiError } from './errors.ts';
import { type StreamMeta, type StreamRecorder, toRecord } from './recorder.ts';
import { cancelledBeforeStart } from './stream-summary.ts';

export interface RunnerDeps {
  engine: Engine;
  metrics: Metrics;
  recorder: StreamRecorder;
  logger: Logger;
}

/**
 * The one path from a transport to the engine, shared by HTTP and WebSocket: it streams the engine's events
 * unchanged and, when a stream ends, feeds metrics, the recent-streams ring and the stream log.
 *
 * Guarantees to the transports:
 * - a refusal before admission throws an ApiError before any event (the transport reports and counts it);
 * - otherwise the events end with exactly one `done`: a stream cancelled while still queued gets a synthetic
 *   `done` (cancelled, no `start`), and an engine that fails mid-stream gets a synthetic `done` (error).
 * Transports keep iterating after aborting, so the engine's final event always arrives.
 */
export class StreamRunner {
  private readonly active = new Set<Promise<void>>();

  constructor(private readonly deps: RunnerDeps) {}

  get activeCount(): number {
    return this.active.size;
  }

  /** Resolves once every stream has ended (used by graceful shutdown). */
  async idle(): Promise<void> {
    while (this.active.size > 0) await Promise.all([...this.active]);
  }

  /** The id of the model whose distribution a mode's tokens follow. */
  modelFor(mode: Mode): string {
    const info = this.deps.engine.info();
    return mode === 'draft' && info.draft ? info.draft.id : info.target.id;
  }

  async *run(req: GenerateRequest, meta: StreamMeta, inputParam: 'prompt' | 'messages'): AsyncGenerator<EngineEvent, void, undefined> {
    const t0 = performance.now();
    let start: StartEvent | null = null;
    let done: DoneEvent | null = null;
    let tokens = 0;
    let text = '';
    let firstTokenMs = -1;
    let finished!: () => void;
    const running = new Promise<void>((resolve) => {
      finished = resolve;
    });
    this.active.add(running);
    try {
      try {
        for await (const ev of this.deps.engine.generate(req)) {
          if (ev.type === 'start') {
            start = ev;
            if (ev.route) this.deps.metrics.observeRoute(ev.route.mode, ev.route.budgetMissed);
          } else if (ev.type === 'tokens') {
            tokens += ev.tokens.length;
            text += ev.text;
            if (firstTokenMs < 0 && ev.tokens.length > 0) firstTokenMs = ev.tokens[0]!.tMs;
          } else done = ev;
          yield ev;
          if (done) return;
        }
        if (!done) throw new Error('the engine ended a stream without a done event');
      } catch (e) {
        if (start === null && req.signal?.aborted && !(e instanceof ApiError)) {
          done = cancelledBeforeStart(performance.now() - t0);
          yield done;
          return;
        }
        if (start === null) {
          const err = toApiError(e, inputParam); // counted by the transport that reports it
          if (err.code === 'internal') this.deps.logger.error({ err: e, id: meta.id }, 'engine failed before start');
          throw err;
        }
        this.deps.logger.error({ err: e, id: meta.id }, 'engine failed mid-stream');
        const elapsed = performance.now() - t0;
        done = {
          ...cancelledBeforeStart(elapsed),
          finishReason: 'error',
          promptTokens: start.promptTokens,
          completionTokens: tokens,
          text,
          error: { code: 'internal', message: e instanceof Error ? e.message : String(e) },
        };
        done.timings.queueMs = start.queueMs;
        done.timings.ttftMs = Math.max(0, firstTokenMs);
        yield done;
      }
    } finally {
      if (done) this.record(meta, req, start, done);
      else this.deps.logger.debug({ id: meta.id }, 'stream abandoned by its transport before done');
      this.active.delete(running);
      finished();
    }
  }

  private record(meta: StreamMeta, req: GenerateRequest, start: StartEvent | null, done: DoneEvent): void {
    const mode = start?.mode ?? (req.mode === 'auto' ? 'speculative' : req.mode); // 'auto' unresolved: refused before routing
    const s = done.speculative;
    this.deps.metrics.observeStream({
      mode,
      finishReason: done.finishReason,
      started: start !== null,
      queueMs: done.timings.queueMs,
      ttftMs: done.completionTokens > 0 ? done.timings.ttftMs : null,
      itlMs: done.timings.itlMs,
      e2eMs: done.timings.e2eMs,
      promptTokens: done.promptTokens,
      completionTokens: done.completionTokens,
      drafts: s.drafts,
      proposed: s.proposed,
      accepted: s.accepted,
      acceptedPerPosition: s.acceptedPerPosition,
    });
    if (done.finishReason === 'error') this.deps.metrics.countError(done.error?.code ?? 'internal');
    let model: string | null = null;
    try {
      model = this.modelFor(mode);
    } catch {
      /* engine not loaded: cannot happen after a start */
    }
    this.deps.recorder.add(toRecord(meta, { mode, seed: start?.seed ?? null, model }, done));
    this.deps.logger.debug(
      { id: meta.id, finish: done.finishReason, tokens: done.completionTokens, e2eMs: done.timings.e2eMs },
      'stream done',
    );
  }
}
