import { decodeOverheadMs, type PassReport, type StepResult } from '../ipc/messages.ts';
import { chooseK, expectedTokens, StepCosts } from '../scheduler/adaptive-k.ts';
import { HEADROOM, UNBUDGETED_ITL_MS } from '../scheduler/router.ts';
import { verifyDrafts } from '../speculation/verify.ts';
import type { GrammarConstraint } from '../grammar/constraint.ts';
import type { GrammarSpec } from '../grammar/spec.ts';
import { rowLogits, type BatchCache, type BatchModels } from './batch.ts';
import { LaneSet, type Lane } from './lane.ts';
import { Sequence, type OpenMessage } from './sequence.ts';

const DRAFT_PREFILL_SCALE = 4;
/**
 * One decode round in this many runs another k than the chosen one, in turn one shorter, one longer, and plain
 * decoding (k = 0), so that each alternative's cost is measured on the batch as it is now: near the top of the goodput
 * curve the neighbours are within a few per cent of the best, so exploring costs little, and k = 0 is the baseline
 * the speculation margin is measured against (left unmeasured, one slow pass could keep it looking dear for good).
 */
const EXPLORE_EVERY = 8;
const EXPLORE_CYCLE = [-1, 1, 0] as const;
const EXPLORE_IDLE = 64;

export interface CoreOptions {
  maxK: number;
  /** Prompt token-rows per prefill pass while other streams decode: one chunk's delay to them at a time. */
  prefillChunk: number;
  /** Token-rows per prefill pass when nobody is decoding (nobody to delay: a bigger pass is cheaper per token). */
  idlePrefillBudget?: number;
  calibration?: ConstructorParameters<typeof StepCosts>[0];
  /** Builds a constrained stream's grammar state (the worker's Grammars); without it, constrained opens fail. */
  grammar?: (spec: GrammarSpec) => Promise<GrammarConstraint>;
}

/** Receives each pass group's results (one per stream it touched) and, for a decode step, what it cost. */
export type CoreSink = (results: StepResult[], report: PassReport | null) => void;

interface ModelLanes<C extends BatchCache> {
  prefill: LaneSet<C>;
  run: LaneSet<C>;
}

/**
 * The engine core: every stream's state, the scheduler and the models' batched caches, in one loop (vLLM's
 * EngineCore.step, llama.cpp's update_slots). Each iteration:
 *   1. prefill: one pass over the streams whose prompts are not cached yet (target, then draft), chunked so that
 *      while others decode it holds them up by one chunk's worth of token-rows. The target's prefill pass covers
 *      the whole prompt and yields the first token, so speculation never delays the first token: a speculative
 *      stream decodes in the target batch with k = 0 until its draft has caught up, then joins the draft batch.
 *   2. decode: k batched draft passes over the drafting streams (k per stream, the auto ones share the k with the
 *      best goodput for this batch), then one verify pass over every decoding stream, each row with its own
 *      tokens; acceptance, rollback (by mask) and output per stream.
 *   3. results of every pass group go out as one message; finished and closed streams leave their batches.
 * There is no per-step round trip to the main thread: it only opens and closes streams.
 */
export class EngineCore<C extends BatchCache> {
  private readonly seqs = new Map<number, Sequence>();
  private readonly arrivals: Sequence[] = [];
  private readonly target: ModelLanes<C>;
  private readonly draft: ModelLanes<C> | null;
  readonly costs: StepCosts;
  private alphaPrior = 0.7;
  private overheadPerRowMs = 0;
  private lastDecodeEnd = 0;
  private lastDecodeMs = 0;
  private autoRounds = 0;
  private prefillMsPerToken = 0;
  private prefillMsPerIteration = 0;
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly models: BatchModels<C>,
    private readonly eos: ReadonlySet<number>,
    private readonly opts: CoreOptions,
    private readonly sink: CoreSink,
    private readonly onFailure: (sid: number, message: string) => void,
  ) {
    this.costs = new StepCosts(opts.calibration);
    const lanes = (m: BatchModels<C>['target']): ModelLanes<C> => ({ prefill: new LaneSet(m), run: new LaneSet(m) });
    this.target = lanes(models.target);
    this.draft = models.draft ? lanes(models.draft) : null;
  }

  get streams(): number {
    return this.seqs.size;
  }

  open(msg: OpenMessage): void {
    if (msg.mode !== 'target' && !this.draft) return this.onFailure(msg.sid, `mode ${msg.mode} needs a draft model`);
    const seq = new Sequence(msg, this.models.target.vocab, this.eos, this.alphaPrior);
    this.seqs.set(msg.sid, seq);
    if (!msg.grammar) return this.arrive(seq);
    if (!this.opts.grammar) return this.refuse(seq, 'this engine runs without grammars');
    // Compiling a new schema runs here, between iterations (~0.2 s once per schema, bench:xgrammar; cached after).
    this.opts.grammar(msg.grammar).then(
      (g) => {
        if (seq.closed) return g.dispose();
        seq.grammar = g;
        this.arrive(seq);
      },
      (e: unknown) => this.refuse(seq, e instanceof Error ? e.message : String(e)),
    );
  }

  private arrive(seq: Sequence): void {
    this.arrivals.push(seq);
    this.wake?.();
  }

  private refuse(seq: Sequence, message: string): void {
    this.seqs.delete(seq.sid);
    if (!seq.closed) this.onFailure(seq.sid, message);
  }

  /** Newcomers get their (empty) rows between iterations: a batch must not change while a pass runs on it. */
  private admit(): void {
    for (const seq of this.arrivals.splice(0)) {
      if (!seq.closed) (seq.mode === 'draft' ? this.draft! : this.target).prefill.open().addEmpty([seq]);
    }
  }

  /** The stream's rows leave their batches at the next iteration boundary (a pass may be running now). */
  close(sid: number): void {
    const seq = this.seqs.get(sid);
    if (seq) seq.closed = true;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      this.reap();
      if (this.seqs.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      try {
        await this.iterate();
      } catch (e) {
        this.failAll(e instanceof Error ? e.message : String(e));
      }
      // Let the port deliver opens and closes between iterations.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** One iteration (exposed for tests that drive the core step by step). */
  async iterate(): Promise<void> {
    this.admit();
    const decoding = this.target.run.size + (this.draft?.run.size ?? 0);
    const budget = decoding > 0 ? this.prefillBudget() : (this.opts.idlePrefillBudget ?? 8 * this.opts.prefillChunk);
    let prefillMs = 0;
    // Each prefill's results go out as soon as its pass is done: a first token must not wait for the draft's prefill.
    for (const [set, which] of [
      [this.target, 'target'],
      [this.draft, 'draft'],
    ] as const) {
      if (!set) continue;
      const p0 = performance.now();
      // A draft pass costs a fraction of a target pass (c ≈ 0.15–0.2 for the bundled pair): the same delay to the
      // others buys it several times the tokens, so speculation starts sooner after a long prompt.
      const tokens = await this.prefill(set, which, which === 'draft' ? DRAFT_PREFILL_SCALE * budget : budget);
      if (tokens === 0) continue;
      prefillMs += performance.now() - p0;
      if (which === 'target') this.prefillMsPerToken = ewma(this.prefillMsPerToken, (performance.now() - p0) / tokens);
      // The router predicts TTFT from the target's prefill rate (a first token never waits for the draft's).
      this.flush(which === 'target' ? { ...emptyReport(), prefillMs: performance.now() - p0, prefillTokens: tokens } : null);
    }
    this.reap();
    if (decoding > 0) this.prefillMsPerIteration = ewma(this.prefillMsPerIteration, prefillMs);
    const report = await this.decode();
    if (report) this.flush(report);
  }

  private flush(report: PassReport | null): void {
    const results: StepResult[] = [];
    for (const s of this.seqs.values()) {
      const r = s.closed ? null : s.takeResult();
      if (r) results.push(r);
    }
    if (results.length > 0 || report) this.sink(results, report);
  }

  /** Finished and closed streams leave every batch (one rebuild per batch for all of them). */
  private reap(): void {
    const gone = [...this.seqs.values()].filter((s) => s.closed || s.done);
    if (gone.length === 0) return;
    for (const set of [this.target, this.draft]) {
      set?.prefill.drop(gone);
      set?.run.drop(gone);
    }
    for (const s of gone) {
      this.seqs.delete(s.sid);
      s.grammar?.dispose();
      if (s.acceptance.accepted + s.acceptance.rejections > 0) this.alphaPrior += 0.1 * (s.acceptance.alpha - this.alphaPrior);
    }
  }

  /**
   * One prefill pass per lane of `which` model, each row fed its next chunk. Target prefill runs the whole prompt
   * and samples the first token from its last row; a speculative stream's draft prefill runs all its tokens but the
   * last (the next draft pass feeds it), a draft-mode stream's runs all of them and samples from the draft.
   */
  private async prefill(set: ModelLanes<C>, which: 'target' | 'draft', budget: number): Promise<number> {
    let cached = 0;
    for (const lane of [...set.prefill.lanes]) {
      if (lane.size === 0 || budget <= 0) continue;
      // The prefill that yields a stream's first token runs its whole prompt; every other runs all tokens but the last.
      const first = (s: Sequence) => !s.started && (which === 'target') === (s.mode !== 'draft');
      const goal = (s: Sequence) => s.tokens.length - (first(s) ? 0 : 1);
      const remaining = (s: Sequence) => goal(s) - lane.cache.length(lane.row(s));
      const T = Math.min(Math.max(...lane.seqs.map(remaining)), Math.max(8, Math.floor(budget / lane.size)));
      // Streams whose first token this pass yields need their grammar's first mask.
      await this.prepareMasks(
        lane,
        (s) => first(s) && remaining(s) <= T,
        () => 0,
      );
      const res = await lane.run(
        (s) => s.tokens.slice(lane.cache.length(lane.row(s)), lane.cache.length(lane.row(s)) + Math.min(T, remaining(s))),
        1,
      );
      if (res) {
        budget -= res.rows * res.T;
        this.eachStream(lane, (s, r) => {
          const fed = res.feeds[r]!.length;
          if (fed === 0) return;
          cached += fed;
          s.out.prefill = true;
          if (which === 'target') {
            s.out.targetMs += res.ms;
            s.out.targetTokens += fed;
          } else {
            s.out.draftMs += res.ms;
            s.out.draftCalls++;
          }
          if (remaining(s) === 0 && first(s)) {
            const row = rowLogits(res.logits, lane.model.vocab, res.K, r, fed - 1, fed);
            const t = s.chooser.choose(s.masked(row, 0), s.tokens);
            if (!this.grammarStep(s, (g) => g.settle(0, [t]))) return;
            s.emit([t], [which === 'target' ? 1 : 0], () => row);
            s.started = true;
          }
        });
      }
      const finished = lane.seqs.filter((s) => remaining(s) <= 0 && !s.done && !s.closed);
      set.run.adopt(lane, finished);
      for (const s of finished) {
        if (which === 'draft') s.draftReady = s.mode === 'speculative';
        else if (s.mode === 'speculative' && s.left > 1) this.draft!.prefill.open().addEmpty([s]);
      }
    }
    return cached;
  }

  private async decode(): Promise<PassReport | null> {
    const decoding = this.target.run.lanes.flatMap((l) => l.seqs).filter((s) => !s.done && !s.closed);
    const drafting = this.draft ? this.draft.run.lanes.flatMap((l) => l.seqs).filter((s) => !s.done && !s.closed) : [];
    if (decoding.length === 0 && drafting.length === 0) {
      this.lastDecodeEnd = 0; // a period only spans back-to-back decode steps, never an idle spell or a prefill-only one
      return null;
    }
    const t0 = performance.now();
    const report = { ...emptyReport(), rows: decoding.length + drafting.filter((s) => s.mode === 'draft').length };
    this.chooseRoundK(decoding);

    const maxK = Math.max(drafting.some((s) => s.mode === 'draft') ? 1 : 0, ...decoding.map((s) => s.roundK));
    for (let j = 0; j < maxK && this.draft; j++) {
      for (const lane of this.draft.run.lanes) {
        await this.prepareMasks(
          lane,
          (s) => this.draftFeed(lane, s, j).length > 0,
          (s) => (s.mode === 'draft' ? 0 : j),
        );
        const res = await lane.run((s) => this.draftFeed(lane, s, j), 1);
        if (!res) continue;
        this.costs.draftGrid.observe(res.rows, res.T, res.ms);
        report.passes.push(['draft', res.rows, res.T, res.ms]);
        this.eachStream(lane, (s, r) => {
          const fed = res.feeds[r]!.length;
          if (fed === 0) return;
          s.out.draftMs += res.ms;
          s.out.draftCalls++;
          const row = rowLogits(res.logits, lane.model.vocab, res.K, r, fed - 1, fed);
          if (s.mode === 'draft') {
            const t = s.chooser.choose(s.masked(row, 0), s.tokens);
            if (!this.grammarStep(s, (g) => g.settle(0, [t]))) return;
            return s.emit([t], [0], () => row);
          }
          const n = s.tokens.length;
          s.tokens.push(...s.drafts); // the penalties see the proposals so far
          const shaped = s.masked(row, j);
          const d = s.chooser.greedy
            ? s.chooser.choose(shaped, s.tokens)
            : s.chooser.propose(shaped, s.tokens, (s.qRows[j] ??= new Float32Array(lane.model.vocab)));
          s.tokens.length = n;
          if (!this.grammarStep(s, (g) => g.propose(d))) return;
          s.drafts.push(d);
        });
      }
    }

    const verifies = (s: Sequence) => !(s.done || s.closed || s.waiting);
    for (const lane of this.target.run.lanes) {
      // Masks for the positions after the proposals (the bonus, or the only one without drafts); the earlier ones
      // were taken while drafting.
      await this.prepareMasks(lane, verifies, (s) => s.drafts.length);
      const res = await lane.run((s) => (verifies(s) ? [s.tokens.at(-1)!, ...s.drafts] : []), 0);
      if (!res) continue;
      this.costs.targetGrid.observe(res.rows, res.T, res.ms);
      report.passes.push(['target', res.rows, res.T, res.ms]);
      this.eachStream(lane, (s, r) => {
        const t = res.feeds[r]!.length;
        if (t === 0) return;
        const n = s.tokens.length;
        const v = verifyDrafts(
          s.chooser,
          (j) => s.masked(rowLogits(res.logits, lane.model.vocab, res.K, r, j, t), j),
          s.drafts,
          s.qRows,
          s.tokens,
          s.eos,
        );
        if (!this.grammarStep(s, (g) => g.settle(v.accepted, v.tokens))) return;
        lane.cache.truncate(r, n + v.accepted);
        if (s.draftReady) this.rollbackDraft(s, n + v.accepted);
        if (s.drafts.length > 0) s.acceptance.observe(v.accepted, s.drafts.length);
        s.out.proposed += s.drafts.length;
        s.out.accepted += v.accepted;
        s.out.targetMs += res.ms;
        s.out.targetTokens += t;
        s.drafts = [];
        // Token i was chosen from verify row i: the accepted proposals', then the correction's or the bonus's.
        s.emit(v.tokens, v.sources, (i) => rowLogits(res.logits, lane.model.vocab, res.K, r, i, t));
      });
    }
    const end = performance.now();
    report.decodeMs = end - t0;
    this.lastDecodeMs = report.decodeMs;
    report.periodMs = this.lastDecodeEnd > 0 ? end - this.lastDecodeEnd : 0;
    this.lastDecodeEnd = end;
    const logitsRows = report.passes.reduce((a, [, rows, T]) => a + rows * T, 0);
    if (logitsRows > 0) this.overheadPerRowMs = ewma(this.overheadPerRowMs, decodeOverheadMs(report) / logitsRows);
    return report;
  }

  /**
   * Prompt token-rows for this iteration's prefill while others decode: one chunk, or less when a budgeted stream's
   * allowance leaves less room after its decode step (never under 8, so newcomers always progress).
   */
  private prefillBudget(): number {
    const tightest = Math.min(...[...this.seqs.values()].filter((s) => s.started && !s.done).map((s) => s.allowanceMs));
    if (!(tightest < UNBUDGETED_ITL_MS) || this.prefillMsPerToken === 0) return this.opts.prefillChunk;
    const room = tightest - this.lastDecodeMs;
    return Math.max(8, Math.min(this.opts.prefillChunk, Math.floor(room / this.prefillMsPerToken)));
  }

  /** Fixed k where the request set one; the rest share the k with the best goodput for this batch (maybe 0). */
  private chooseRoundK(decoding: readonly Sequence[]): void {
    const ready = decoding.filter((s) => s.mode === 'speculative' && s.draftReady && s.left > 1);
    const auto = ready.filter((s) => s.k === 'auto');
    const others = decoding.length - auto.length;
    const budgeted = decoding.filter((s) => s.allowanceMs < UNBUDGETED_ITL_MS);
    // A stream's gap per token is the whole iteration (its prefill pass included) over the tokens its round makes,
    // kept within the router's headroom: what the client sees adds the main thread's share to the passes.
    const overBudget = (k: number, roundMs: number) =>
      Math.max(
        0,
        ...budgeted.map((s) => {
          const tokens = s.mode !== 'speculative' || !ready.includes(s) ? 1 : expectedTokens(s.acceptance.alpha, s.k === 'auto' ? k : s.k);
          return (roundMs + this.prefillMsPerIteration) / tokens / (HEADROOM * s.allowanceMs);
        }),
      );
    const round = auto.length > 0 ? ++this.autoRounds : 0;
    const choose = (explore?: -1 | 0 | 1) =>
      chooseK(
        auto.map((s) => s.acceptance.alpha),
        this.costs,
        this.opts.maxK,
        {
          others,
          overheadPerRowMs: this.overheadPerRowMs,
          minK: 0,
          ...(budgeted.length > 0 ? { overBudget } : {}),
          ...(explore !== undefined ? { explore } : {}),
        },
      );
    let k = auto.length > 0 ? choose() : 0;
    // Exploring away from plain decoding costs more than exploring around a k > 0: the draft has fallen behind and
    // must catch up in that round (8–16 tokens a row). So while k = 0 is the choice, only one round in EXPLORE_IDLE
    // explores.
    if (auto.length > 0 && round % EXPLORE_EVERY === 0 && (k > 0 || round % EXPLORE_IDLE === 0))
      k = choose(EXPLORE_CYCLE[(round / EXPLORE_EVERY) % EXPLORE_CYCLE.length]);
    for (const s of decoding) {
      const want = !ready.includes(s) ? 0 : s.k === 'auto' ? k : s.k;
      s.roundK = Math.max(0, Math.min(want, this.opts.maxK, s.left - 1));
      s.drafts = [];
    }
  }

  /** What a draft row runs in draft pass j: its missing tokens first, then its previous proposal. */
  private draftFeed(lane: Lane<C>, s: Sequence, j: number): readonly number[] {
    if (s.done || s.closed) return [];
    if (s.mode === 'draft') return j === 0 ? s.tokens.slice(lane.cache.length(lane.row(s))) : [];
    if (s.drafts.length !== j || j >= s.roundK) return [];
    if (j === 0) return s.tokens.slice(lane.cache.length(lane.row(s)));
    const prev = s.drafts[j - 1]!;
    return s.eos.has(prev) ? [] : [prev]; // nothing after an EOS proposal can be accepted
  }

  /**
   * Grammar masks for the lane's next pass, for its constrained streams that `runs` in it; a stream whose grammar
   * fails ends alone (failed), the batch runs on. Unconstrained streams cost nothing here (the lane's usual case).
   */
  private async prepareMasks(lane: Lane<C>, runs: (s: Sequence) => boolean, position: (s: Sequence) => number): Promise<void> {
    const constrained = lane.seqs.filter((s) => s.grammar && !s.closed && runs(s));
    if (constrained.length === 0) return;
    await Promise.all(constrained.map((s) => s.grammar!.prepare(position(s)).catch((e: unknown) => this.failOne(s, e))));
  }

  /** Runs f on the stream's grammar, if it has one; false (and the stream failed) when the grammar threw. */
  private grammarStep(s: Sequence, f: (g: GrammarConstraint) => void): boolean {
    if (!s.grammar) return true;
    try {
      f(s.grammar);
      return true;
    } catch (e) {
      this.failOne(s, e);
      return false;
    }
  }

  /**
   * f for each stream of the lane with its row. What one stream's request makes throw (sampling on a degenerate
   * distribution, a grammar) ends that stream alone, failed; the others in the batch go on.
   */
  private eachStream(lane: Lane<C>, f: (s: Sequence, row: number) => void): void {
    lane.byRow.forEach((s, r) => {
      if (!s || s.closed) return;
      try {
        f(s, r);
      } catch (e) {
        this.failOne(s, e);
      }
    });
  }

  private failOne(s: Sequence, e: unknown): void {
    if (s.closed) return;
    s.closed = true;
    this.onFailure(s.sid, e instanceof Error ? e.message : String(e));
  }

  private rollbackDraft(s: Sequence, keep: number): void {
    const lane = this.draft!.run.laneOf(s)!;
    const r = lane.row(s);
    lane.cache.truncate(r, Math.min(lane.cache.length(r), keep));
  }

  private failAll(message: string): void {
    for (const s of this.seqs.values()) {
      if (!s.closed) this.onFailure(s.sid, message);
      s.closed = true;
    }
    this.reap();
  }
}

function emptyReport(): PassReport {
  return {
    rows: 0,
    decodeMs: 0,
    periodMs: 0,
    passes: [],
    prefillMs: 0,
    prefillTokens: 0,
  };
}

function ewma(old: number, x: number, w = 0.1): number {
  return old === 0 ? x : old + w * (x - old);
}
