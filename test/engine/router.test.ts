import { describe, expect, it } from 'vitest';
import { StepCosts } from '../../src/engine/scheduler/adaptive-k.ts';
import { predict, route, type LiveLoad } from '../../src/engine/scheduler/router.ts';

// Costs shaped like the bundled pair: a 4 ms target pass (+0.3 ms per extra token), a 0.4 ms draft pass.
const costs = new StepCosts({ draftMs: 0.4, targetMs: [0, ...Array.from({ length: 9 }, (_, i) => 4 + 0.3 * i)] });
const idle: LiveLoad = {
  running: 0,
  queued: 0,
  maxRunning: 4,
  demand: 0,
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

  it("adds the others' demand × the allowance per token, and queueing when every slot is busy", () => {
    const alone = predict('target', 20, costs, idle);
    const shared = predict('target', 20, costs, { ...idle, running: 3, demand: 0.6 }, 10);
    const queued = predict('target', 20, costs, { ...idle, running: 4, queued: 2, demand: 0.6 }, 10);
    expect(shared.itlMs).toBeCloseTo(alone.itlMs + 6, 6);
    // A budget fits exactly while the total demand, ours included, stays within the worker: 4/10 + 0.6 = 1.
    expect(predict('target', 20, costs, { ...idle, demand: 0.6 }, 10).itlMs).toBeCloseTo(10, 6);
    expect(queued.ttftMs - shared.ttftMs).toBeGreaterThanOrEqual((3 / 4) * idle.streamMs - 1);
  });

  it('counts the worker overhead in every step, and stays finite when the worker is oversubscribed', () => {
    expect(predict('draft', 20, costs, { ...idle, overheadMs: 0.2 }).itlMs).toBeCloseTo(0.6, 6);
    const over = predict('target', 20, costs, { ...idle, running: 3, demand: 1.7 }, 10);
    expect(Number.isFinite(over.itlMs)).toBe(true);
    expect(over.itlMs).toBeGreaterThan(10); // oversubscribed: no budget of 10 ms can fit
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
