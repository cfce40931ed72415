/**
 * logprobs on the bundled pair: the values reported for each token are the target's own (raw, before sampling
 * transforms), taken from the pass that chose the token, so greedy speculative and target mode report the same
 * numbers, and sampled streams report the log-probability of the token they actually emitted.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type EmittedToken, type Engine, type GenerateRequest } from '../../src/engine/index.ts';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { logProb } from '../../src/lib/stats.ts';
import { heldoutPrompts } from '../../scripts/bench/heldout.ts';
import { describeWithModels, engineOptions, generateAll, GREEDY, TARGET_DIR } from '../helpers/models.ts';

const tokens = async (engine: Engine, req: Parameters<typeof generateAll>[1]): Promise<EmittedToken[]> =>
  (await generateAll(engine, { maxTokens: 16, ...req })).tokens;

describeWithModels('logprobs', () => {
  let engine: Engine & { encode(input: GenerateRequest['input']): number[] };
  let target: DecoderModel;
  const prompts = heldoutPrompts().slice(0, 20);

  beforeAll(async () => {
    engine = await createEngine(engineOptions({ maxRunning: 20, maxQueue: 64, queueTimeoutMs: 120_000, maxPromptTokens: 512 }));
    target = await DecoderModel.load(TARGET_DIR, { dtype: 'fp32', threads: 1 });
  });
  afterAll(() => engine?.close());

  it('greedy: speculative and target mode report the same logprobs and top-5 (|Δ| ≤ 1e-4); the token is the top entry', async () => {
    const [spec, tgt] = await Promise.all([
      Promise.all(prompts.map((p) => tokens(engine, { input: { prompt: p }, logprobs: 5 }))),
      Promise.all(prompts.map((p) => tokens(engine, { input: { prompt: p }, logprobs: 5, mode: 'target' }))),
    ]);
    let compared = 0;
    spec.forEach((s, i) => {
      const t = tgt[i]!;
      expect(s.map((x) => x.id)).toEqual(t.map((x) => x.id));
      s.forEach((x, j) => {
        const y = t[j]!;
        expect(x.logprobs!.top).toHaveLength(5);
        expect(x.logprobs!.top[0]!.id).toBe(x.id); // greedy: the emitted token is the most likely one
        expect(x.logprobs!.logprob).toBe(x.logprobs!.top[0]!.logprob);
        expect(Math.abs(x.logprobs!.logprob - y.logprobs!.logprob)).toBeLessThanOrEqual(1e-4);
        x.logprobs!.top.forEach((e, r) => {
          expect(e.id).toBe(y.logprobs!.top[r]!.id);
          expect(Math.abs(e.logprob - y.logprobs!.top[r]!.logprob)).toBeLessThanOrEqual(1e-4);
        });
        compared++;
      });
    });
    expect(compared).toBe(20 * 16);
    expect(spec.flat().some((x) => x.source === 'draft')).toBe(true); // values really came from verify passes
  });

  it('sampled: each reported logprob is the target’s log-probability of the emitted token, raw (before temperature)', async () => {
    for (const [i, p] of prompts.slice(0, 4).entries()) {
      const sampling = { ...GREEDY, temperature: 1.5, topK: 20, seed: 100 + i };
      const out = await tokens(engine, { input: { prompt: p }, logprobs: 0, sampling });
      const ids = [...engine.encode({ prompt: p }), ...out.map((x) => x.id)];
      const promptLen = ids.length - out.length;
      const logits = await target.forward(target.newCache(), ids.slice(0, -1));
      const V = target.info.vocabSize;
      out.forEach((x, j) => {
        const row = logits.subarray((promptLen - 1 + j) * V, (promptLen + j) * V);
        expect(x.logprobs!.top).toEqual([]);
        expect(Math.abs(x.logprobs!.logprob - logProb(row, x.id))).toBeLessThanOrEqual(1e-3);
      });
    }
  });

  it('costs nothing when not asked for: no logprobs field', async () => {
    const out = await tokens(engine, { input: { prompt: prompts[0]! } });
    expect(out.every((x) => x.logprobs === undefined)).toBe(true);
  });
});
