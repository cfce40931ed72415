import { describe, expect, it } from 'vitest';
import { chooseK, PassGrid, StepCosts } from '../../../src/engine/scheduler/adaptive-k.ts';

// Shaped like the bundled pair's measured batched passes (../shared/notes/batching-feasibility.md): one row ≈ 7 ms
// + 0.45 ms per extra token; 16 rows × 1 token = 20 ms, × 2 = 29 ms, × 3 = 38 ms, × 5 = 72 ms; 32 × 1 = 42 ms.
// Draft: 1 ms at one row, 3 ms at 16.
function costs(): StepCosts {
  const one = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((T) => [1, T, 7 + 0.45 * (T - 1)] as const);
  return new StepCosts({
    target: [...one, [16, 1, 20], [16, 2, 29], [16, 3, 38], [16, 5, 72], [32, 1, 42], [32, 2, 70]],
    draft: [
      [1, 1, 1],
      [16, 1, 3],
      [32, 1, 5],
    ],
  });
}

describe('batched choice of k', () => {
  it('drafts long for one stream and short for a batch of 16', () => {
    const c = costs();
    expect(chooseK([0.8], c, 8, { minK: 0 })).toBeGreaterThanOrEqual(3);
    const k16 = chooseK(new Array(16).fill(0.8), c, 8, { minK: 0 });
    expect(k16).toBeGreaterThanOrEqual(1);
    expect(k16).toBeLessThanOrEqual(2);
  });

  it('a budgeted stream in the batch caps the round: the best k that keeps its gap per token within its allowance', () => {
    const c = costs();
    const alphas = new Array(15).fill(0.8);
    const free = chooseK(alphas, c, 8, { minK: 0, others: 1 });
    expect(free).toBeGreaterThanOrEqual(1);
    // One target-mode stream with a 25 ms allowance: its gap is the whole round (20 ms at k = 0, ≥ 32 ms at k ≥ 1).
    const capped = chooseK(alphas, c, 8, { minK: 0, others: 1, overBudget: (_k, roundMs) => roundMs / 25 });
    expect(capped).toBe(0);
    // Nothing fits a 5 ms allowance: the round closest to it (the shortest) is chosen.
    expect(chooseK(alphas, c, 8, { minK: 0, others: 1, overBudget: (_k, roundMs) => roundMs / 5 })).toBe(0);
  });

  it('falls back to k = 0 when acceptance is too low for verification to pay', () => {
    expect(chooseK(new Array(16).fill(0.2), costs(), 8, { minK: 0 })).toBe(0);
  });

  it('streams that cannot draft make the verify pass dearer without adding to what drafting gains', () => {
    const c = costs();
    expect(chooseK(new Array(4).fill(0.8), c, 8, { minK: 0, others: 12 })).toBeLessThanOrEqual(
      chooseK(new Array(4).fill(0.8), c, 8, { minK: 0 }),
    );
  });
});

describe('PassGrid', () => {
  it('rows and tokens cost differently: 32 rows × 1 is not 16 rows × 2', () => {
    const c = costs();
    expect(c.target(32, 1)).toBeCloseTo(42, 6);
    expect(c.target(16, 2)).toBeCloseTo(29, 6);
    expect(c.target(24, 1)).toBeCloseTo(31, 6); // between the row counts
    expect(c.target(16, 4)).toBeCloseTo(55, 6); // between the token counts
  });

  it('keeps the calibrated shape and learns the level from any shape it sees', () => {
    const g = new PassGrid([
      [1, 1, 10],
      [1, 4, 20],
      [8, 1, 30],
    ]);
    for (let i = 0; i < 100; i++) g.observe(1, 1, 15); // real passes are 1.5× the calibration (longer contexts)
    expect(g.at(1, 1)).toBeCloseTo(15, 1);
    expect(g.at(8, 1)).toBeCloseTo(45, 1); // a shape never run since start-up moves with it
    expect(g.at(1, 2)).toBeCloseTo(g.at(1, 1) + (g.at(1, 4) - g.at(1, 1)) / 3, 6);
  });

  it('without a calibration, records what it sees', () => {
    const g = new PassGrid();
    expect(g.known).toBe(false);
    g.observe(3, 2, 9);
    expect(g.at(3, 2)).toBe(9);
  });

  it('at 32 rows the batch verifies nothing: plain target decoding is cheaper per token', () => {
    expect(chooseK(new Array(32).fill(0.8), costs(), 8, { minK: 0 })).toBe(0);
  });
});
