import { Worker } from 'node:worker_threads';
import type { Calibration, FromWorker, StepResult, ToWorker, WorkerInit } from './ipc/messages.ts';
import type { DecoderInfo } from './model/decoder.ts';
import { EngineError } from './types.ts';

/**
 * The main thread's handle on the model worker: a READY handshake, then request/response by stream id
 * (each stream has at most one step in flight, so the id is the correlation key). If the worker dies, every
 * in-flight step fails instead of hanging.
 */
export class WorkerClient {
  private readonly pending = new Map<number, { resolve: (r: StepResult) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  private constructor(private readonly worker: Worker, readonly target: DecoderInfo, readonly draft: DecoderInfo | null,
    readonly calibration: Calibration) {
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
    if (!this.dead) this.worker.postMessage(msg);
  }

  step(sid: number, k: number, maxNew: number): Promise<StepResult> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(sid, { resolve, reject });
      this.worker.postMessage({ type: 'step', sid, k, maxNew } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error('engine closed');
    // Let steps already running in the worker return first: terminating during an ONNX Runtime run aborts the process.
    for (const until = Date.now() + 5_000; this.pending.size > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    if (m.type !== 'stepped' && m.type !== 'failed') return;
    const p = this.pending.get(m.sid);
    if (!p) return;
    this.pending.delete(m.sid);
    if (m.type === 'stepped') p.resolve(m);
    else p.reject(new EngineError('internal', m.message));
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
