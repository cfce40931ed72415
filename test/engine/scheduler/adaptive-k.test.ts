import { describe, expect, it } from 'vitest';
import { chooseK, PassGrid, speculationMargin, StepCosts } from '../../../src/engine/scheduler/adaptive-k.ts';

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

// A target whose batched verification stays nearly free (memory-bound: a larger model than the bundled one): 16 rows ×
// 1 token = 20 ms, × 2 = 21, × 3 = 24, × 5 = 40; its draft costs 1 ms at 16 rows.
function cheapVerify(): StepCosts {
  return new StepCosts({
    target: [
      [1, 1, 7],
      [1, 2, 7.2],
      [1, 3, 7.4],
      [16, 1, 20],
      [16, 2, 21],
      [16, 3, 24],
      [16, 5, 40],
    ],
    draft: [
      [1, 1, 0.5],
      [16, 1, 1],
    ],
  });
}

describe('batched choice of k', () => {
  it('drafts long for one stream; for a batch of 16, short where verification stays cheap, not at all where not', () => {
    expect(chooseK([0.8], costs(), 8, { minK: 0 })).toBeGreaterThanOrEqual(3);
    const k16 = chooseK(new Array(16).fill(0.8), cheapVerify(), 8, { minK: 0 });
    expect(k16).toBeGreaterThanOrEqual(1);
    expect(k16).toBeLessThanOrEqual(2);
    // The feasibility costs: k = 1 promises +12 % at α = 0.8, k = 2 +23 % at α = 0.9, both inside the margin.
    expect(chooseK(new Array(16).fill(0.8), costs(), 8, { minK: 0 })).toBe(0);
    expect(chooseK(new Array(16).fill(0.9), costs(), 8, { minK: 0 })).toBe(0);
  });

  it('a budgeted stream in the batch caps the round: the best k that keeps its gap per token within its allowance', () => {
    const c = cheapVerify();
    const alphas = new Array(15).fill(0.8);
    const free = chooseK(alphas, c, 8, { minK: 0, others: 1 });
    expect(free).toBeGreaterThanOrEqual(1);
    // One target-mode stream with a 21 ms allowance: its gap is the whole round (20 ms at k = 0, ≥ 22 ms at k ≥ 1).
    const capped = chooseK(alphas, c, 8, { minK: 0, others: 1, overBudget: (_k, roundMs) => roundMs / 21 });
    expect(capped).toBe(0);
    // Nothing fits a 5 ms allowance: the round closest to it (the shortest) is chosen.
    expect(chooseK(alphas, c, 8, { minK: 0, others: 1, overBudget: (_k, roundMs) => roundMs / 5 })).toBe(0);
  });

  it('speculates under load only when the predicted gain over plain decoding clears the margin', () => {
    // 16 rows at α = 0.8: k = 0 makes 16 tokens in 20 ms (0.80/ms); k = 1 28.8 in 31 + 3.5 ms (0.83/ms, +4 %);
    // k = 2 39 in 38 + 7 ms (0.87/ms, +8.5 %). Both gains are within the estimates' scatter: plain decoding wins.
    const thin = new StepCosts({
      target: [
        [1, 1, 7],
        [1, 2, 7.5],
        [1, 3, 8],
        [16, 1, 20],
        [16, 2, 31],
        [16, 3, 38],
        [16, 5, 72],
      ],
      draft: [
        [1, 1, 1],
        [16, 1, 3.5],
      ],
    });
    expect(chooseK(new Array(16).fill(0.8), thin, 4, { minK: 0 })).toBe(0);
    // Past the margin it drafts: with cheap verification k = 2 promises +88 %.
    expect(chooseK(new Array(16).fill(0.8), cheapVerify(), 4, { minK: 0 })).toBe(2);
    // One stream alone drafts for any gain: nothing falls out of step with it.
    const single = new StepCosts({
      target: [
        [1, 1, 10],
        [1, 2, 14],
        [1, 3, 18],
      ],
      draft: [[1, 1, 1]],
    });
    expect(chooseK([0.6], single, 2, { minK: 0 })).toBe(1); // k = 1: 1.6 tokens in 15 ms against 1 in 10 ms, +7 %
    // A caller that asked for speculation (minK 1) still gets the best k ≥ 1.
    expect(chooseK(new Array(16).fill(0.8), thin, 4, { minK: 1 })).toBe(2);
  });

  it('the margin grows with the batch: none for one stream, 1.35 at 4 streams, 1.7 at 16', () => {
    expect(speculationMargin(1)).toBe(1);
    expect(speculationMargin(4)).toBeCloseTo(1.35, 6);
    expect(speculationMargin(16)).toBeCloseTo(1.7, 6);
    // 4 streams at α = 0.8 on the feasibility costs: k = 3 promises ~1.7× plain decoding, past 4 streams' margin.
    expect(chooseK(new Array(4).fill(0.8), costs(), 8, { minK: 0 })).toBeGreaterThanOrEqual(2);
  });

  it('an exploration round runs a neighbour of the best k, within the range and the budgets', () => {
    const alphas = new Array(16).fill(0.8);
    const c = cheapVerify();
    expect(chooseK(alphas, c, 4, { minK: 0, explore: 1 })).toBe(3);
    expect(chooseK(alphas, c, 4, { minK: 0, explore: -1 })).toBe(1);
    expect(chooseK(alphas, c, 4, { minK: 0, explore: 0 })).toBe(0); // the baseline the margin is measured against
    expect(chooseK([0.2, 0.2], c, 4, { minK: 0, explore: -1 })).toBe(1); // at the bottom of the range: the other way
    expect(chooseK([0.99], c, 4, { minK: 0, explore: 1 })).toBe(3); // at the top
    // A neighbour that would break a budget is not explored: only k = 0's 20 ms round fits 21 ms.
    expect(chooseK(alphas, c, 4, { minK: 0, explore: 1, overBudget: (_k, ms) => ms / 21 })).toBe(0);
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
    // Token counts never run take the overall level: ~1.5× their calibrated cost.
    expect(g.at(1, 4) / 20).toBeCloseTo(1.5, 1);
    expect(g.at(1, 2) / (10 + 10 / 3)).toBeCloseTo(g.at(1, 4) / 20, 6);
  });

  it('each token count learns its own level once it runs, so alternatives k are compared on measured costs', () => {
    // Calibrated 16 × 2 far too dear against 16 × 1 (noise in a few timed reps).
    const g = new PassGrid([
      [16, 1, 10],
      [16, 2, 20],
    ]);
    for (let i = 0; i < 60; i++) g.observe(16, 2, 12);
    expect(g.at(16, 2)).toBeCloseTo(12, 1);
    expect(g.at(16, 1)).toBeLessThan(10); // not run yet: follows the overall level down
    for (let i = 0; i < 60; i++) g.observe(16, 1, 9);
    expect(g.at(16, 1)).toBeCloseTo(9, 1);
    expect(g.at(16, 2)).toBeCloseTo(12, 1);
  });

  it('one stalled pass moves a level a little; a lasting slowdown moves it all the way', () => {
    const g = new PassGrid([[16, 1, 10]]);
    for (let i = 0; i < 40; i++) g.observe(16, 1, 10);
    g.observe(16, 1, 50);
    expect(g.at(16, 1)).toBeLessThan(11.5);
    for (let i = 0; i < 40; i++) g.observe(16, 1, 20);
    expect(g.at(16, 1)).toBeCloseTo(20, 0);
  });

  it('a calibration that says more tokens or rows cost less is taken as noise: costs never fall along either axis', () => {
    const g = new PassGrid([
      [16, 1, 20],
      [16, 2, 29],
      [16, 3, 25],
      [32, 1, 18],
    ]);
    expect(g.at(16, 3)).toBe(29);
    expect(g.at(32, 1)).toBe(20);
    expect(g.at(16, 2)).toBe(29);
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
