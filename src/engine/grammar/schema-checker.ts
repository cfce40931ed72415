import { Worker } from 'node:worker_threads';
import { Lru } from '../../lib/lru.ts';
import type { GrammarSpec } from './spec.ts';
import { specKey } from './spec.ts';

export interface CheckRequest {
  id: number;
  spec: GrammarSpec;
}
export interface CheckReply {
  id: number;
  /** null: XGrammar can constrain to it; else why not, in XGrammar's words. */
  error: string | null;
}

const REMEMBERED = 256;

/** `lasting`: the same spec would get the same verdict again (a crashed checker's does not). */
type Verdict = (error: string | null, lasting: boolean) => void;

/**
 * Says, before a request is admitted, whether XGrammar can use its schema, so a bad one gets a 400 instead of a
 * failed stream. The conversion runs in a thread of its own (schema-check-worker.ts): a bad schema aborts XGrammar's
 * WebAssembly instance, which that thread replaces at no cost to the event loop, and a schema whose conversion
 * runs away is cut off by terminating the thread. One check at a time, in arrival order; verdicts are remembered,
 * since clients send the same few schemas over and over.
 */
export class SchemaChecker {
  private worker: Worker | null = null;
  private readonly queue: { spec: GrammarSpec; resolve: Verdict }[] = [];
  private inFlight: { id: number; resolve: Verdict; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private readonly verdicts = new Lru<string, string | null>(REMEMBERED);
  /** Conversions sent to the thread so far (remembered verdicts need none). */
  conversions = 0;

  // The first check also starts the thread and XGrammar (~1 s on a busy 2-core machine): the limit leaves room for it.
  constructor(private readonly timeoutMs = 5_000) {}

  /** null when XGrammar can constrain output to `spec`, else the reason it cannot. */
  check(spec: GrammarSpec): Promise<string | null> {
    const key = specKey(spec);
    const known = this.verdicts.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      this.queue.push({
        spec,
        resolve: (error, lasting) => {
          if (lasting) this.verdicts.set(key, error);
          resolve(error);
        },
      });
      this.pump();
    });
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = null;
  }

  private pump(): void {
    if (this.inFlight) return;
    const next = this.queue.shift();
    if (!next) return;
    const worker = this.start();
    const id = this.nextId++;
    this.conversions++;
    const timer = setTimeout(() => {
      this.restart();
      this.finish(id, `converting the schema took longer than ${this.timeoutMs} ms; simplify it`);
    }, this.timeoutMs);
    this.inFlight = { id, resolve: next.resolve, timer };
    worker.postMessage({ id, spec: next.spec } satisfies CheckRequest);
  }

  private finish(id: number, error: string | null, lasting = true): void {
    if (this.inFlight?.id !== id) return;
    clearTimeout(this.inFlight.timer);
    const { resolve } = this.inFlight;
    this.inFlight = null;
    resolve(error, lasting);
    this.pump();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('../worker/bootstrap.mjs', import.meta.url), { argv: ['../grammar/schema-check-worker.ts'] });
    worker.unref(); // an idle checker never keeps the process alive
    worker.on('message', (r: CheckReply) => this.finish(r.id, r.error));
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (this.inFlight) this.finish(this.inFlight.id, `the schema checker failed (${why}); retry`, false);
    };
    worker.on('error', (e) => lost(e.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private restart(): void {
    const w = this.worker;
    this.worker = null;
    void w?.terminate();
  }
}
