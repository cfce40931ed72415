/**
 * Draft length choice: Leviathan et al.'s expected-speed model fed with live measurements.
 * A round with draft length k yields E(k) = (1 − α^(k+1)) / (1 − α) tokens and costs k draft passes plus one
 * target pass over k + 1 tokens; we pick the k that maximises tokens per millisecond. α is per stream
 * (prior: the engine-wide estimate), step costs are engine-wide (every stream shares the models and cores).
 */

const EWMA = 0.1;

export class StepCosts {
  draftMs = 0;
  /** Target pass time by number of tokens in the pass (index T). */
  private readonly targetMs: number[] = [];

  /** Start from measured costs (the worker's calibration) rather than from nothing. */
  constructor(initial?: { draftMs: number; targetMs: number[] }) {
    if (initial) {
      this.draftMs = initial.draftMs;
      initial.targetMs.forEach((ms, T) => {
        if (ms > 0) this.targetMs[T] = ms;
      });
    }
  }

  observe(draftMs: number, draftCalls: number, targetMs: number, targetTokens: number): void {
    if (draftCalls > 0) this.draftMs = mix(this.draftMs, draftMs / draftCalls);
    if (targetTokens > 0) this.targetMs[targetTokens] = mix(this.targetMs[targetTokens] ?? 0, targetMs);
  }

  /** Measured cost of a T-token target pass, interpolated (or extrapolated linearly) from the T's seen so far. */
  target(T: number): number {
    const exact = this.targetMs[T];
    if (exact) return exact;
    const seen = this.targetMs.flatMap((ms, t) => (ms ? [[t, ms] as const] : []));
    if (seen.length === 0) return 0;
    if (seen.length === 1) return seen[0]![1] * (1 + 0.05 * (T - seen[0]![0])); // memory-bound: extra tokens are cheap
    const [lo, hi] = nearestPair(seen, T);
    return Math.max(lo[1], lo[1] + ((hi[1] - lo[1]) * (T - lo[0])) / (hi[0] - lo[0]));
  }

  get known(): boolean {
    return this.draftMs > 0 && this.targetMs.some((v) => v > 0);
  }

  /** c in Leviathan's formula: one draft pass over one one-token target pass. */
  ratio(): number | null {
    const t1 = this.target(1);
    return this.draftMs > 0 && t1 > 0 ? this.draftMs / t1 : null;
  }
}

/** Expected tokens per round for per-token acceptance α and draft length k. */
export function expectedTokens(alpha: number, k: number): number {
  return alpha >= 1 ? k + 1 : (1 - alpha ** (k + 1)) / (1 - alpha);
}

export function chooseK(alpha: number, costs: StepCosts, maxK: number, fallback = 4): number {
  if (!costs.known) return Math.min(fallback, maxK);
  let best = 1,
    bestRate = -1;
  for (let k = 1; k <= maxK; k++) {
    const rate = expectedTokens(alpha, k) / (k * costs.draftMs + costs.target(k + 1));
    if (rate > bestRate) {
      best = k;
      bestRate = rate;
    }
  }
  return best;
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

function nearestPair(seen: (readonly [number, number])[], T: number): [readonly [number, number], readonly [number, number]] {
  const sorted = [...seen].sort((a, b) => Math.abs(a[0] - T) - Math.abs(b[0] - T));
  const [a, b] = [sorted[0]!, sorted[1]!];
  return a[0] < b[0] ? [a, b] : [b, a];
}
