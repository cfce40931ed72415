/**
 * Earliest-deadline-first between streams, end to end on the bundled pair: a stream with a tight ITL budget is
 * stepped more often than best-effort streams running at the same time. Asserted as a ratio of tokens made in the
 * same window (round-robin would give the budgeted stream a third of what three others make together; deadlines
 * with allowances of 30 vs 200 ms give it about twice as much), never as a speed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type DoneEvent, type GenerateRequest, type SpecEngine } from '../../src/engine/index.ts';
import { describeWithModels, engineOptions, GREEDY, PROMPTS } from '../helpers/models.ts';

const req = (over: Partial<GenerateRequest>): GenerateRequest => ({
  input: { prompt: PROMPTS[0]! },
  maxTokens: 16,
  sampling: GREEDY,
  stop: [],
  mode: 'target',
  k: 'auto',
  ignoreEos: true,
  ...over,
});

describeWithModels('deadline scheduling', () => {
  let engine: SpecEngine;
  beforeAll(async () => {
    engine = await createEngine(engineOptions({ threads: 1, maxRunning: 4, maxQueue: 2, queueTimeoutMs: 20_000, maxPromptTokens: 768 }));
  });
  afterAll(() => engine?.close());

  it('a budgeted stream gets more steps than best-effort streams running beside it', async () => {
    const stop = new AbortController();
    const background: number[][] = [[], [], []]; // arrival time of every token, per stream
    const runs = background.map(async (times, i) => {
      for await (const ev of engine.generate(req({ input: { prompt: PROMPTS[i + 1]! }, maxTokens: 400, signal: stop.signal }))) {
        if (ev.type === 'tokens') for (const _ of ev.tokens) times.push(performance.now());
      }
    });
    while (background.some((t) => t.length < 3)) await new Promise((r) => setTimeout(r, 5)); // all three decoding

    let from = 0,
      budgeted = 0,
      done: DoneEvent | undefined;
    for await (const ev of engine.generate(req({ mode: 'auto', latencyBudget: { itlMs: 30 }, maxTokens: 40 }))) {
      if (ev.type === 'start') from = performance.now();
      if (ev.type === 'tokens') budgeted += ev.tokens.length;
      if (ev.type === 'done') done = ev;
    }
    const to = performance.now();
    stop.abort();
    await Promise.all(runs);

    expect(done!.route?.mode).toBe('target'); // same mode as the others: only scheduling can make the difference
    expect(budgeted).toBe(40);
    const others = background.reduce((n, times) => n + times.filter((t) => t >= from && t <= to).length, 0);
    expect(budgeted).toBeGreaterThan(others);
  }, 60_000);
});
