/**
 * Lossless under batching, on the bundled pair: 16 prompts running together (speculative with mixed k, and target
 * mode; streams joining while others decode, and leaving at different lengths) each get exactly the greedy tokens
 * they get alone in target mode.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine, type GenerateRequest } from '../../src/engine/index.ts';
import { describeWithModels, engineOptions, generateAll, PROMPTS } from '../helpers/models.ts';

async function tokensOf(engine: Engine, req: Partial<GenerateRequest> & Pick<GenerateRequest, 'input'>) {
  const r = await generateAll(engine, req);
  expect(r.finishReason).toBe('length');
  return r;
}

describeWithModels('greedy decoding is lossless under batching', () => {
  let engine: Engine;
  const prompts = PROMPTS.slice(0, 16);
  const lengths = prompts.map((_, i) => 8 + ((i * 5) % 24));
  const alone = new Map<number, number[]>();

  beforeAll(async () => {
    engine = await createEngine(engineOptions({ maxRunning: 16, maxQueue: 16, queueTimeoutMs: 60_000, maxPromptTokens: 512 }));
    for (const [i, p] of prompts.entries())
      alone.set(i, (await tokensOf(engine, { input: { prompt: p }, mode: 'target', maxTokens: lengths[i]! })).ids);
  });
  afterAll(() => engine?.close());

  it('16 streams together (speculative k = 1, 3, auto and target) match each stream alone in target mode', async () => {
    const ks = [1, 3, 'auto'] as const;
    const run = (i: number) =>
      tokensOf(engine, {
        input: { prompt: prompts[i]! },
        maxTokens: lengths[i]!,
        ...(i % 4 === 3 ? { mode: 'target' as const } : { k: ks[i % 3]! }),
      });
    const first = prompts.slice(0, 8).map((_, i) => run(i));
    await new Promise((r) => setTimeout(r, 150)); // the second half joins a batch that is already decoding
    const second = prompts.slice(8).map((_, i) => run(i + 8));
    const results = await Promise.all([...first, ...second]);
    results.forEach((r, i) => expect(r.ids, prompts[i]).toEqual(alone.get(i)));
    expect(results.filter((_, i) => i % 4 !== 3).some((r) => r.proposed > 0)).toBe(true);
  });
});
