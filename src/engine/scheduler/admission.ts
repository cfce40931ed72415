import { EngineError } from '../types.ts';

/**
 * At most `maxRunning` streams decode at once; up to `maxQueue` more wait (FIFO) for at most `timeoutMs`.
 * Everything beyond is refused at once, so an overloaded server answers in microseconds instead of piling up.
 */
export class Admission {
  private running = 0;
  private readonly waiting: { grant: () => void; fail: (e: EngineError) => void }[] = [];

  constructor(
    private readonly maxRunning: number,
    private readonly maxQueue: number,
    private readonly timeoutMs: number,
  ) {}

  get stats() {
    return { running: this.running, queued: this.waiting.length };
  }

  /**
   * The refusal acquire() would give right now, or null: checked before a request is tokenized and routed, so
   * that at capacity a refusal costs nothing but this check (under overload refusals are most of the traffic).
   */
  refusal(): EngineError | null {
    if (this.running < this.maxRunning && this.waiting.length === 0) return null;
    if (this.waiting.length < this.maxQueue) return null;
    return new EngineError('overloaded', `server is at capacity: ${this.running} streams running and ${this.waiting.length} queued`, {
      running: this.running,
      queued: this.waiting.length,
      retryAfterS: 1,
    });
  }

  /** Resolves with a release function once a slot is held; rejects with 'overloaded' (or on abort). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.running < this.maxRunning && this.waiting.length === 0) return Promise.resolve(this.take());
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          cleanup();
          resolve(this.take());
        },
        fail: (e: EngineError) => {
          cleanup();
          reject(e);
        },
      };
      const timer = setTimeout(
        () =>
          entry.fail(
            new EngineError('overloaded', `queued for ${this.timeoutMs} ms without a free slot`, {
              queueTimeoutMs: this.timeoutMs,
              retryAfterS: 1,
            }),
          ),
        this.timeoutMs,
      );
      const onAbort = () => entry.fail(new EngineError('cancelled', 'cancelled while queued'));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Refuse everyone still waiting (shutdown). */
  rejectWaiting(error: EngineError): void {
    for (const w of [...this.waiting]) w.fail(error);
  }

  private take(): () => void {
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.waiting[0]?.grant();
    };
  }
}
