/**
 * A deterministic in-process Engine for server tests. It follows the contract in src/engine/types.ts:
 * - generate() refuses before any event by throwing EngineError from the first iteration (not_ready,
 *   shutting_down, invalid_request for draft modes without a draft, prompt_too_long, overloaded);
 * - an admitted stream yields exactly one `start`, then `tokens` events (1..k+1 tokens per step in speculative
 *   mode, 1 otherwise), then exactly one `done`;
 * - the request's signal ends the stream at the next step boundary (or during a step's wait) with `cancelled`;
 * - at most maxRunning streams run, maxQueue more wait FIFO for at most queueTimeoutMs, beyond → overloaded;
 *   aborting while queued rejects with `cancelled`, as the real engine does (both use the same Admission);
 * - drain(grace): refuse new and queued requests, let running ones go on for grace ms, then end them with
 *   `shutdown`; close(): end everything now.
 * Timings are measured like the real engine's (ms since generate() was called; gaps as handed over, 0 within a step).
 */
import { Admission } from '../../src/engine/scheduler/admission.ts';
import {
  type DoneEvent,
  type Engine,
  EngineError,
  type EngineEvent,
  type EngineStats,
  type EngineHealth,
  type FinishReason,
  type GenerateRequest,
  type ModelInfo,
  type ModelLayout,
  type TokenSource,
} from '../../src/engine/types.ts';

export const FAKE_WORDS = [
  ' Once',
  ' upon',
  ' a',
  ' time',
  ',',
  ' there',
  ' was',
  ' a',
  ' little',
  ' fox',
  ' named',
  ' Pip',
  '.',
  ' Pip',
  ' liked',
  ' to',
  ' run',
  ' in',
  ' the',
  ' green',
  ' forest',
  ' every',
  ' day',
  '.',
];

export interface FakeEngineOptions {
  ready?: boolean;
  hasDraft?: boolean;
  targetId?: string;
  draftId?: string;
  contextLength?: number;
  maxRunning?: number;
  maxQueue?: number;
  queueTimeoutMs?: number;
  maxPromptTokens?: number;
  /** Duration of one engine step (the prefill is one step too). */
  stepMs?: number;
  /** Tokens a speculative step yields, cycled (capped at k+1); default [4, 2, 5, 1]. */
  tokensPerStep?: number[];
  /** Draft length used for k='auto'. */
  autoK?: number;
  /** Token texts of the completion, cycled; the stream ends with 'length' at max_tokens. */
  words?: string[];
  /** End with 'stop' (EOS) after this many tokens (unless the request sets ignoreEos). */
  eosAfter?: number;
  /** End with finish_reason 'error' after this many tokens. */
  failAfterTokens?: number;
}

export class FakeEngine implements Engine {
  readonly requests: GenerateRequest[] = [];
  private isReady: boolean;
  private draining = false;
  private readonly active = new Set<Promise<void>>();
  private readonly admission: Admission;
  private readonly shutdownAc = new AbortController();
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  readonly o: Required<Omit<FakeEngineOptions, 'eosAfter' | 'failAfterTokens'>> & Pick<FakeEngineOptions, 'eosAfter' | 'failAfterTokens'>;

  constructor(opts: FakeEngineOptions = {}) {
    this.o = {
      ready: true,
      hasDraft: true,
      targetId: 'fake-target',
      draftId: 'fake-draft',
      contextLength: 2048,
      maxRunning: 8,
      maxQueue: 32,
      queueTimeoutMs: 30_000,
      maxPromptTokens: 896,
      stepMs: 1,
      tokensPerStep: [4, 2, 5, 1],
      autoK: 4,
      words: FAKE_WORDS,
      ...opts,
    };
    this.isReady = this.o.ready;
    // The real admission control: overload and queueing behave exactly as in the engine.
    this.admission = new Admission(this.o.maxRunning, this.o.maxQueue, this.o.queueTimeoutMs);
  }

  get ready(): boolean {
    return this.isReady && !this.draining;
  }

  setReady(ready: boolean): void {
    this.isReady = ready;
  }

  /** Steps wait until resume() (deterministic tests of mid-stream states). */
  pause(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((r) => {
      open = r;
    });
    this.gate = { promise, open };
  }

  resume(): void {
    this.gate?.open();
    this.gate = null;
  }

  info(): ModelInfo {
    const layout = (layers: number): ModelLayout => ({
      family: 'fake',
      dtype: 'fp32',
      file: 'onnx/model.onnx',
      attention: 'GQA',
      heads: 4,
      kvHeads: 2,
      headDim: 16,
      kvDtype: 'float32',
      logitsDtype: 'float32',
      merged: false,
      positionIds: true,
      pooled: false,
      contextLength: this.o.contextLength,
      layers,
    });
    return {
      target: {
        id: this.o.targetId,
        path: `/models/${this.o.targetId}`,
        contextLength: this.o.contextLength,
        vocabSize: 4096,
        layout: layout(4),
      },
      draft: this.o.hasDraft ? { id: this.o.draftId, path: `/models/${this.o.draftId}`, layout: layout(1) } : null,
    };
  }

  stats(): EngineStats {
    return this.admission.stats;
  }

  health(): EngineHealth {
    return { ok: true, reason: null, workerRestarts: 0 };
  }

  private readonly vocab: string[] = [];

  /** Fake ids: each whitespace-separated word gets the next free id (chat messages joined with their roles). */
  tokenize(input: GenerateRequest['input']): number[] {
    if (!this.isReady) throw new EngineError('not_ready', 'models are still loading');
    const text = 'prompt' in input ? input.prompt : input.messages.map((m) => `${m.role}: ${m.content}`).join(' ');
    return text
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => {
        const i = this.vocab.indexOf(w);
        return i >= 0 ? i : this.vocab.push(w) - 1;
      });
  }

  detokenize(ids: readonly number[]): string {
    const bad = ids.find((id) => this.vocab[id] === undefined);
    if (bad !== undefined) throw new EngineError('invalid_request', `token id ${bad} is outside the vocabulary`, { param: 'tokens' });
    return ids.map((id) => this.vocab[id]).join(' ');
  }

  /** Prompt "tokens": whitespace-separated words (+3 per chat message for its template). */
  static countTokens(input: GenerateRequest['input']): number {
    const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
    return 'prompt' in input ? Math.max(1, words(input.prompt)) : input.messages.reduce((n, m) => n + 3 + words(m.content), 1);
  }

  async *generate(req: GenerateRequest): AsyncGenerator<EngineEvent> {
    const t0 = performance.now();
    this.requests.push(req);
    if (!this.isReady) throw new EngineError('not_ready', 'models are still loading');
    if (this.draining) throw new EngineError('shutting_down', 'server is shutting down');
    if (req.mode !== 'target' && !this.o.hasDraft) {
      throw new EngineError('invalid_request', `mode "${req.mode}" needs a draft model and this server runs without one`, {
        param: 'mode',
      });
    }
    const promptTokens = FakeEngine.countTokens(req.input);
    const limit = Math.min(this.o.maxPromptTokens, this.o.contextLength - 1);
    if (promptTokens > limit) {
      throw new EngineError('prompt_too_long', `the prompt has ${promptTokens} tokens; the limit is ${limit} tokens`, {
        promptTokens,
        limit,
      });
    }
    const release = await this.admission.acquire(req.signal);
    let finished!: () => void;
    const running = new Promise<void>((r) => {
      finished = r;
    });
    this.active.add(running);
    try {
      const queueMs = performance.now() - t0;
      const seed = req.sampling.seed ?? 12345;
      yield { type: 'start', promptTokens, queueMs, mode: req.mode === 'auto' ? 'speculative' : req.mode, seed };
      yield* this.decode(req, t0, queueMs, promptTokens);
    } finally {
      release();
      this.active.delete(running);
      finished();
    }
  }

  private async *decode(req: GenerateRequest, t0: number, queueMs: number, promptTokens: number): AsyncGenerator<EngineEvent> {
    const now = () => performance.now() - t0;
    const itlMs: number[] = [];
    let ttftMs = -1,
      lastEmit = -1,
      generated = 0,
      step = 0,
      drafts = 0,
      proposed = 0,
      accepted = 0,
      rejections = 0,
      kSum = 0;
    const acceptedPerPosition: number[] = [];
    let raw = '',
      emitted = '';
    const holdback = Math.max(0, ...req.stop.map((s) => s.length - 1));
    const prefillMs = this.o.stepMs;
    const maxNew = Math.min(req.maxTokens, this.o.contextLength - promptTokens);
    const eosAfter = req.ignoreEos ? undefined : this.o.eosAfter;
    const done = (finishReason: FinishReason, error?: DoneEvent['error']): DoneEvent => ({
      type: 'done',
      finishReason,
      promptTokens,
      completionTokens: generated,
      text: emitted,
      timings: {
        queueMs,
        prefillMs,
        ttftMs: Math.max(0, ttftMs),
        itlMs,
        e2eMs: now(),
        decode: { draftMs: 0, draftPasses: 0, targetMs: 0, targetPasses: 0, targetTokens: 0 },
      },
      speculative: {
        drafts,
        proposed,
        accepted,
        acceptanceRate: proposed > 0 ? accepted / proposed : null,
        meanAcceptedLength: drafts > 0 ? 1 + accepted / drafts : null,
        meanK: drafts > 0 ? kSum / drafts : null,
        rejections,
        acceptedPerPosition,
      },
      ...(error ? { error } : {}),
    });
    const interrupted = (): FinishReason | null => (req.signal?.aborted ? 'cancelled' : this.shutdownAc.signal.aborted ? 'shutdown' : null);

    await this.step(req.signal); // prefill
    for (;;) {
      const early = interrupted();
      if (early) {
        yield done(early);
        return;
      }
      if (this.o.failAfterTokens !== undefined && generated >= this.o.failAfterTokens) {
        yield done('error', { code: 'internal', message: 'fake failure' });
        return;
      }
      const k = req.mode !== 'speculative' ? 0 : req.k === 'auto' ? this.o.autoK : req.k;
      const want = k === 0 ? 1 : Math.min(this.o.tokensPerStep[step % this.o.tokensPerStep.length]!, k + 1);
      step++;
      if (!(await this.step(req.signal))) continue; // interrupted: reported at the top of the loop
      const left = Math.min(maxNew - generated, (eosAfter ?? Infinity) - generated);
      const n = Math.min(want, left);
      if (k > 0) {
        drafts++;
        proposed += k;
        kSum += k;
        const acc = Math.min(want - 1, k);
        accepted += acc;
        if (acc < k) rejections++;
        for (let i = 0; i < acc; i++) acceptedPerPosition[i] = (acceptedPerPosition[i] ?? 0) + 1;
      }
      const t = now();
      const tokens = Array.from({ length: n }, (_, i) => {
        const index = generated + i;
        const text = this.o.words[index % this.o.words.length]!;
        const source: TokenSource =
          req.mode === 'draft' ? 'draft' : k === 0 ? 'target' : i < want - 1 ? 'draft' : want - 1 === k ? 'bonus' : 'target';
        if (ttftMs < 0) ttftMs = t;
        else itlMs.push(i === 0 ? t - lastEmit : 0);
        return { id: 100 + (index % this.o.words.length), text, source, tMs: t };
      });
      if (n > 0) lastEmit = t;
      generated += n;
      raw += tokens.map((x) => x.text).join('');
      const hit = req.stop
        .map((s) => raw.indexOf(s))
        .filter((i) => i >= 0)
        .sort((a, b) => a - b)[0];
      const end = hit ?? (generated >= maxNew || generated === eosAfter ? raw.length : Math.max(emitted.length, raw.length - holdback));
      const delta = raw.slice(emitted.length, Math.max(emitted.length, end));
      emitted += delta;
      if (n > 0 || delta) yield { type: 'tokens', text: delta, tokens };
      if (hit !== undefined || generated === eosAfter) {
        yield done('stop');
        return;
      }
      if (generated >= maxNew) {
        yield done('length');
        return;
      }
    }
  }

  /** One step's wait; false if the stream was cancelled or the engine shut down during it. */
  private async step(signal?: AbortSignal): Promise<boolean> {
    const signals = [this.shutdownAc.signal, ...(signal ? [signal] : [])];
    const wait = (until: Promise<void> | null, ms: number) =>
      new Promise<boolean>((resolve) => {
        if (signals.some((s) => s.aborted)) {
          resolve(false);
          return;
        }
        const onAbort = () => {
          cleanup();
          resolve(false);
        };
        const timer = until
          ? undefined
          : setTimeout(() => {
              cleanup();
              resolve(true);
            }, ms);
        const cleanup = () => {
          clearTimeout(timer);
          signals.forEach((s) => s.removeEventListener('abort', onAbort));
        };
        signals.forEach((s) => s.addEventListener('abort', onAbort, { once: true }));
        until?.then(() => {
          cleanup();
          resolve(true);
        });
      });
    while (this.gate) if (!(await wait(this.gate.promise, 0))) return false;
    return wait(null, this.o.stepMs);
  }

  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.admission.rejectWaiting(new EngineError('shutting_down', 'server is shutting down'));
    const all = () => Promise.all([...this.active]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), graceMs);
    });
    const outcome = await Promise.race([all(), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.shutdownAc.abort();
      this.resume();
    }
    await all();
  }

  async close(): Promise<void> {
    this.draining = true;
    this.shutdownAc.abort();
    this.resume();
  }
}
