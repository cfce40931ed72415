import { describe, expect, it } from 'vitest';
import { chooseK, PassTable, StepCosts } from '../../../src/engine/scheduler/adaptive-k.ts';

// Shaped like the bundled pair's measured batched passes (docs: shared notes): 1 row ≈ 7 ms + 0.45 ms per extra
// token; 16 rows × 1 = 20 ms, × 2 = 29 ms, × 3 = 38 ms, × 5 = 72 ms. Draft: 1 ms at 1 row, 3 ms at 16.
function costs(): StepCosts {
  const targetMs: number[] = [];
  for (let T = 1; T <= 9; T++) targetMs[T] = 7 + 0.45 * (T - 1);
  Object.assign(targetMs, { 16: 20, 32: 29, 48: 38, 80: 72 });
  const draftMs: number[] = [];
  Object.assign(draftMs, { 1: 1, 16: 3 });
  return new StepCosts({ targetMs: [...targetMs].map((v) => v ?? 0), draftMs: [...draftMs].map((v) => v ?? 0) });
}

describe('batched choice of k', () => {
  it('drafts long for one stream and short for a batch of 16', () => {
    const c = costs();
    expect(chooseK([0.8], c, 8, { minK: 0 })).toBeGreaterThanOrEqual(3);
    const k16 = chooseK(new Array(16).fill(0.8), c, 8, { minK: 0 });
    expect(k16).toBeGreaterThanOrEqual(1);
    expect(k16).toBeLessThanOrEqual(2);
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

describe('PassTable', () => {
  it('keeps the calibrated shape and learns the level from any shape it sees', () => {
    const t = new PassTable([0, 10, 0, 0, 20]);
    for (let i = 0; i < 100; i++) t.observe(1, 15); // real passes are 1.5× the calibration (longer contexts)
    expect(t.at(1)).toBeCloseTo(15, 1);
    expect(t.at(4)).toBeCloseTo(30, 1); // a shape never run since start-up moves with it
    expect(t.at(2)).toBeCloseTo(t.at(1) + (t.at(4) - t.at(1)) / 3, 6);
  });

  it('without a calibration, records what it sees', () => {
    const t = new PassTable();
    expect(t.known).toBe(false);
    t.observe(3, 9);
    expect(t.at(3)).toBe(9);
  });
});
