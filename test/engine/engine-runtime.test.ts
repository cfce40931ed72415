/**
 * The engine as a service: off the event loop, fair between streams, cancellable, bounded, and not leaking.
 * Timing assertions here are deliberately generous (shared CI machines); the benchmarks hold the real bars.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createEngine,
  EngineError,
  type DoneEvent,
  type EngineEvent,
  type GenerateRequest,
  type SpecEngine,
} from '../../src/engine/index.ts';
import { sequentialGenerations } from '../../scripts/bench/memory.ts';
import { describeWithModels, engineOptions, GREEDY, PROMPTS } from '../helpers/models.ts';

const req = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
  input: { prompt: PROMPTS[0]! },
  maxTokens: 16,
  sampling: GREEDY,
  stop: [],
  mode: 'speculative',
  k: 'auto',
  ...over,
});

async function collect(it: AsyncIterable<EngineEvent>): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

const LONG_PROMPT = Array.from({ length: 80 }, (_, i) => `The ${['dog', 'cat', 'bird', 'fish'][i % 4]} number ${i} ran home.`).join(' ');

describeWithModels('engine runtime', () => {
  let engine: SpecEngine;
  beforeAll(async () => {
    engine = await createEngine(engineOptions({ threads: 1, maxRunning: 2, maxQueue: 1, queueTimeoutMs: 20_000, maxPromptTokens: 768 }));
  });
  afterAll(() => engine?.close());

  it('streams start, tokens and done whose texts add up', async () => {
    const evs = await collect(engine.generate(req({ maxTokens: 20, ignoreEos: true })));
    expect(evs[0]!.type).toBe('start');
    const done = evs.at(-1) as DoneEvent;
    expect(done.type).toBe('done');
    expect(done.finishReason).toBe('length');
    expect(done.completionTokens).toBe(20);
    const tokens = evs.flatMap((e) => (e.type === 'tokens' ? e.tokens : []));
    expect(tokens).toHaveLength(20);
    expect(evs.map((e) => (e.type === 'tokens' ? e.text : '')).join('')).toBe(done.text);
    expect(done.timings.itlMs).toHaveLength(19);
    expect(done.timings.ttftMs).toBeGreaterThan(0);
    expect(done.speculative.proposed).toBeGreaterThan(0);
  });

  it('a 512-token prefill does not stall the event loop', async () => {
    const ids = engine.encode({ prompt: LONG_PROMPT });
    expect(ids.length).toBeGreaterThanOrEqual(512);
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    await collect(engine.generate(req({ input: { prompt: LONG_PROMPT }, mode: 'target', maxTokens: 2 })));
    h.disable();
    expect(h.percentile(99) / 1e6).toBeLessThan(100);
  });

  it("one stream's long prompt does not freeze another stream's tokens", async () => {
    const gaps: number[] = [];
    let bStarted = false,
      bFirst = 0;
    let last = performance.now();
    const b = (async () => {
      await new Promise((r) => setTimeout(r, 30));
      bStarted = true;
      for await (const ev of engine.generate(req({ input: { prompt: LONG_PROMPT }, mode: 'target', maxTokens: 1 })))
        if (ev.type === 'done') bFirst = ev.timings.ttftMs;
    })();
    for await (const ev of engine.generate(req({ maxTokens: 60, ignoreEos: true, mode: 'target' }))) {
      if (ev.type !== 'tokens') continue;
      const now = performance.now();
      if (bStarted && !bFirst) gaps.push(now - last);
      last = now;
    }
    await b;
    expect(gaps.length).toBeGreaterThan(1); // A kept producing while B's prompt was being prefilled
    expect(Math.max(...gaps)).toBeLessThan(bFirst);
  });

  it('cancellation ends a stream at the next step and frees its slot', async () => {
    const ac = new AbortController();
    const evs: EngineEvent[] = [];
    for await (const ev of engine.generate(req({ maxTokens: 500, ignoreEos: true, signal: ac.signal }))) {
      evs.push(ev);
      if (ev.type === 'tokens') ac.abort();
    }
    expect((evs.at(-1) as DoneEvent).finishReason).toBe('cancelled');
    expect(engine.stats()).toEqual({ running: 0, queued: 0 });
  });

  it('refuses work beyond running + queue capacity with overloaded', async () => {
    const acs = [new AbortController(), new AbortController(), new AbortController()];
    const running = acs.map((ac) => collect(engine.generate(req({ maxTokens: 400, ignoreEos: true, signal: ac.signal }))).catch((e) => e));
    await new Promise((r) => setTimeout(r, 50));
    await expect(collect(engine.generate(req()))).rejects.toMatchObject({ code: 'overloaded' });
    acs.forEach((ac) => ac.abort());
    await Promise.all(running);
    expect(engine.stats()).toEqual({ running: 0, queued: 0 });
  });

  it('rejects a prompt longer than the limit, naming both counts', async () => {
    const err = await collect(engine.generate(req({ input: { prompt: LONG_PROMPT.repeat(3) } }))).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('prompt_too_long');
    expect(err.message).toMatch(/\d+ tokens.*768/);
  });

  it('stop strings end the stream without being emitted', async () => {
    const full = (await collect(engine.generate(req({ maxTokens: 30, ignoreEos: true })))).at(-1) as DoneEvent;
    const stop = full.text.slice(8, 12);
    expect(stop.length).toBe(4);
    const cut = (await collect(engine.generate(req({ maxTokens: 30, ignoreEos: true, stop: [stop] })))).at(-1) as DoneEvent;
    expect(cut.finishReason).toBe('stop');
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it('mode "auto" routes by latency budget and reports the decision', async () => {
    const loose = await collect(engine.generate(req({ mode: 'auto', latencyBudget: { ttftMs: 60_000, itlMs: 10_000 } })));
    const start = loose[0]!;
    expect(start.type === 'start' && start.route).toMatchObject({ mode: 'target', budgetMissed: false });
    const impossible = await collect(engine.generate(req({ mode: 'auto', latencyBudget: { itlMs: 0.001 } })));
    const done = impossible.at(-1) as DoneEvent;
    expect(done.route).toMatchObject({ budgetMissed: true });
    expect(done.mode).toBe(done.route!.mode);
    expect(Object.keys(done.route!.predicted).sort()).toEqual(['draft', 'speculative', 'target']);
  });

  it('sequential generations do not grow the heap', async () => {
    const r = await sequentialGenerations(engine, 150, 50, PROMPTS);
    expect(r.heapGrowth).toBeLessThan(0.25);
  }, 120_000);
});
