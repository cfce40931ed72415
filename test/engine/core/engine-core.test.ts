/**
 * The engine core on fake batched models: many streams in one batch, mixed modes and k, joining and leaving
 * mid-batch, each stream's greedy tokens equal to what it gets alone in target mode.
 */
import { describe, expect, it } from 'vitest';
import { EngineCore } from '../../../src/engine/core/engine-core.ts';
import type { OpenMessage } from '../../../src/engine/core/sequence.ts';
import type { PassReport, StepResult } from '../../../src/engine/ipc/messages.ts';
import type { Mode } from '../../../src/engine/types.ts';
import { SAMPLING_DEFAULTS } from '../../../src/server/to-engine.ts';
import { fakeBatchModel, V, type FakeBatchModel } from './fake-batch.ts';

interface Harness {
  core: EngineCore<ReturnType<FakeBatchModel['newBatch']>>;
  results: Map<number, StepResult[]>;
  reports: PassReport[];
  failures: string[];
}

function harness(target: FakeBatchModel, draft: FakeBatchModel | null, eos: number[] = [], prefillChunk = 16): Harness {
  const results = new Map<number, StepResult[]>();
  const reports: PassReport[] = [];
  const failures: string[] = [];
  const core = new EngineCore(
    { target, draft },
    new Set(eos),
    {
      maxK: 8,
      prefillChunk,
      calibration: { target: [1, 2, 3, 4, 5, 6, 7, 8, 9].map((T) => [1, T, 4 + 0.3 * (T - 1)] as const), draft: [[1, 1, 0.4]] },
    },
    (rs, report) => {
      for (const r of rs) results.set(r.sid, [...(results.get(r.sid) ?? []), r]);
      if (report) reports.push(report);
    },
    (sid, message) => failures.push(`${sid}: ${message}`),
  );
  return { core, results, reports, failures };
}

const open = (sid: number, promptIds: number[], mode: Mode, k: number | 'auto', maxNew = 40): OpenMessage => ({
  type: 'open',
  sid,
  promptIds,
  mode,
  sampling: { ...SAMPLING_DEFAULTS, seed: sid },
  ignoreEos: false,
  maxNew,
  k,
  allowanceMs: 200,
  logprobs: null,
});

const tokensOf = (h: Harness, sid: number) => (h.results.get(sid) ?? []).flatMap((r) => r.tokens);
const finished = (h: Harness, sid: number) => (h.results.get(sid) ?? []).some((r) => r.done);

async function runUntilDone(h: Harness, sids: number[], maxIterations = 500): Promise<void> {
  for (let i = 0; i < maxIterations && !sids.every((s) => finished(h, s)); i++) await h.core.iterate();
  expect(sids.filter((s) => !finished(h, s))).toEqual([]);
}

const prompt = (i: number, n: number) => Array.from({ length: n }, (_, j) => (i * 13 + j * 7) % V);

/** Each prompt's greedy tokens when it runs alone in target mode. */
async function alone(prompts: number[][], maxNew = 40): Promise<number[][]> {
  const out: number[][] = [];
  for (const [i, p] of prompts.entries()) {
    const h = harness(fakeBatchModel(1, 0), null);
    h.core.open(open(i + 1, p, 'target', 0, maxNew));
    await runUntilDone(h, [i + 1]);
    out.push(tokensOf(h, i + 1));
  }
  return out;
}

describe('engine core', () => {
  it('16 streams in one batch (speculative and target, mixed k, staggered joins) each get their target-alone tokens', async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => prompt(i, 1 + ((i * 11) % 45)));
    const ref = await alone(prompts);
    const target = fakeBatchModel(1, 0),
      draft = fakeBatchModel(2, 4);
    const h = harness(target, draft);
    const ks: (number | 'auto')[] = [1, 2, 3, 5, 8, 'auto'];
    // Streams join in waves while others decode: 6 now, 5 during the fourth iteration, 5 after the eighth.
    const join = (from: number, to: number) => {
      for (let i = from; i < to; i++) h.core.open(open(i + 1, prompts[i]!, i % 4 === 3 ? 'target' : 'speculative', ks[i % ks.length]!));
    };
    join(0, 6);
    for (let i = 0; i < 3; i++) await h.core.iterate();
    // The second wave arrives while a pass is running (the worker's port delivers opens at any await).
    const running = h.core.iterate();
    join(6, 11);
    await running;
    for (let i = 0; i < 4; i++) await h.core.iterate();
    join(11, 16);
    await runUntilDone(
      h,
      prompts.map((_, i) => i + 1),
    );
    prompts.forEach((_, i) => expect(tokensOf(h, i + 1), `stream ${i + 1}`).toEqual(ref[i]));
    expect(Math.max(...target.passes)).toBeGreaterThanOrEqual(12); // streams really shared verify passes
    expect(Math.max(...draft.passes)).toBeGreaterThanOrEqual(8);
    const proposed = [...h.results.values()].flat().reduce((a, r) => a + r.proposed, 0);
    const accepted = [...h.results.values()].flat().reduce((a, r) => a + r.accepted, 0);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(proposed); // the draft really disagrees sometimes
    expect(h.failures).toEqual([]);
  });

  it('a stream that leaves mid-batch does not disturb the others', async () => {
    const prompts = Array.from({ length: 6 }, (_, i) => prompt(i + 20, 5 + i));
    const ref = await alone(prompts);
    const h = harness(fakeBatchModel(1, 0), fakeBatchModel(2, 4));
    prompts.forEach((p, i) => h.core.open(open(i + 1, p, 'speculative', 3)));
    for (let i = 0; i < 4; i++) await h.core.iterate();
    h.core.close(2);
    h.core.close(5);
    await runUntilDone(h, [1, 3, 4, 6]);
    for (const sid of [1, 3, 4, 6]) expect(tokensOf(h, sid)).toEqual(ref[sid - 1]);
    expect(finished(h, 2) || finished(h, 5)).toBe(false);
  });

  it('a stream whose sampling throws fails alone; the batch goes on', async () => {
    const prompts = Array.from({ length: 4 }, (_, i) => prompt(i + 30, 4 + i));
    const ref = await alone(prompts);
    const h = harness(fakeBatchModel(1, 0), fakeBatchModel(2, 4));
    prompts.forEach((p, i) => h.core.open(open(i + 1, p, 'speculative', 2)));
    // A bias on a token outside the vocabulary makes every choice of stream 5 throw (in the prefill, then nowhere).
    const bad = open(5, prompts[0]!, 'speculative', 2);
    h.core.open({ ...bad, sampling: { ...bad.sampling, temperature: 1, logitBias: [[V + 3, 1]] } });
    await runUntilDone(h, [1, 2, 3, 4]);
    for (const sid of [1, 2, 3, 4]) expect(tokensOf(h, sid)).toEqual(ref[sid - 1]);
    expect(h.failures).toHaveLength(1);
    expect(h.failures[0]).toMatch(/^5: /);
  });

  it('draft mode runs the draft alone, batched with speculative streams', async () => {
    const target = fakeBatchModel(1, 0),
      draft = fakeBatchModel(2, 4);
    const viaDraft = harness(fakeBatchModel(2, 4), null);
    viaDraft.core.open(open(1, [3, 4], 'target', 0, 20));
    await runUntilDone(viaDraft, [1]);
    const h = harness(target, draft);
    h.core.open(open(1, [3, 4], 'draft', 0, 20));
    h.core.open(open(2, [5, 6, 7], 'speculative', 'auto', 20));
    await runUntilDone(h, [1, 2]);
    expect(tokensOf(h, 1)).toEqual(tokensOf(viaDraft, 1));
  });

  it('stops at an end-of-sequence token, leaves it out and says so', async () => {
    const [ref] = await alone([[1]], 30);
    const eos = ref![10]!;
    const h = harness(fakeBatchModel(1, 0), fakeBatchModel(2, 4), [eos]);
    h.core.open(open(1, [1], 'speculative', 4, 30));
    await runUntilDone(h, [1]);
    expect(tokensOf(h, 1)).toEqual(ref!.slice(0, ref!.indexOf(eos)));
    expect(h.results.get(1)!.at(-1)).toMatchObject({ done: true, eos: true });
  });

  it('never makes more than maxNew tokens', async () => {
    const h = harness(fakeBatchModel(1, 0), fakeBatchModel(1, 0));
    h.core.open(open(1, [3], 'speculative', 8, 3));
    await runUntilDone(h, [1]);
    expect(tokensOf(h, 1)).toHaveLength(3);
  });

  it('a long prompt is prefilled in chunks while the others keep decoding', async () => {
    const h = harness(fakeBatchModel(1, 0), fakeBatchModel(2, 4), [], 16);
    h.core.open(open(1, [1, 2, 3], 'speculative', 2, 200));
    for (let i = 0; i < 3; i++) await h.core.iterate();
    const before = tokensOf(h, 1).length;
    h.core.open(open(2, prompt(7, 100), 'speculative', 2));
    for (let i = 0; i < 5; i++) await h.core.iterate();
    expect(tokensOf(h, 2)).toEqual([]); // 100 tokens at 16 per pass: still prefilling
    expect(tokensOf(h, 1).length - before).toBeGreaterThanOrEqual(5); // one decode step per iteration meanwhile
    await runUntilDone(h, [2]);
  });

  it('a model that cannot batch runs one lane per stream, with the same tokens', async () => {
    const prompts = Array.from({ length: 4 }, (_, i) => prompt(i + 40, 4 + i));
    const ref = await alone(prompts);
    const target = fakeBatchModel(1, 0, 1),
      draft = fakeBatchModel(2, 4, 1);
    const h = harness(target, draft);
    prompts.forEach((p, i) => h.core.open(open(i + 1, p, 'speculative', 'auto')));
    await runUntilDone(h, [1, 2, 3, 4]);
    prompts.forEach((_, i) => expect(tokensOf(h, i + 1)).toEqual(ref[i]));
    expect(Math.max(...target.passes)).toBe(1);
  });
});
