/**
 * The project's statistics, for the server, the benchmarks and the load tests alike. Two kinds of percentile, each
 * where it fits:
 *
 * - Exact (nearest rank over the sorted values): `percentile`, `summarize`. For per-stream series, which are at most
 *   max_tokens long (hundreds of values), so sorting a copy is cheap, and for ratios and other values that are not
 *   latencies. Nothing is quantised: the exact 0 gaps between the tokens of one speculative step stay 0.
 * - HdrHistogram (hdr-histogram-js): `Dist`, for latency distributions of any size (benchmarks, load tests), at
 *   microsecond resolution with 3 significant digits (values exact to ±0.1 %), mergeable, in bounded memory. Zero is
 *   recordable, so ~0 ms gaps count as they are. Whole-server distributions in production are the Prometheus
 *   histograms, not these.
 */
import hdr from 'hdr-histogram-js';

/** Rounds to `digits` decimals (wire output and reports: 0.001 ms resolution without float noise). */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Arithmetic mean; 0 for no values. */
export const mean = (xs: readonly number[]): number => (xs.length ? sum(xs) / xs.length : 0);

/** log softmax(row)[id], computed stably: the offline scoring passes (models:eval, bench:frontier), never serving. */
export function logProb(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return row[id]! - max - Math.log(z);
}

// --- exact ---------------------------------------------------------------------------------------------------------

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

/** Exact nearest-rank percentile of unsorted values (sorts a copy); 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** mean / p50 / p95 / p99 / max of the values, exactly; all 0 when there are none. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { ...EMPTY_SUMMARY };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    mean: mean(sorted),
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

// --- HdrHistogram --------------------------------------------------------------------------------------------------

/** Points of the percentile-distribution curves in the load-test report (HdrHistogram's classic plot: x = 1/(1 − p)). */
export const CURVE_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 100] as const;

export interface DistSummary {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const US_PER_MS = 1000;
const HIGHEST_US = 3_600_000_000; // one hour

/**
 * A distribution of millisecond values in an HdrHistogram. Percentiles come back rounded to 0.001 ms and never
 * above the largest value recorded (a histogram bucket's upper edge can lie past it).
 */
export class Dist {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
  private minMs = Infinity;
  private maxMs = -Infinity;

  /** Negative values count as 0 (e.g. a clock read before its reference); non-finite ones are a caller's bug. */
  record(ms: number): void {
    if (!Number.isFinite(ms)) throw new Error(`not a latency: ${ms}`);
    const v = Math.max(0, ms);
    this.h.recordValue(Math.min(HIGHEST_US, Math.round(v * US_PER_MS)));
    if (v < this.minMs) this.minMs = v;
    if (v > this.maxMs) this.maxMs = v;
  }

  recordAll(values: Iterable<number>): this {
    for (const v of values) this.record(v);
    return this;
  }

  add(other: Dist): this {
    this.h.add(other.h);
    this.minMs = Math.min(this.minMs, other.minMs);
    this.maxMs = Math.max(this.maxMs, other.maxMs);
    return this;
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** Value at percentile p (0…100), in ms; 0 for an empty distribution. */
  at(p: number): number {
    if (this.count === 0) return 0;
    if (p >= 100) return round(this.maxMs);
    if (p <= 0) return round(this.minMs);
    return round(Math.min(this.maxMs, this.h.getValueAtPercentile(p) / US_PER_MS));
  }

  summary(): DistSummary {
    if (this.count === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: this.count,
      mean: round(this.h.mean / US_PER_MS),
      min: round(this.minMs),
      p50: this.at(50),
      p90: this.at(90),
      p95: this.at(95),
      p99: this.at(99),
      p999: this.at(99.9),
      max: round(this.maxMs),
    };
  }

  /** [percentile, ms] points for the report's distribution charts. */
  curve(): [number, number][] {
    return this.count === 0 ? [] : CURVE_PERCENTILES.map((p) => [p, this.at(p)]);
  }
}

export function dist(values: Iterable<number>): Dist {
  return new Dist().recordAll(values);
}
