/**
 * Latency distributions for the load tests: HdrHistogram (hdr-histogram-js) at microsecond resolution, 3
 * significant digits (values are exact to ±0.1 %). No percentile here comes from sorting samples by hand.
 * Zero is recordable, so the ~0 ms gaps between the tokens of one speculative step count as they are.
 */
import hdr from 'hdr-histogram-js';

/** Percentiles every summary reports. */
export const SUMMARY_PERCENTILES = [50, 90, 95, 99, 99.9] as const;
/** Points of the percentile-distribution curves in the report (HdrHistogram's classic plot: x = 1/(1 − p)). */
export const CURVE_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 100] as const;

export interface Summary {
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

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** A distribution of millisecond values. */
export class Dist {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
  private minMs = Infinity;
  private maxMs = -Infinity;

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
    if (p >= 100) return round3(this.maxMs);
    if (p <= 0) return round3(this.minMs);
    return round3(Math.min(this.maxMs, this.h.getValueAtPercentile(p) / US_PER_MS));
  }

  summary(): Summary {
    if (this.count === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
    return {
      count: this.count, mean: round3(this.h.mean / US_PER_MS), min: round3(this.minMs),
      p50: this.at(50), p90: this.at(90), p95: this.at(95), p99: this.at(99), p999: this.at(99.9), max: round3(this.maxMs),
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

/** Median of values (through the histogram, like every other percentile here). */
export function median(values: Iterable<number>): number {
  return dist(values).at(50);
}

export const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
export const mean = (xs: readonly number[]) => (xs.length ? sum(xs) / xs.length : 0);
export const roundTo = (v: number, digits = 3) => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};
