import { describe, expect, it } from 'vitest';
import { createRng } from '../../../src/engine/sampling/index.ts';
import { kthLargest, massThreshold } from '../../../src/engine/sampling/threshold.ts';

const rng = createRng(31);

/** Rows with the awkward shapes real ones have: heavy duplication, -Infinity masks, zeros, sorted runs. */
function rows(): Float32Array[] {
  const out: Float32Array[] = [];
  for (const n of [1, 2, 17, 100, 3000]) {
    out.push(new Float32Array(n).map(() => rng.next() * 10 - 5));
    out.push(new Float32Array(n).map(() => Math.floor(rng.next() * 4))); // few distinct values
    out.push(new Float32Array(n).map(() => (rng.next() < 0.5 ? -Infinity : rng.next())));
    out.push(new Float32Array(n).map((_, i) => i)); // ascending: the heap's worst case
    out.push(new Float32Array(n).map((_, i) => -i));
    out.push(new Float32Array(n).fill(2));
  }
  return out;
}

describe('kthLargest', () => {
  it('equals the k-th element of a descending sort, on both the heap (k <= 1024) and the select path', () => {
    for (const row of rows()) {
      const sorted = Array.from(row).sort((a, b) => b - a);
      const before = Float32Array.from(row);
      for (const k of new Set([1, 2, 3, 50, 1024, 1025, 2000, row.length])) {
        if (k > row.length) continue;
        expect(kthLargest(row, k), `n=${row.length} k=${k}`).toBe(sorted[k - 1]);
      }
      expect(row).toEqual(before);
    }
  });
});

describe('massThreshold', () => {
  /** Naive: walk the descending sort until the mass reaches `need`. */
  function naive(w: Float32Array, need: number): number {
    const sorted = Array.from(w)
      .filter((x) => x > 0)
      .sort((a, b) => b - a);
    let acc = 0;
    for (const x of sorted) if ((acc += x) >= need) return x;
    return Number.MIN_VALUE;
  }

  it('finds the weight at which the descending mass first reaches `need`', () => {
    for (const row of rows()) {
      const w = row.map((x) => (x > 0 ? Math.exp(Math.min(x, 30)) : 0)); // capped: float32 overflows past e^88
      const total = w.reduce((a, b) => a + b, 0);
      if (total === 0) continue;
      for (const p of [0, 0.01, 0.3, 0.5, 0.9, 0.999, 1]) {
        expect(massThreshold(w, total, p * total), `n=${w.length} p=${p}`).toBe(p === 0 ? Math.max(...w) : naive(w, p * total));
      }
    }
  });

  it('keeps every weight tied with the last one needed', () => {
    const w = new Float32Array([0.4, 0.2, 0.2, 0.2]);
    expect(massThreshold(w, 1, 0.5)).toBe(Math.fround(0.2));
  });

  it('falls back to "keep everything" when rounding leaves the total short of need', () => {
    expect(massThreshold(new Float32Array([0.5, 0.5]), 1, 1.0000001)).toBe(Number.MIN_VALUE);
  });
});
