import { describe, expect, it } from 'vitest';
import { StepCosts } from '../../src/engine/scheduler/adaptive-k.ts';
import { predict, route, stepCost, type LiveLoad } from '../../src/engine/scheduler/router.ts';

// Costs shaped like the bundled pair: a 4 ms target pass (+0.3 ms per extra token), 16 rows cost 3× one row and
// verifying k+1 tokens on all of them is no longer nearly free; a 0.4 ms draft pass (1.15 ms at 16 rows).
const costs = new StepCosts({
  target: [
    ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((T) => [1, T, 4 + 0.3 * (T - 1)] as const),
    [16, 1, 12],
    [16, 2, 17],
    [16, 3, 22],
    [16, 5, 40],
  ],
  draft: [
    [1, 1, 0.4],
    [16, 1, 1.15],
  ],
});
const idle: LiveLoad = {
  running: 0,
  queued: 0,
  maxRunning: 4,
  iterationMs: 0,
  overheadMs: 0,
  streamMs: 400,
  prefillMsPerToken: 0.5,
  alpha: 0.8,
  maxK: 8,
  prefillChunk: 64,
};
const P = (ttftMs: number, itlMs: number) => ({ ttftMs, itlMs });

describe('router decision table', () => {
  const preds = { target: P(20, 4), speculative: P(22, 2), draft: P(5, 0.5) };
  it.each([
    ['no budget', {}, 'target', false],
    ['loose budget', { ttftMs: 100, itlMs: 10 }, 'target', false],
    ['ITL between target and speculative', { itlMs: 3 }, 'speculative', false],
    ['ITL only draft meets', { itlMs: 1 }, 'draft', false],
    ['TTFT only draft meets', { ttftMs: 10 }, 'draft', false],
    ['TTFT ok for all, ITL for speculative and draft', { ttftMs: 30, itlMs: 2.5 }, 'speculative', false],
    ['nothing meets: fastest, flagged', { ttftMs: 1, itlMs: 0.1 }, 'draft', true],
  ] as const)('%s → %s', (_, budget, mode, missed) => {
    const d = route(budget, preds);
    expect(d.mode).toBe(mode);
    expect(d.budgetMissed).toBe(missed);
  });

  it('without a draft only target can serve, and a missed budget is flagged', () => {
    expect(route({ itlMs: 1 }, { target: P(20, 4) })).toMatchObject({ mode: 'target', budgetMissed: true });
  });

  it('falls back to the mode closest to the budget, not blindly to draft', () => {
    const d = route({ ttftMs: 10 }, { target: P(12, 4), speculative: P(30, 2), draft: P(40, 0.5) });
    expect(d).toMatchObject({ mode: 'target', budgetMissed: true });
  });
});

describe('predictions from live measurements', () => {
  it('orders modes by per-token latency: draft < speculative < target', () => {
    const [t, s, d] = (['target', 'speculative', 'draft'] as const).map((m) => predict(m, 20, costs, idle));
    expect(d!.itlMs).toBeLessThan(s!.itlMs);
    expect(s!.itlMs).toBeLessThan(t!.itlMs);
  });

  it('a stream joining a batch waits for the running iteration, and queues when every slot is busy', () => {
    const alone = predict('target', 20, costs, idle);
    const shared = predict('target', 20, costs, { ...idle, running: 3, iterationMs: 12 });
    const queued = predict('target', 20, costs, { ...idle, running: 4, queued: 2, iterationMs: 12 });
    expect(alone.itlMs).toBeCloseTo(4, 6);
    expect(shared.itlMs).toBeCloseTo(12, 6); // the running iteration is longer than its own share
    expect(queued.ttftMs - shared.ttftMs).toBeGreaterThanOrEqual((3 / 4) * idle.streamMs - 1);
  });

  it('a draft-mode stream beside speculative ones is as slow as their iteration', () => {
    expect(predict('draft', 20, costs, idle).itlMs).toBeCloseTo(0.4, 6);
    expect(predict('draft', 20, costs, { ...idle, running: 3, iterationMs: 9 }).itlMs).toBeCloseTo(9, 6);
  });

  it('speculation shrinks its k, down to plain target decoding, as the batch grows', () => {
    const one = stepCost('speculative', costs, { alpha: 0.8, maxK: 8, overheadMs: 0, rows: 1 });
    const many = stepCost('speculative', costs, { alpha: 0.8, maxK: 8, overheadMs: 0, rows: 16 });
    expect(one.tokensPerStep).toBeGreaterThan(2);
    expect(many.tokensPerStep).toBeLessThan(one.tokensPerStep);
    // Never worse than target decoding of the same batch (k = 0 is one of the choices).
    expect(many.stepMs / many.tokensPerStep).toBeLessThanOrEqual(costs.target(16, 1) + 1e-9);
  });

  it('counts the worker overhead in every iteration', () => {
    expect(predict('draft', 20, costs, { ...idle, overheadMs: 0.2 }).itlMs).toBeCloseTo(0.6, 6);
  });

  it('charges long prompts to TTFT', () => {
    expect(predict('target', 500, costs, idle).ttftMs - predict('target', 10, costs, idle).ttftMs).toBeCloseTo(490 * 0.5, 0);
  });

  it('speculation pays less when acceptance is low', () => {
    const good = predict('speculative', 20, costs, idle);
    const poor = predict('speculative', 20, costs, { ...idle, alpha: 0.2 });
    expect(poor.itlMs).toBeGreaterThan(good.itlMs);
  });
});
