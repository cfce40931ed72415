import type { Rng } from './rng.ts';

/**
 * Draws an index with probability proportional to probs[i] (inverse CDF). Scaling the uniform draw by the actual
 * total, instead of assuming 1, keeps the distribution exact for vectors that float32 rounding (or a caller's
 * residual) left slightly off 1. Non-positive and NaN entries are skipped, so a zero-probability index can never be
 * returned, even when the draw rounds up to the very end of the CDF.
 */
export function sampleFrom(probs: Float32Array, rng: Rng): number {
  const n = probs.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const p = probs[i]!;
    if (p > 0) total += p;
  }
  if (!(total > 0) || total === Infinity) throw new RangeError(`sampleFrom: total mass ${total} is not a positive finite number`);

  const u = rng.next() * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const p = probs[i]!;
    if (p > 0) {
      acc += p;
      last = i;
      if (u < acc) return i;
    }
  }
  // u · total rounded up to total: the draw belongs to the last index with mass.
  return last;
}
