import { Worker } from 'node:worker_threads';
import type { Calibration, FromWorker, StepResult, ToWorker, WorkerInit } from './ipc/messages.ts';
import type { DecoderInfo } from './model/decoder.ts';
import { EngineError } from './types.ts';

/**
 * The main thread's handle on the model worker: a READY handshake, then request/response by stream id (a stream's
 * steps are answered in the order they were sent, so the id and that order correlate them). If the worker dies,
 * every in-flight step fails instead of hanging.
 */
export class WorkerClient {
  private readonly pending = new Map<number, { resolve: (r: StepResult | null) => void; reject: (e: Error) => void }[]>();
  private dead: Error | null = null;

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

  send(msg: Extract<ToWorker, { type: 'open' | 'close' }>): void {
    // Nobody awaits a closed stream's steps any more: settle them now (with null). They stay pending until the worker
    // answers them, so close() still knows whether a forward pass is running.
    if (msg.type === 'close') for (const p of this.pending.get(msg.sid) ?? []) p.resolve(null);
    if (!this.dead) this.worker.postMessage(msg);
  }

  step(sid: number, k: number, deadline: number): Promise<StepResult | null> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(sid) ?? [];
      queue.push({ resolve, reject });
      this.pending.set(sid, queue);
      this.worker.postMessage({ type: 'step', sid, k, deadline } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error('engine closed');
    // Let steps already running in the worker return first: terminating during an ONNX Runtime run aborts the process.
    for (const until = Date.now() + 5_000; this.pending.size > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'stepped' && m.type !== 'failed' && m.type !== 'dropped') return;
    const queue = this.pending.get(m.sid);
    const p = queue?.shift();
    if (!p) return;
    if (queue!.length === 0) this.pending.delete(m.sid);
    if (m.type === 'dropped') p.resolve(null);
    else if (m.type === 'stepped') p.resolve(m);
    else p.reject(new EngineError('internal', m.message));
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of [...this.pending.values()].flat()) p.reject(e);
    this.pending.clear();
  }
}
