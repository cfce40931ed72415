import { setMaxListeners } from 'node:events';
import { basename } from 'node:path';
import { mean } from '../lib/stats.ts';
import type { EngineOptions } from './options.ts';
import { type EncodeOptions, PromptCodec } from './prompt.ts';
import { randomSeed, type TokenLogprob } from './sampling/index.ts';
import { SchemaChecker } from './grammar/schema-checker.ts';
import type { GrammarSpec } from './grammar/spec.ts';
import { Admission } from './scheduler/admission.ts';
import { StepCosts } from './scheduler/adaptive-k.ts';
import { predict, route, UNBUDGETED_ITL_MS, type LiveLoad } from './scheduler/router.ts';
import { StreamStats } from './stream-stats.ts';
import { StreamText } from './text/output.ts';
import {
  EngineError,
  type DoneEvent,
  type TokenLogprobs,
  type Engine,
  type EngineEvent,
  type EngineHealth,
  type EngineStats,
  type FinishReason,
  type GenerateRequest,
  type Mode,
  type ModelInfo,
  type ModelLayout,
  type ResponseFormat,
  type RouteDecision,
  type TokenSource,
} from './types.ts';
import { decodeOverheadMs, type PassReport, type StepResult, type WorkerInit } from './ipc/messages.ts';
import { WorkerClient, type ResultFeed } from './worker-client.ts';
import type { DecoderInfo } from './model/decoder.ts';

const SOURCES: TokenSource[] = ['draft', 'target', 'bonus'];
const PREFILL_CHUNK = 64;
/** Draft length of a seeded, sampled request that asked for k "auto" (see OpenMessage.pinned). */
const SEEDED_K = 3;

/** Waits before each attempt to replace a dead model worker. */
const RESTART_BACKOFF_MS = [100, 500, 1_000, 2_000, 5_000];

/**
 * The engine's main-thread half: validation, tokenising, admission, budget routing, detokenising and stop strings.
 * It never touches a model and never schedules a step: it opens a stream in the model worker, whose engine core
 * (core/engine-core.ts) runs every open stream in each batched iteration, and turns the token batches that come
 * back into events. A stop string or a cancel closes the stream there.
 */
export class SpecEngine implements Engine {
  private nextSid = 1;
  private draining = false;
  private readonly shutdown = new AbortController();
  private readonly costs: StepCosts;
  private alphaPrior = 0.7;
  /** Live figures the router predicts from (EWMAs over recent iterations and streams). */
  private readonly live = { overheadMs: 0, streamMs: 0, prefillMsPerToken: 0, iterationMs: 0 };
  private readonly itlCorrection: Record<Mode, number> = { target: 1, speculative: 1, draft: 1 };
  private readonly active = new Set<Promise<void>>();
  private readonly schemas = new SchemaChecker();

  /** Set while the model worker is dead: why, and whether a restart is still being tried. */
  private down: { reason: string; restarting: boolean } | null = null;
  private workerRestarts = 0;

  private constructor(
    private readonly opts: EngineOptions,
    private client: WorkerClient,
    private readonly init: WorkerInit,
    private readonly codec: PromptCodec,
    private readonly admission: Admission,
  ) {
    this.costs = new StepCosts(client.calibration);
    this.attach(client);
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
    const init: WorkerInit = {
      targetPath: opts.targetPath,
      draftPath: opts.draftPath,
      load: { dtype: opts.dtype, threads: opts.threads, graph: opts.graph ?? 'auto', ...remote },
      prefillChunk: PREFILL_CHUNK,
      maxK: opts.maxK,
      maxRows: opts.maxRunning,
      grammarVocabulary: codec.grammarVocabulary(),
    };
    const client = await WorkerClient.start(init);
    return new SpecEngine(opts, client, init, codec, new Admission(opts.maxRunning, opts.maxQueue, opts.queueTimeoutMs));
  }

  get ready(): boolean {
    return !this.draining && !this.down;
  }

  health(): EngineHealth {
    return { ok: !this.down, reason: this.down?.reason ?? null, workerRestarts: this.workerRestarts };
  }

  /** Test hook: make the model worker exit as a crash would (the engine then restarts it). */
  crashWorkerForTests(): void {
    this.client.crashForTests();
  }

  private attach(client: WorkerClient): void {
    client.onReport((r) => this.observe(r));
    client.onDeath((e) => void this.restart(e));
  }

  /**
   * A dead worker took every running stream with it (their feeds failed, so each ended with an error naming the
   * cause). Start a new one and reload the models, with bounded retries and backoff; meanwhile the engine is not
   * ready and not healthy, and new requests are refused with not_ready.
   */
  private async restart(cause: Error): Promise<void> {
    const reason = `the model worker died (${cause.message})`;
    this.down = { reason: `${reason}; restarting it`, restarting: true };
    for (let attempt = 0; attempt < RESTART_BACKOFF_MS.length && !this.draining; attempt++) {
      await new Promise((r) => setTimeout(r, RESTART_BACKOFF_MS[attempt]).unref());
      try {
        const client = await WorkerClient.start(this.init);
        if (this.draining) {
          await client.shutdown();
          return;
        }
        this.client = client;
        this.attach(client);
        this.workerRestarts++;
        this.down = null;
        return;
      } catch (e) {
        this.down = { reason: `${reason}; restart ${attempt + 1} failed: ${e instanceof Error ? e.message : String(e)}`, restarting: true };
      }
    }
    this.down = { reason: `${reason}; it could not be restarted`, restarting: false };
  }

  info(): ModelInfo {
    return {
      target: {
        id: basename(this.opts.targetPath),
        path: this.opts.targetPath,
        contextLength: this.client.target.contextLength,
        vocabSize: this.client.target.vocabSize,
        layout: layoutOf(this.client.target, this.opts.dtype),
      },
      draft:
        this.opts.draftPath && this.client.draft
          ? { id: basename(this.opts.draftPath), path: this.opts.draftPath, layout: layoutOf(this.client.draft, this.opts.dtype) }
          : null,
    };
  }

  stats(): EngineStats {
    return this.admission.stats;
  }

  /** Token ids of a request's prompt, as the engine will run it (for validation and benchmarks). */
  encode(input: GenerateRequest['input']): number[] {
    return this.codec.encode(input);
  }

  tokenize(input: GenerateRequest['input'], opts: EncodeOptions = {}): number[] {
    return this.codec.encode(input, opts);
  }

  detokenize(ids: readonly number[]): string {
    const vocab = this.client.target.vocabSize;
    const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad >= 0) {
      throw new EngineError('invalid_request', `token id ${ids[bad]} at index ${bad} is outside the vocabulary (0..${vocab - 1})`, {
        param: 'tokens',
      });
    }
    return this.codec.decodeAll(ids);
  }

  async *generate(req: GenerateRequest): AsyncGenerator<EngineEvent> {
    const t0 = performance.now();
    if (this.draining) throw new EngineError('shutting_down', 'server is shutting down');
    if (this.down) throw new EngineError('not_ready', `${this.down.reason}; retry when GET /ready returns 200`);
    const refused = this.admission.refusal();
    if (refused) throw refused;
    const promptIds = this.encodePrompt(req);
    const decision = req.mode === 'auto' ? this.route(req, promptIds.length) : undefined;
    const mode: Mode = decision?.mode ?? (req.mode as Mode);
    this.validate(mode, promptIds);
    this.validateSampling(req.sampling);
    const grammar = req.responseFormat ? await this.grammarOf(req.responseFormat) : undefined;
    const release = await this.admission.acquire(req.signal);
    let finished: () => void = () => {};
    const running = new Promise<void>((r) => (finished = r));
    this.active.add(running);
    const sid = this.nextSid++;
    const allowanceMs = req.latencyBudget?.itlMs ?? UNBUDGETED_ITL_MS;
    const predictedItl = predict(mode, promptIds.length, this.costs, this.liveLoad()).itlMs;
    const seed = req.sampling.seed ?? randomSeed();
    // A sampled speculative stream's tokens depend on its rounds (which k, when the draft joins), not only on its
    // seed: the distribution is the target's either way, but reproducing a seeded request needs the same rounds.
    const pinned = mode === 'speculative' && req.sampling.seed !== undefined && req.sampling.temperature > 0;
    const feed = this.client.open({
      type: 'open',
      sid,
      promptIds,
      mode,
      sampling: { ...req.sampling, seed },
      ignoreEos: req.ignoreEos ?? false,
      maxNew: this.maxNew(req, promptIds),
      k: this.streamK(mode, req.k, pinned),
      ...(pinned ? { pinned } : {}),
      allowanceMs,
      logprobs: req.logprobs ?? null,
      ...(grammar ? { grammar } : {}),
    });
    const stats = new StreamStats(t0, performance.now() - t0);
    try {
      yield { type: 'start', promptTokens: promptIds.length, queueMs: stats.queueMs, mode, seed, ...(decision ? { route: decision } : {}) };
      yield* this.decode(feed, { ...req, mode }, promptIds, stats, decision);
      this.live.streamMs = ewma(this.live.streamMs, stats.now());
      this.learnItl(mode, predictedItl, stats);
    } finally {
      this.client.close(sid);
      release();
      finished();
      this.active.delete(running);
    }
  }

  /** An iteration's costs feed the router's predictions (the worker chooses k from its own copy of the tables). */
  private observe(r: PassReport): void {
    for (const [model, rows, tokens, ms] of r.passes)
      (model === 'target' ? this.costs.targetGrid : this.costs.draftGrid).observe(rows, tokens, ms);
    if (r.rows > 0) {
      // What streams wait between rounds: the whole loop period when there is one (prefill passes included).
      this.live.iterationMs = ewma(this.live.iterationMs, r.periodMs > 0 ? r.periodMs : r.decodeMs);
      this.live.overheadMs = ewma(this.live.overheadMs, decodeOverheadMs(r));
    }
    if (r.prefillTokens > 0) this.live.prefillMsPerToken = ewma(this.live.prefillMsPerToken, r.prefillMs / r.prefillTokens);
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
        const p = predict(m, promptTokens, this.costs, load);
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
      iterationMs: this.live.iterationMs,
      overheadMs: this.live.overheadMs,
      streamMs: this.live.streamMs || 100 * t1,
      prefillMsPerToken: this.live.prefillMsPerToken || this.costs.target(1, 16) / 16,
    };
  }

  /** The grammar of a response_format, refused here (400) when XGrammar cannot constrain to it. */
  private async grammarOf(format: ResponseFormat): Promise<GrammarSpec> {
    const spec: GrammarSpec =
      format.type === 'json_object'
        ? { schema: '{"type": "object"}', strict: false }
        : { schema: JSON.stringify(format.schema), strict: true };
    const why = await this.schemas.check(spec);
    if (why !== null) {
      throw new EngineError('invalid_request', `response_format: XGrammar cannot constrain output to this schema: ${why}`, {
        param: 'response_format',
      });
    }
    return spec;
  }

  private validateSampling(sampling: GenerateRequest['sampling']): void {
    const vocab = this.client.target.vocabSize;
    const bad = (sampling.logitBias ?? []).find(([id]) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad) {
      throw new EngineError('invalid_request', `logit_bias names token ${bad[0]}, outside the vocabulary (0..${vocab - 1})`, {
        param: 'logit_bias',
      });
    }
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
    feed: ResultFeed,
    req: GenerateRequest & { mode: Mode },
    promptIds: number[],
    stats: StreamStats,
    decision: RouteDecision | undefined,
  ): AsyncGenerator<EngineEvent> {
    const text = new StreamText({ decode: this.codec.decode, stop: req.stop, promptIds });
    const maxNew = this.maxNew(req, promptIds);
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

    while (true) {
      let r: StepResult | null;
      try {
        r = await this.nextOrInterrupt(feed, req.signal);
      } catch (e) {
        return yield done('error', { code: 'internal', message: e instanceof Error ? e.message : String(e) });
      }
      const early = interrupted();
      if (!r || early) return yield done(early ?? 'cancelled');
      if (r.prefill) stats.prefillMs += r.targetMs + r.draftMs;
      else {
        stats.passes(r.draftMs, r.draftCalls, r.targetMs, r.targetTokens);
        stats.round(r.proposed, r.accepted);
      }
      const ids = r.tokens.slice(0, maxNew - generated);
      const out = text.push(ids);
      const used = out.stopped ? out.tokensUsed : ids.length;
      generated += used;
      completion += out.text;
      if (used > 0 || out.text) {
        const lps = r.logprobs;
        const tokens = stats.stamp(
          ids.slice(0, used).map((id, i) => ({
            id,
            text: out.perToken[i] ?? '',
            source: SOURCES[r!.sources[i]!]!,
            ...(lps?.[i] ? { logprobs: this.logprobsOf(id, lps[i]) } : {}),
          })),
        );
        yield { type: 'tokens', text: out.text, tokens };
      }
      let reason: FinishReason | null = out.stopped || r.eos ? 'stop' : generated >= maxNew || r.done ? 'length' : null;
      if (reason) {
        const tail = out.stopped ? '' : text.finish();
        if (text.stopped) reason = 'stop'; // the held-back tail itself completed a stop string
        if (tail) {
          completion += tail;
          yield { type: 'tokens', text: tail, tokens: [] };
        }
        if (stats.proposed > 0) this.alphaPrior += 0.1 * (stats.accepted / stats.proposed - this.alphaPrior);
        return yield done(reason);
      }
    }
  }

  private logprobsOf(id: number, lp: TokenLogprob): TokenLogprobs {
    const text = (t: number) => this.codec.decodeAll([t]);
    return { id, text: text(id), logprob: lp.lp, top: lp.top.map(([t, logprob]) => ({ id: t, text: text(t), logprob })) };
  }

  /** The k a stream opens with: 0 outside speculative mode, a pinned stream's fixed k, else the request's (capped). */
  private streamK(mode: Mode, k: GenerateRequest['k'], pinned: boolean): number | 'auto' {
    if (mode !== 'speculative') return 0;
    if (k !== 'auto') return Math.min(k, this.opts.maxK);
    return pinned ? Math.min(SEEDED_K, this.opts.maxK) : 'auto';
  }

  private maxNew(req: GenerateRequest, promptIds: number[]): number {
    return Math.min(req.maxTokens, this.client.target.contextLength - promptIds.length);
  }

  /** The stream's next result, or null if it was cancelled or the engine shut down first. */
  private nextOrInterrupt(feed: ResultFeed, signal?: AbortSignal): Promise<StepResult | null> {
    const signals = [this.shutdown.signal, ...(signal ? [signal] : [])];
    if (signals.some((s) => s.aborted)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        cleanup();
        resolve(null);
      };
      const cleanup = () => signals.forEach((s) => s.removeEventListener('abort', onAbort));
      signals.forEach((s) => s.addEventListener('abort', onAbort, { once: true }));
      feed.next().then(
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
    this.schemas.close();
    await this.client.shutdown();
  }
}

function layoutOf(d: DecoderInfo, dtype: string): ModelLayout {
  return {
    family: d.family,
    dtype,
    file: d.file,
    attention: d.kvHeads === d.heads ? 'MHA' : d.kvHeads === 1 ? 'MQA' : 'GQA',
    heads: d.heads,
    kvHeads: d.kvHeads,
    headDim: d.headDim,
    kvDtype: d.kvType,
    logitsDtype: d.logitsType,
    merged: d.merged,
    positionIds: d.positionIds,
    pooled: d.pooled,
    contextLength: d.contextLength,
    layers: d.layers,
  };
}

function ewma(old: number, x: number, w = 0.1): number {
  return old === 0 ? x : old + w * (x - old);
}
