import { describe, expect, it } from 'vitest';
import { chiSquareGoodnessOfFit, chiSquareSurvival, gammaQ, lnGamma } from './chi-square.ts';

describe('chi-square helper', () => {
  it('lnGamma matches factorials and Γ(1/2) = √π', () => {
    expect(lnGamma(1)).toBeCloseTo(0, 12);
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(lnGamma(11)).toBeCloseTo(Math.log(3628800), 10);
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
  });

  it('survival function matches tabulated critical values', () => {
    // Critical values from standard tables (scipy.stats.chi2.isf).
    expect(chiSquareSurvival(3.841458820694124, 1)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(6.6348966010212145, 1)).toBeCloseTo(0.01, 10);
    expect(chiSquareSurvival(11.344866730144373, 3)).toBeCloseTo(0.01, 10);
    expect(chiSquareSurvival(18.307038053275146, 10)).toBeCloseTo(0.05, 10);
    expect(chiSquareSurvival(124.34211340400407, 100)).toBeCloseTo(0.05, 8);
  });

  it('survival function matches the closed form for even df (both numerical branches)', () => {
    // For df = 2m: Q(m, x/2) = e^{-x/2} Σ_{j<m} (x/2)^j / j!
    const closed = (x: number, df: number) => {
      let term = 1;
      let sum = 1;
      for (let j = 1; j < df / 2; j++) sum += term *= x / 2 / j;
      return Math.exp(-x / 2) * sum;
    };
    for (const [x, df] of [
      [2, 2],
      [1, 10],
      [20, 10],
      [5, 16],
      [60, 16],
      [0.1, 4],
    ] as const) {
      expect(chiSquareSurvival(x, df)).toBeCloseTo(closed(x, df), 12);
    }
    expect(chiSquareSurvival(2, 2)).toBeCloseTo(Math.exp(-1), 14);
    expect(gammaQ(3, 0)).toBe(1);
  });

  it('goodness of fit: perfect fit has p = 1, a gross misfit p ≈ 0, zero bins are counted apart', () => {
    const exact = chiSquareGoodnessOfFit([250, 250, 500, 0], [0.25, 0.25, 0.5, 0]);
    expect(exact.statistic).toBe(0);
    expect(exact.df).toBe(2);
    expect(exact.pValue).toBeCloseTo(1, 12);
    expect(exact.impossible).toBe(0);
    const off = chiSquareGoodnessOfFit([400, 100, 500, 3], [0.25, 0.25, 0.5, 0]);
    expect(off.pValue).toBeLessThan(1e-10);
    expect(off.impossible).toBe(3);
  });
});
