import {
  type Engine,
  EngineError,
  type EngineEvent,
  type EngineHealth,
  type EngineStats,
  type GenerateRequest,
  type ModelInfo,
} from '../engine/index.ts';

/**
 * An Engine that forwards to the real one once it has loaded, so the server can listen (and answer /health, and
 * /ready with 503) while models load. Before that, generate() rejects with `not_ready`. If the server shuts down
 * before loading finishes, the engine that arrives later is closed at once.
 */
export class EngineHolder implements Engine {
  private inner: Engine | null = null;
  private closed = false;

  get ready(): boolean {
    return this.inner?.ready ?? false;
  }

  get loaded(): boolean {
    return this.inner !== null;
  }

  /** Hands over the loaded engine (closing it instead when the server already shut down). */
  async set(engine: Engine): Promise<void> {
    if (this.closed) {
      await engine.close();
      return;
    }
    this.inner = engine;
  }

  info(): ModelInfo {
    if (!this.inner) throw new EngineError('not_ready', 'models are still loading');
    return this.inner.info();
  }

  stats(): EngineStats {
    return this.inner?.stats() ?? { running: 0, queued: 0 };
  }

  /** Loading is not a failure: liveness holds while models load (readiness says they are not loaded yet). */
  health(): EngineHealth {
    return this.inner?.health() ?? { ok: true, reason: null, workerRestarts: 0 };
  }

  generate(req: GenerateRequest): AsyncIterable<EngineEvent> {
    const inner = this.inner;
    if (inner) return inner.generate(req);
    const closed = this.closed;
    // A generator that refuses on its first next(), as the engine contract requires (it never yields).
    // eslint-disable-next-line require-yield
    return (async function* notReady(): AsyncGenerator<EngineEvent> {
      if (closed) throw new EngineError('shutting_down', 'server is shutting down');
      throw new EngineError('not_ready', 'models are still loading; retry when GET /ready returns 200');
    })();
  }

  tokenize(...args: Parameters<Engine['tokenize']>): number[] {
    return this.loadedEngine().tokenize(...args);
  }

  detokenize(ids: readonly number[]): string {
    return this.loadedEngine().detokenize(ids);
  }

  private loadedEngine(): Engine {
    if (!this.inner) throw new EngineError('not_ready', 'models are still loading; retry when GET /ready returns 200');
    return this.inner;
  }

  async drain(graceMs: number): Promise<void> {
    if (this.inner) await this.inner.drain(graceMs);
    else this.closed = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner?.close();
  }
}
