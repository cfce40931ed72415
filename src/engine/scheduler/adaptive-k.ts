/**
 * Draft length choice: Leviathan et al.'s expected-speed model fed with live, batched measurements.
 * A round with draft length k yields E(k) = (1 − α^(k+1)) / (1 − α) tokens per stream and costs k draft passes
 * plus one target pass over k + 1 tokens per row. With B streams in one batch the passes cover B rows, and the
 * cost of a pass depends mostly on its token-rows N = rows × tokens (measured: at 16 rows the verify pass is no
 * longer nearly free), so the k that maximises the batch's tokens per millisecond (its goodput) shrinks as the
 * batch grows, down to k = 0 (plain target decoding) when verification costs more than the draft saves.
 */

const EWMA = 0.1;
/** Goodput within this fraction of the best counts as the best (chooseK). */
const NEAR_BEST = 0.97;

/**
 * Pass time by token-rows, one table per model. Its shape (how cost grows with rows × tokens) comes from the
 * start-up calibration, interpolated between the N's measured; its level follows every pass the engine runs, as
 * one scale factor: calibration runs on a short context, real batches on longer ones with padding, and a per-N
 * correction would only fix the shapes the batch happens to run, leaving the alternatives k is chosen among at
 * their optimistic calibrated cost. A table built without a calibration takes its first observations as the shape.
 */
export class PassTable {
  private readonly ms: number[] = [];
  private scale = 1;
  private readonly calibrated: boolean;

  constructor(initial: readonly number[] = []) {
    initial.forEach((v, n) => {
      if (v > 0) this.ms[n] = v;
    });
    this.calibrated = this.known;
  }

  observe(n: number, ms: number): void {
    if (!(n > 0 && ms > 0)) return;
    if (this.calibrated) this.scale += EWMA * (ms / this.shapeAt(n) - this.scale);
    else this.ms[n] = mix(this.ms[n] ?? 0, ms);
  }

  get known(): boolean {
    return this.ms.some((v) => v > 0);
  }

  /** Cost of a pass over n token-rows. */
  at(n: number): number {
    return this.shapeAt(n) * this.scale;
  }

  /** The calibrated shape at n: exact if measured, else linear between (or beyond) the nearest two. */
  private shapeAt(n: number): number {
    const exact = this.ms[n];
    if (exact) return exact;
    const seen = this.ms.flatMap((ms, t) => (ms ? [[t, ms] as const] : []));
    if (seen.length === 0) return 0;
    if (seen.length === 1) return seen[0]![1] * (1 + 0.05 * (n - seen[0]![0])); // memory-bound: extra rows are cheap
    const below = seen.filter(([t]) => t < n).at(-1);
    const above = seen.find(([t]) => t > n);
    const [lo, hi] = below && above ? [below, above] : below ? [seen.at(-2)!, below] : [above!, seen[1]!];
    return Math.max(lo[1], lo[1] + ((hi[1] - lo[1]) * (n - lo[0])) / (hi[0] - lo[0]));
  }
}

export class StepCosts {
  readonly targetTable: PassTable;
  readonly draftTable: PassTable;

  constructor(initial?: { draftMs: readonly number[]; targetMs: readonly number[] }) {
    this.targetTable = new PassTable(initial?.targetMs);
    this.draftTable = new PassTable(initial?.draftMs);
  }

  /** One target pass over `n` token-rows. */
  target(n: number): number {
    return this.targetTable.at(n);
  }

  /** One draft pass over `n` token-rows. */
  draft(n = 1): number {
    return this.draftTable.at(n);
  }

  get known(): boolean {
    return this.draftTable.known && this.targetTable.known;
  }

  /** c in Leviathan's formula: one draft pass over one one-token target pass. */
  ratio(): number | null {
    const t1 = this.target(1),
      d1 = this.draft(1);
    return d1 > 0 && t1 > 0 ? d1 / t1 : null;
  }

  /** Time of one batched round: k draft passes over the drafting rows, one verify pass over every row. */
  round(k: number, rows: { target: number; draft: number }): number {
    return (k > 0 ? k * this.draft(rows.draft) : 0) + this.target(rows.target * (k + 1));
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
  opts: { others?: number; overheadMs?: number; minK?: number; fallback?: number } = {},
): number {
  const { others = 0, overheadMs = 0, minK = 1, fallback = 4 } = opts;
  if (!costs.known || alphas.length === 0) return alphas.length === 0 ? 0 : Math.min(fallback, maxK);
  const rows = { target: alphas.length + others, draft: alphas.length };
  const rates: number[] = [];
  for (let k = minK; k <= maxK; k++) {
    const tokens = others + alphas.reduce((a, alpha) => a + expectedTokens(alpha, k), 0);
    rates.push(tokens / (costs.round(k, rows) + overheadMs));
  }
  // Near the top the goodput curve is flat, and within a few percent of the best the shorter draft wins: its
  // rounds are shorter (every stream's gap between rounds, and the wait of a newcomer's prefill, shrink with it)
  // and it rests less on cost estimates for shapes the batch rarely runs.
  const best = Math.max(...rates);
  return minK + rates.findIndex((r) => r >= NEAR_BEST * best);
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
