import { describe, expect, it } from 'vitest';
import { createRng, sampleFrom, type Rng } from '../../../src/engine/sampling/index.ts';
import { chiSquareGoodnessOfFit } from './chi-square.ts';

const fixed = (u: number): Rng => ({ next: () => u });
const LAST_DRAW = 1 - 2 ** -53;

describe('sampleFrom', () => {
  it('draws in proportion to the probabilities', () => {
    const probs = new Float32Array([0.1, 0, 0.3, 0.05, 0, 0.55]);
    const rng = createRng(1);
    const counts = new Array<number>(probs.length).fill(0);
    for (let i = 0; i < 30_000; i++) counts[sampleFrom(probs, rng)]!++;
    const fit = chiSquareGoodnessOfFit(counts, probs);
    expect(fit.impossible).toBe(0);
    expect(fit.pValue).toBeGreaterThan(0.01);
  });

  it('treats a vector that sums to 2 (or to 1 − ε) as its normalisation', () => {
    const doubled = new Float32Array([0.2, 0.6, 1.2]);
    const rng = createRng(2);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[sampleFrom(doubled, rng)]!++;
    expect(chiSquareGoodnessOfFit(counts, [0.1, 0.3, 0.6]).pValue).toBeGreaterThan(0.01);
    // With a total short of 1 a draw near 1 must still land on a token, not run off the end.
    expect(sampleFrom(new Float32Array([0.3, 0.3, 0.3999, 0]), fixed(LAST_DRAW))).toBe(2);
  });

  it('never returns a zero-probability index at either end of the CDF', () => {
    const probs = new Float32Array([0, 0, 0.5, 0, 0.5, 0, 0]);
    expect(sampleFrom(probs, fixed(0))).toBe(2);
    expect(sampleFrom(probs, fixed(LAST_DRAW))).toBe(4);
    expect(sampleFrom(probs, fixed(0.5))).toBe(4);
    expect(sampleFrom(new Float32Array([0, -0.1, Number.NaN, 1e-30]), fixed(LAST_DRAW))).toBe(3);
  });

  it('throws when there is no mass to draw from', () => {
    expect(() => sampleFrom(new Float32Array(4), fixed(0.5))).toThrow(RangeError);
    expect(() => sampleFrom(new Float32Array([Infinity, 1]), fixed(0.5))).toThrow(RangeError);
  });
});
