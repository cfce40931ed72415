import { Worker } from 'node:worker_threads';
import type { Calibration, FromWorker, PassReport, StepResult, ToWorker, WorkerInit } from './ipc/messages.ts';
import type { DecoderInfo } from './model/decoder.ts';
import { EngineError } from './types.ts';

/** A stream's results as the worker sends them; `next()` resolves null once the stream was closed here. */
export class ResultFeed {
  private readonly queue: StepResult[] = [];
  private waiter: { resolve: (r: StepResult | null) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private ended = false;

  push(r: StepResult): void {
    if (this.waiter) {
      this.waiter.resolve(r);
      this.waiter = null;
    } else this.queue.push(r);
  }

  fail(e: Error): void {
    this.failure ??= e;
    this.waiter?.reject(e);
    this.waiter = null;
  }

  end(): void {
    this.ended = true;
    this.waiter?.resolve(null);
    this.waiter = null;
  }

  next(): Promise<StepResult | null> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }
}

/**
 * The main thread's handle on the model worker: a READY handshake, then opens and closes by stream id, with each
 * stream's results routed to its feed. If the worker dies, every open stream's feed fails instead of hanging.
 */
export class WorkerClient {
  private readonly feeds = new Map<number, ResultFeed>();
  private readonly reportListeners: ((r: PassReport) => void)[] = [];
  private dead: Error | null = null;
  private stopped: (() => void) | null = null;
  private closing = false;
  private readonly deathListeners: ((e: Error) => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    readonly target: DecoderInfo,
    readonly draft: DecoderInfo | null,
    readonly calibration: Calibration,
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`model worker exited with code ${code}`)));
  }

  static start(init: WorkerInit): Promise<WorkerClient> {
    const worker = new Worker(new URL('./worker/bootstrap.mjs', import.meta.url), { workerData: init });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new EngineError('internal', `model worker exited during load (code ${code})`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: FromWorker) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (m.type === 'ready') resolve(new WorkerClient(worker, m.target, m.draft, m.calibration));
        else {
          void worker.terminate();
          reject(new EngineError('internal', m.type === 'load-failed' ? `model load failed: ${m.message}` : 'unexpected worker message'));
        }
      });
    });
  }

  onReport(listener: (r: PassReport) => void): void {
    this.reportListeners.push(listener);
  }

  /** Called once if the worker dies on its own (not after shutdown()). */
  onDeath(listener: (e: Error) => void): void {
    this.deathListeners.push(listener);
  }

  /** Test hook: the worker exits between two iterations, as a crashed worker would. */
  crashForTests(): void {
    if (!this.dead) this.worker.postMessage({ type: 'crash' } satisfies ToWorker);
  }

  open(msg: Extract<ToWorker, { type: 'open' }>): ResultFeed {
    const feed = new ResultFeed();
    if (this.dead) feed.fail(this.dead);
    else {
      this.feeds.set(msg.sid, feed);
      this.worker.postMessage(msg);
    }
    return feed;
  }

  /** Nobody reads the stream any more: its feed ends now, and the worker drops it at its next iteration. */
  close(sid: number): void {
    const feed = this.feeds.get(sid);
    if (!feed) return;
    this.feeds.delete(sid);
    feed.end();
    if (!this.dead) this.worker.postMessage({ type: 'close', sid } satisfies ToWorker);
  }

  /** Stops the core after its running iteration (terminating during an ONNX Runtime run aborts the process). */
  async shutdown(): Promise<void> {
    this.closing = true;
    if (!this.dead) {
      const stopped = new Promise<void>((r) => (this.stopped = r));
      this.worker.postMessage({ type: 'shutdown' } satisfies ToWorker);
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    this.dead ??= new Error('engine closed');
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'out') {
      for (const r of m.results) this.feeds.get(r.sid)?.push(r);
      if (m.report) for (const l of this.reportListeners) l(m.report);
    } else if (m.type === 'failed') {
      this.feeds.get(m.sid)?.fail(new EngineError('internal', m.message));
    } else if (m.type === 'stopped') this.stopped?.();
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    for (const f of this.feeds.values()) f.fail(e);
    this.feeds.clear();
    this.stopped?.();
    if (!this.closing) for (const l of this.deathListeners) l(e);
  }
}
