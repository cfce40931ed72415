/**
 * Draft length choice: Leviathan et al.'s expected-speed model fed with live, batched measurements.
 * A round with draft length k yields E(k) = (1 − α^(k+1)) / (1 − α) tokens per stream and costs k draft passes
 * plus one target pass over k + 1 tokens per row. With B streams in one batch the passes cover B rows, and the
 * cost of a pass depends mostly on its token-rows N = rows × tokens (measured: at 16 rows the verify pass is no
 * longer nearly free), so the k that maximises the batch's tokens per millisecond (its goodput) shrinks as the
 * batch grows, down to k = 0 (plain target decoding) when verification costs more than the draft saves.
 */

const EWMA = 0.1;
/**
 * A shape class's level moves this far toward each pass it sees: one pass on a shared machine can be 2× off, and at
 * 0.25 the levels of 16 × 1 and 16 × 2 passes crossed often enough to make k = 1 look free for whole stretches.
 */
const CLASS_EWMA = 0.1;
const OUTLIER = 1.5;
/** Goodput within this fraction of the best counts as the best (chooseK). */
const NEAR_BEST = 0.97;
/**
 * How much more goodput than plain decoding (k = 0) speculating must promise, in a batch of `rows` streams, to be
 * chosen over it: nothing for one stream, then SPECULATION_MARGIN_PER_DOUBLING more per doubling of the batch (1.35
 * at 4 streams, 1.7 at 16, 1.875 at 32). A round's cost is not all a batch pays for speculation, and the rest grows
 * with the number of streams. Through the server at 16 streams (`bench:concurrency --concurrency 16 --k N`), k = 1
 * ran 0.89× and k = 2 0.98× as fast as target-only, k = 0 1.00×, although per-pass traces (taken ad hoc, not a
 * committed bench) had those k = 1 and 2 rounds making 5–10 % more tokens per ms of decoding than k = 0, as the model
 * predicted; in full runs k = "auto" with a flat 1.35 margin ran 0.88–0.94× at c = 16 and 0.86–0.97× at c = 32.
 * Streams that speculate drift out of step (acceptance varies), so newcomers arrive one at a time, their prefills
 * batch less well, and batches run partly empty between a stream's end and its successor's first token; in lockstep
 * (target-only, or k = 0) none of that happens. Pass-cost estimates also scatter by about the per-round gain on a
 * shared machine. A wrong "yes" costs the whole batch, a wrong "no" only the gain. A pair whose verification stays
 * nearly free in a batch (a memory-bound target) still clears the margin and speculates.
 */
export const SPECULATION_MARGIN_PER_DOUBLING = 0.175;

export function speculationMargin(rows: number): number {
  return rows > 1 ? 1 + SPECULATION_MARGIN_PER_DOUBLING * Math.log2(rows) : 1;
}

/** One measured pass shape: `rows` rows of `tokens` new tokens each took `ms`. */
export type PassPoint = readonly [rows: number, tokens: number, ms: number];

/**
 * Pass time by shape (rows × tokens per row), one grid per model. Rows and tokens cost differently (measured on the
 * bundled target: 32 rows × 1 token ≈ 42 ms, 16 rows × 2 ≈ 29 ms), so the grid is two-dimensional: linear in tokens
 * within a calibrated row count, then linear in rows between the two nearest row counts (beyond the largest, along
 * its last slope). The shape comes from the start-up calibration, made monotonic (a pass with more rows or tokens
 * never costs less: a few timed reps on a shared machine can say otherwise). Its level follows every pass the engine
 * runs, per shape class (token count × row-count octave: each k verifies k + 1 tokens per row, so each alternative
 * k has its own level in the batch's regime, which the core's occasional exploration rounds keep current), and as
 * one overall factor for the classes not seen yet: calibration runs on a short context, real batches on longer ones
 * with padding. A grid built without a calibration records what it sees instead.
 */
export class PassGrid {
  /** rows → tokens → ms */
  private readonly grid = new Map<number, Map<number, number>>();
  private scale = 1;
  /** shape class (see classOf) → level of its passes (measured ÷ calibrated shape). */
  private readonly levels = new Map<string, number>();
  private readonly calibrated: boolean;

  constructor(initial: readonly PassPoint[] = []) {
    for (const [r, t, ms] of initial) if (ms > 0) this.set(r, t, ms);
    this.calibrated = this.known;
    this.monotonic();
  }

  get known(): boolean {
    return this.grid.size > 0;
  }

  observe(rows: number, tokens: number, ms: number): void {
    if (!(rows > 0 && tokens > 0 && ms > 0)) return;
    if (this.calibrated) {
      const key = classOf(rows, tokens);
      const level = this.levels.get(key) ?? this.scale; // a class seen for the first time starts from the overall level
      // A pass the machine stalled (2–5× its neighbours, now and then on a shared machine) counts as at most
      // OUTLIER× the level: a lasting slowdown still moves the level within a few passes, one stall does not.
      const ratio = Math.min(ms / this.shape(rows, tokens), OUTLIER * level);
      this.levels.set(key, level + CLASS_EWMA * (ratio - level));
      this.scale += EWMA * (ratio - this.scale);
    } else this.set(rows, tokens, mix(this.grid.get(rows)?.get(tokens) ?? 0, ms));
  }

  /** Cost of a pass over `rows` rows of `tokens` tokens each. */
  at(rows: number, tokens = 1): number {
    return this.shape(rows, tokens) * (this.levels.get(classOf(rows, tokens)) ?? this.scale);
  }

  /** Running maxima along tokens within each row count, then along row counts for each token count. */
  private monotonic(): void {
    const rs = [...this.grid.keys()].sort((a, b) => a - b);
    for (const r of rs) {
      const row = this.grid.get(r)!;
      let max = 0;
      for (const t of [...row.keys()].sort((a, b) => a - b)) row.set(t, (max = Math.max(max, row.get(t)!)));
    }
    const maxByTokens = new Map<number, number>();
    for (const r of rs) {
      for (const [t, ms] of this.grid.get(r)!) {
        // Compare at equal token counts only: a row count need not have been timed at every token count.
        const m = Math.max(maxByTokens.get(t) ?? 0, ms);
        maxByTokens.set(t, m);
        this.grid.get(r)!.set(t, m);
      }
    }
  }

  private set(rows: number, tokens: number, ms: number): void {
    const row = this.grid.get(rows) ?? new Map<number, number>();
    row.set(tokens, ms);
    this.grid.set(rows, row);
  }

  private shape(rows: number, tokens: number): number {
    const rs = [...this.grid.keys()].sort((a, b) => a - b);
    if (rs.length === 0) return 0;
    const [lo, hi] = bracket(rs, rows);
    const a = alongTokens(this.grid.get(lo)!, tokens);
    if (hi === lo) return lo === rows ? a : a * (rows / lo); // a single row count: scale with rows
    const b = alongTokens(this.grid.get(hi)!, tokens);
    return Math.max(Math.min(a, b), a + ((b - a) * (rows - lo)) / (hi - lo));
  }
}

/** Passes of one token count whose row counts are within one octave (1, 2–3, 4–7, 8–15, 16–31, …) share a level. */
function classOf(rows: number, tokens: number): string {
  return `${Math.floor(Math.log2(rows))}:${tokens}`;
}

/** The two nearest keys around x (or the last two / first two beyond the ends; one key: itself twice). */
function bracket(keys: readonly number[], x: number): [number, number] {
  if (keys.length === 1) return [keys[0]!, keys[0]!];
  const exact = keys.indexOf(x);
  if (exact >= 0) return [x, x];
  const i = keys.findIndex((k) => k > x);
  if (i === 0) return [keys[0]!, keys[1]!];
  if (i < 0) return [keys.at(-2)!, keys.at(-1)!];
  return [keys[i - 1]!, keys[i]!];
}

function alongTokens(row: Map<number, number>, tokens: number): number {
  const ts = [...row.keys()].sort((a, b) => a - b);
  const [lo, hi] = bracket(ts, tokens);
  const a = row.get(lo)!;
  if (hi === lo) return lo === tokens ? a : a * (1 + 0.05 * (tokens - lo)); // memory-bound: extra tokens are cheap
  const b = row.get(hi)!;
  return Math.max(Math.min(a, b), a + ((b - a) * (tokens - lo)) / (hi - lo));
}

export class StepCosts {
  readonly targetGrid: PassGrid;
  readonly draftGrid: PassGrid;

  constructor(initial?: { draft: readonly PassPoint[]; target: readonly PassPoint[] }) {
    this.targetGrid = new PassGrid(initial?.target);
    this.draftGrid = new PassGrid(initial?.draft);
  }

  /** One target pass over `rows` rows of `tokens` tokens. */
  target(rows: number, tokens = 1): number {
    return this.targetGrid.at(rows, tokens);
  }

  /** One draft pass over `rows` rows of `tokens` tokens. */
  draft(rows = 1, tokens = 1): number {
    return this.draftGrid.at(rows, tokens);
  }

  get known(): boolean {
    return this.draftGrid.known && this.targetGrid.known;
  }

  /** c in Leviathan's formula: one draft pass over one one-token target pass. */
  ratio(): number | null {
    const t1 = this.target(1),
      d1 = this.draft(1);
    return d1 > 0 && t1 > 0 ? d1 / t1 : null;
  }

  /** Time of one batched round: k draft passes over the drafting rows, one verify pass over every row. */
  round(k: number, rows: { target: number; draft: number }): number {
    return (k > 0 ? k * this.draft(rows.draft) : 0) + this.target(rows.target, k + 1);
  }

  /** Logits rows a round hands to JavaScript (each one read for a choice or a verdict): what its overhead scales with. */
  static logitsRows(k: number, rows: { target: number; draft: number }): number {
    return rows.target * (k + 1) + rows.draft * k;
  }
}

/** Expected tokens per round for per-token acceptance α and draft length k. */
export function expectedTokens(alpha: number, k: number): number {
  return alpha >= 1 ? k + 1 : (1 - alpha ** (k + 1)) / (1 - alpha);
}

/**
 * The draft length with the best goodput for a batch: `alphas` are the drafting streams' acceptance rates, `others`
 * the streams in the verify pass that make one token per round whatever k is (target mode, drafts not ready).
 * `minK` 1 keeps speculation on for a single caller that asked for it (the unbatched round); the core passes 0.
 */
export function chooseK(
  alphas: readonly number[],
  costs: StepCosts,
  maxK: number,
  opts: {
    others?: number;
    /** Fixed time a round costs besides its passes. */
    overheadMs?: number;
    /**
     * Time per logits row a round hands to JavaScript (sampling, verification, bookkeeping): in ad-hoc traces at 16
     * rows it was ~0.4 ms a round at k = 0 and ~2.3 ms at k ≈ 3, so one overhead for every k misjudges both ends.
     */
    overheadPerRowMs?: number;
    minK?: number;
    fallback?: number;
    /**
     * How far a round of draft length k taking `roundMs` would put the batch's latency budgets over (the worst
     * stream's gap per token ÷ its allowance; ≤ 1 fits). The k's that fit compete on goodput; when none fits, the
     * one closest to fitting wins.
     */
    overBudget?: (k: number, roundMs: number) => number;
    /**
     * An exploration round: return the best k's neighbour in this direction (or the other, at either end of the
     * range), or with 0 plain decoding, when it fits the budgets, so that its cost is measured rather than
     * extrapolated from the calibration.
     */
    explore?: -1 | 0 | 1;
  } = {},
): number {
  const { others = 0, overheadMs = 0, overheadPerRowMs = 0, minK = 1, fallback = 4, overBudget, explore } = opts;
  if (!costs.known || alphas.length === 0) return alphas.length === 0 ? 0 : Math.min(fallback, maxK);
  const rows = { target: alphas.length + others, draft: alphas.length };
  const ks: number[] = [];
  const rates: number[] = [];
  const over: number[] = [];
  for (let k = minK; k <= maxK; k++) {
    const tokens = others + alphas.reduce((a, alpha) => a + expectedTokens(alpha, k), 0);
    const roundMs = costs.round(k, rows) + overheadMs + overheadPerRowMs * StepCosts.logitsRows(k, rows);
    ks.push(k);
    rates.push(tokens / roundMs);
    over.push(overBudget?.(k, roundMs) ?? 0);
  }
  const fitting = ks.map((_, i) => i).filter((i) => over[i]! <= 1);
  if (fitting.length === 0) return ks[over.indexOf(Math.min(...over))]!;
  // Near the top the goodput curve is flat, and within a few percent of the best the shorter draft wins: its
  // rounds are shorter (every stream's gap between rounds, and the wait of a newcomer's prefill, shrink with it)
  // and it rests less on cost estimates for shapes the batch rarely runs.
  const plain = ks[0] === 0 && fitting.includes(0) ? rates[0]! : 0;
  const margin = speculationMargin(rows.target);
  const drafting = fitting.filter((i) => ks[i]! > 0 && rates[i]! >= margin * plain);
  const pool = plain > 0 ? drafting : fitting;
  const bestRate = Math.max(...pool.map((i) => rates[i]!));
  const chosen = plain > 0 && drafting.length === 0 ? 0 : ks[pool.find((i) => rates[i]! >= NEAR_BEST * bestRate)!]!;
  if (explore === undefined) return chosen;
  const step = chosen + explore < minK || chosen + explore > maxK ? -explore : explore;
  const i = ks.indexOf(explore === 0 ? minK : chosen + step);
  return i >= 0 && over[i]! <= 1 ? ks[i]! : chosen;
}

/**
 * Per-token acceptance α = accepted / (accepted + rejections), a rejection being a round that stopped before k.
 * A stream starts from the engine-wide estimate (weight of a few rounds) and moves to its own evidence quickly.
 */
export class Acceptance {
  accepted = 0;
  rejections = 0;
  constructor(
    private readonly prior: number,
    private readonly priorWeight = 4,
  ) {}

  observe(accepted: number, proposed: number): void {
    this.accepted += accepted;
    if (accepted < proposed) this.rejections++;
  }

  get alpha(): number {
    const a = this.accepted + this.prior * this.priorWeight;
    const total = this.accepted + this.rejections + this.priorWeight;
    return Math.min(0.99, a / total);
  }
}

function mix(old: number, x: number): number {
  return old === 0 ? x : old + EWMA * (x - old);
}
