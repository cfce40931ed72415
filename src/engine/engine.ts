import { setMaxListeners } from 'node:events';
import { basename } from 'node:path';
import { mean } from '../lib/stats.ts';
import type { EngineOptions } from './options.ts';
import { PromptCodec } from './prompt.ts';
import { randomSeed } from './sampling/index.ts';
import { Admission } from './scheduler/admission.ts';
import { Acceptance, chooseK, expectedTokens, StepCosts } from './scheduler/adaptive-k.ts';
import { epochMs, StreamClock, UNBUDGETED_ITL_MS } from './scheduler/deadlines.ts';
import { predict, route, stepCost, type LiveLoad } from './scheduler/router.ts';
import { StreamStats } from './stream-stats.ts';
import { StreamText } from './text/output.ts';
import {
  EngineError,
  type DoneEvent,
  type Engine,
  type EngineEvent,
  type EngineStats,
  type FinishReason,
  type GenerateRequest,
  type Mode,
  type ModelInfo,
  type RouteDecision,
  type TokenSource,
} from './types.ts';
import type { StepResult } from './ipc/messages.ts';
import { WorkerClient } from './worker-client.ts';

const SOURCES: TokenSource[] = ['draft', 'target', 'bonus'];
const PREFILL_CHUNK = 64;
/** Steps each stream keeps queued in the worker (see decode). */
const LOOKAHEAD = 2;

/**
 * The speculative engine on the main thread: admission, per-stream scheduling and the choice of k, text output.
 * It never touches a model: each stream queues its next step in the worker with a deadline from its per-token
 * allowance (its ITL budget, else a relaxed default), and the worker runs the earliest deadline first. Equal
 * allowances interleave streams round-robin by tokens; a tight budget gets its stream stepped more often. A long
 * prompt is cut into prefill chunks, so it delays the others by one chunk at a time, not by the whole prompt.
 */
export class SpecEngine implements Engine {
  private nextSid = 1;
  private draining = false;
  private readonly shutdown = new AbortController();
  private readonly costs: StepCosts;
  private alphaPrior = 0.7;
  /** Live figures the router predicts from (EWMAs over recent steps and streams). */
  private readonly live = { overheadMs: 0, streamMs: 0, prefillMsPerToken: 0 };
  /** Running streams' clocks: their summed demand is the share of the worker's time already spoken for. */
  private readonly clocks = new Map<number, StreamClock>();
  private readonly itlCorrection: Record<Mode, number> = { target: 1, speculative: 1, draft: 1 };
  private readonly active = new Set<Promise<void>>();

  private constructor(
    private readonly opts: EngineOptions,
    private readonly client: WorkerClient,
    private readonly codec: PromptCodec,
    private readonly admission: Admission,
  ) {
    this.costs = new StepCosts(client.calibration);
    setMaxListeners(0, this.shutdown.signal); // every running stream listens for shutdown while its step runs
  }

  static async create(opts: EngineOptions): Promise<SpecEngine> {
    const remote = { allowRemote: opts.allowRemote, remoteHost: opts.remoteHost, cacheDir: opts.cacheDir };
    const codec = await PromptCodec.load(opts.targetPath, remote);
    if (opts.draftPath) {
      const draftCodec = await PromptCodec.load(opts.draftPath, remote);
      if (!codec.sameVocabulary(draftCodec)) {
        throw new EngineError(
          'invalid_request',
          `draft ${opts.draftPath} does not share the target's vocabulary; speculative decoding needs identical token ids`,
        );
      }
    }
    const client = await WorkerClient.start({
      targetPath: opts.targetPath,
      draftPath: opts.draftPath,
      load: { dtype: opts.dtype, threads: opts.threads, ...remote },
      prefillChunk: PREFILL_CHUNK,
      maxK: opts.maxK,
    });
    return new SpecEngine(opts, client, codec, new Admission(opts.maxRunning, opts.maxQueue, opts.queueTimeoutMs));
  }

  get ready(): boolean {
    return !this.draining;
  }

  info(): ModelInfo {
    return {
      target: {
        id: basename(this.opts.targetPath),
        path: this.opts.targetPath,
        contextLength: this.client.target.contextLength,
        vocabSize: this.client.target.vocabSize,
      },
      draft: this.opts.draftPath ? { id: basename(this.opts.draftPath), path: this.opts.draftPath } : null,
    };
  }

  stats(): EngineStats {
    return this.admission.stats;
  }

  /** Token ids of a request's prompt, as the engine will run it (for validation and benchmarks). */
  encode(input: GenerateRequest['input']): number[] {
    return this.codec.encode(input);
  }

  async *generate(req: GenerateRequest): AsyncGenerator<EngineEvent> {
    const t0 = performance.now();
    if (this.draining) throw new EngineError('shutting_down', 'server is shutting down');
    const promptIds = this.encodePrompt(req);
    const decision = req.mode === 'auto' ? this.route(req, promptIds.length) : undefined;
    const mode: Mode = decision?.mode ?? (req.mode as Mode);
    this.validate(mode, promptIds);
    const release = await this.admission.acquire(req.signal);
    let finished: () => void = () => {};
    const running = new Promise<void>((r) => (finished = r));
    this.active.add(running);
    const sid = this.nextSid++;
    const clock = this.newClock(mode, req.latencyBudget?.itlMs ?? UNBUDGETED_ITL_MS);
    const predictedItl = predict(mode, promptIds.length, this.costs, this.liveLoad(), clock.allowanceMs).itlMs;
    this.clocks.set(sid, clock);
    const seed = req.sampling.seed ?? randomSeed();
    this.client.send({
      type: 'open',
      sid,
      promptIds,
      mode,
      sampling: { ...req.sampling, seed },
      ignoreEos: req.ignoreEos ?? false,
      maxNew: this.maxNew(req, promptIds),
    });
    const stats = new StreamStats(t0, performance.now() - t0);
    try {
      yield { type: 'start', promptTokens: promptIds.length, queueMs: stats.queueMs, mode, seed, ...(decision ? { route: decision } : {}) };
      yield* this.decode(sid, { ...req, mode }, promptIds, stats, decision, clock);
      this.live.streamMs = ewma(this.live.streamMs, stats.now());
      this.learnItl(mode, predictedItl, stats);
    } finally {
      this.client.send({ type: 'close', sid });
      this.clocks.delete(sid);
      release();
      finished();
      this.active.delete(running);
    }
  }

  private encodePrompt(req: GenerateRequest): number[] {
    const promptIds = this.codec.encode(req.input);
    if (promptIds.length === 0) throw new EngineError('invalid_request', 'the prompt is empty after tokenization', { param: 'prompt' });
    return promptIds;
  }

  /** The router's choice among the modes this engine can serve, from live measurements. */
  route(req: Pick<GenerateRequest, 'latencyBudget'>, promptTokens: number): RouteDecision {
    const load = this.liveLoad();
    const modes: Mode[] = this.opts.draftPath ? ['target', 'speculative', 'draft'] : ['target'];
    const predictions = Object.fromEntries(
      modes.map((m) => {
        const p = predict(m, promptTokens, this.costs, load, req.latencyBudget?.itlMs);
        return [m, { ...p, itlMs: p.itlMs * this.itlCorrection[m] }];
      }),
    );
    return route(req.latencyBudget ?? {}, predictions);
  }

  /**
   * The model predicts worker time; what a client sees also includes what the worker cannot measure (the main
   * thread's share of the two cores while the target's threads run, detokenising, sending). Each mode's
   * predictions are scaled by the measured ÷ predicted mean ITL of its recent streams.
   */
  private learnItl(mode: Mode, predictedMs: number, stats: StreamStats): void {
    const gaps = stats.itlMs;
    if (gaps.length < 7 || !(predictedMs > 0)) return;
    const ratio = mean(gaps) / predictedMs;
    this.itlCorrection[mode] = Math.min(3, Math.max(0.5, ewma(this.itlCorrection[mode], ratio)));
  }

  private liveLoad(): LiveLoad {
    const { running, queued } = this.admission.stats;
    const t1 = this.costs.target(1);
    return {
      running,
      queued,
      maxRunning: this.opts.maxRunning,
      maxK: this.opts.maxK,
      prefillChunk: PREFILL_CHUNK,
      alpha: this.alphaPrior,
      demand: [...this.clocks.values()].reduce((a, c) => a + c.demand(), 0),
      overheadMs: this.live.overheadMs,
      streamMs: this.live.streamMs || 100 * t1,
      prefillMsPerToken: this.live.prefillMsPerToken || this.costs.target(this.opts.maxK + 1) / (this.opts.maxK + 1),
    };
  }

  private validate(mode: Mode, promptIds: number[]): void {
    if (mode !== 'target' && !this.opts.draftPath) {
      throw new EngineError('invalid_request', `mode "${mode}" needs a draft model and this server runs without one`, { param: 'mode' });
    }
    const limit = Math.min(this.opts.maxPromptTokens, this.client.target.contextLength - 1);
    if (promptIds.length > limit) {
      throw new EngineError('prompt_too_long', `the prompt has ${promptIds.length} tokens; the limit is ${limit} tokens`, {
        promptTokens: promptIds.length,
        limit,
        contextLength: this.client.target.contextLength,
      });
    }
  }

  private async *decode(
    sid: number,
    req: GenerateRequest & { mode: Mode },
    promptIds: number[],
    stats: StreamStats,
    decision: RouteDecision | undefined,
    clock: StreamClock,
  ): AsyncGenerator<EngineEvent> {
    const text = new StreamText({ decode: this.codec.decode, stop: req.stop, promptIds });
    const maxNew = this.maxNew(req, promptIds);
    const acceptance = new Acceptance(this.alphaPrior);
    let generated = 0,
      completion = '';
    const done = (finishReason: FinishReason, error?: DoneEvent['error']): DoneEvent => ({
      type: 'done',
      finishReason,
      promptTokens: promptIds.length,
      completionTokens: generated,
      text: completion,
      timings: stats.timings(),
      speculative: stats.speculative(),
      mode: req.mode,
      ...(decision ? { route: decision } : {}),
      ...(error ? { error } : {}),
    });
    const interrupted = (): FinishReason | null => (req.signal?.aborted ? 'cancelled' : this.shutdown.signal.aborted ? 'shutdown' : null);

    // Every stream keeps two steps queued in the worker, requested before a result's text is processed and handed
    // over. The worker then never waits for a round trip through this thread (~0.3 ms a step), and a stream whose
    // deadline is earliest can have step after step: with one step queued, it would always wait for someone else's
    // step in between, whatever its budget. Deadlines, not queue position, decide the order, so a newcomer's prefill
    // is not stuck behind the queue. A stream that stops on a stop string or a cancel wastes at most the step
    // already running: the close drops the queued one.
    const inFlight: Promise<StepResult | null>[] = [];
    const topUp = (made: number) => {
      // Every queued step makes at least one token (or ends the stream), so never queue more than are left.
      while (inFlight.length < LOOKAHEAD && (inFlight.length === 0 || made + inFlight.length < maxNew)) {
        const k = this.pickK(req, acceptance);
        const deadline = clock.nextDeadline(k > 0 ? expectedTokens(acceptance.alpha, k) : 1);
        const p = this.stepOrInterrupt(sid, k, deadline, req.signal);
        p.catch(() => {}); // a dropped lookahead's failure is reported by nobody
        inFlight.push(p);
      }
    };
    topUp(0);
    while (true) {
      let r: StepResult | null;
      try {
        r = await inFlight.shift()!;
      } catch (e) {
        return yield done('error', { code: 'internal', message: e instanceof Error ? e.message : String(e) });
      }
      const early = interrupted();
      if (!r || early) return yield done(early ?? 'cancelled');
      if (r.prefill) {
        stats.prefillMs += r.targetMs + r.draftMs;
        if (r.targetTokens > 0) this.live.prefillMsPerToken = ewma(this.live.prefillMsPerToken, r.targetMs / r.targetTokens);
        clock.observe(r.wallMs, 0); // a prefill chunk holds the worker like a step: it counts in the stream's demand
        topUp(generated);
        continue;
      }
      this.costs.observe(r.draftMs, r.draftCalls, r.targetMs, r.targetTokens); // decode steps only: prefill is another regime
      this.live.overheadMs = ewma(this.live.overheadMs, Math.max(0, r.wallMs - r.draftMs - r.targetMs));
      clock.observe(r.wallMs, r.tokens.length + (r.eos ? 1 : 0));
      stats.passes(r.draftMs, r.draftCalls, r.targetMs, r.targetTokens);
      stats.round(r.proposed, r.accepted);
      acceptance.observe(r.accepted, r.proposed);
      const ids = r.tokens.slice(0, maxNew - generated);
      if (!r.eos && generated + ids.length < maxNew) topUp(generated + ids.length);

      const out = text.push(ids);
      const used = out.stopped ? out.tokensUsed : ids.length;
      generated += used;
      completion += out.text;
      if (used > 0 || out.text) {
        const tokens = stats.stamp(
          ids.slice(0, used).map((id, i) => ({ id, text: out.perToken[i] ?? '', source: SOURCES[r!.sources[i]!]! })),
        );
        yield { type: 'tokens', text: out.text, tokens };
      }
      let reason: FinishReason | null = out.stopped || r.eos ? 'stop' : generated >= maxNew ? 'length' : null;
      if (reason) {
        const tail = out.stopped ? '' : text.finish();
        if (text.stopped) reason = 'stop'; // the held-back tail itself completed a stop string
        if (tail) {
          completion += tail;
          yield { type: 'tokens', text: tail, tokens: [] };
        }
        if (stats.proposed > 0) this.alphaPrior += 0.1 * (acceptance.alpha - this.alphaPrior);
        return yield done(reason);
      }
    }
  }

  /** A stream's clock starts at the earliest clock of the running streams, and with the demand its mode should have. */
  private newClock(mode: Mode, allowanceMs: number): StreamClock {
    const expected = stepCost(mode, this.costs, { alpha: this.alphaPrior, maxK: this.opts.maxK, overheadMs: this.live.overheadMs });
    const startAt = this.clocks.size > 0 ? Math.min(...[...this.clocks.values()].map((c) => c.virtualTime)) : epochMs();
    return new StreamClock(allowanceMs, expected.stepMs, expected.tokensPerStep, startAt);
  }

  private maxNew(req: GenerateRequest, promptIds: number[]): number {
    return Math.min(req.maxTokens, this.client.target.contextLength - promptIds.length);
  }

  private pickK(req: GenerateRequest & { mode: Mode }, acceptance: Acceptance): number {
    if (req.mode !== 'speculative') return 0;
    if (req.k === 'auto') return chooseK(acceptance.alpha, this.costs, this.opts.maxK);
    return Math.min(req.k, this.opts.maxK);
  }

  /** The step's result, or null if the stream was cancelled or the engine shut down first (the step still
   *  completes in the worker; its result is dropped and the close that follows frees the caches). */
  private stepOrInterrupt(sid: number, k: number, deadline: number, signal?: AbortSignal): Promise<StepResult | null> {
    const signals = [this.shutdown.signal, ...(signal ? [signal] : [])];
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        cleanup();
        resolve(null);
      };
      const cleanup = () => signals.forEach((s) => s.removeEventListener('abort', onAbort));
      signals.forEach((s) => s.addEventListener('abort', onAbort, { once: true }));
      this.client.step(sid, k, deadline).then(
        (r) => {
          cleanup();
          resolve(r);
        },
        (e) => {
          cleanup();
          reject(e);
        },
      );
    });
  }

  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    this.admission.rejectWaiting(new EngineError('shutting_down', 'server is shutting down'));
    const all = () => Promise.all([...this.active]);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([all(), timer])) === 'timeout') this.shutdown.abort();
    await all();
  }

  async close(): Promise<void> {
    this.draining = true;
    this.shutdown.abort();
    await this.client.close();
  }
}

function ewma(old: number, x: number, w = 0.1): number {
  return old === 0 ? x : old + w * (x - old);
}
