/**
 * Exact percentiles over a small array (nearest-rank on the sorted values).
 *
 * Per-stream series are at most max_tokens long (hundreds of values), so sorting a copy is cheap and exact.
 * An HDR histogram would bound memory for unbounded series but quantises values and cannot hold the exact 0 gaps
 * that tokens of one speculative step have; for whole-server distributions use the Prometheus histograms instead.
 */
export interface Summary {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export const EMPTY_SUMMARY: Summary = Object.freeze({ mean: 0, p50: 0, p95: 0, p99: 0, max: 0 });

/** Nearest-rank percentile (p in [0, 100]) of an ascending array; 0 for an empty one. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** mean / p50 / p95 / p99 / max of the values; all 0 when there are none. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { ...EMPTY_SUMMARY };
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    mean: sum / sorted.length,
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

/** Rounds to `digits` decimals (wire output: keeps 0.001 ms resolution without float noise). */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
