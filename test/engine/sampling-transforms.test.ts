/**
 * presence_penalty, frequency_penalty and logit_bias on the bundled pair, through the engine core: they shape the
 * draft's q and the target's p identically, so greedy speculative output stays the (transformed) target's, and
 * the extremes of logit_bias do what OpenAI documents (−100 bans a token, +100 forces it).
 */
import { AutoTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine, type SamplingParams } from '../../src/engine/index.ts';
import { describeWithModels, engineOptions, generateAll, GREEDY, PROMPTS, TARGET_DIR } from '../helpers/models.ts';

const run = generateAll;

describeWithModels('sampling transforms stay lossless under speculation', () => {
  let engine: Engine;
  let ids: (word: string) => number;

  beforeAll(async () => {
    engine = await createEngine(engineOptions({ maxRunning: 16, maxQueue: 64, queueTimeoutMs: 120_000, maxPromptTokens: 512 }));
    const tok = await AutoTokenizer.from_pretrained(TARGET_DIR);
    ids = (word) => {
      const e = tok.encode(word, { add_special_tokens: false });
      if (e.length !== 1) throw new Error(`${JSON.stringify(word)} is ${e.length} tokens`);
      return e[0]!;
    };
  });
  afterAll(() => engine?.close());

  it('greedy with presence, frequency, repetition penalties and logit_bias: speculative = target, token for token', async () => {
    const sampling: SamplingParams = {
      ...GREEDY,
      presencePenalty: 0.6,
      frequencyPenalty: 0.4,
      repetitionPenalty: 1.1,
      logitBias: [
        [ids(' the'), -1.5],
        [ids(' happy'), 2],
      ],
    };
    const prompts = PROMPTS.slice(0, 8);
    const target = await Promise.all(prompts.map((p) => run(engine, { input: { prompt: p }, mode: 'target', sampling })));
    const plain = await Promise.all(prompts.map((p) => run(engine, { input: { prompt: p }, mode: 'target' })));
    const spec = await Promise.all(
      prompts.map((p, i) => run(engine, { input: { prompt: p }, sampling, k: [1, 3, 'auto' as const][i % 3]! })),
    );
    spec.forEach((s, i) => expect(s.ids, prompts[i]).toEqual(target[i]!.ids));
    expect(spec.reduce((n, s) => n + s.proposed, 0)).toBeGreaterThan(0);
    // The transforms really changed the output (else this test would prove nothing).
    expect(target.filter((t, i) => t.ids.join() !== plain[i]!.ids.join()).length).toBeGreaterThanOrEqual(4);
  });

  it('a seeded, sampled k "auto" request gives the same tokens alone and in a busy batch with a long prompt arriving', async () => {
    const sampling: SamplingParams = { ...GREEDY, temperature: 1, topP: 0.95, seed: 4242 };
    const req = { input: { prompt: PROMPTS[2]! }, sampling, maxTokens: 40 };
    const alone = await run(engine, req);
    const long = { prompt: Array.from({ length: 12 }, () => PROMPTS[5]!).join(' ') };
    const busy = await Promise.all([
      ...PROMPTS.slice(3, 9).map((p, i) =>
        run(engine, { input: { prompt: p }, sampling: { ...GREEDY, temperature: 1, seed: i }, maxTokens: 40 }),
      ),
      run(engine, { input: long, maxTokens: 8 }),
      run(engine, req),
    ]);
    expect(busy.at(-1)!.ids).toEqual(alone.ids);
    expect(alone.proposed).toBeGreaterThan(0);
  });

  it('logit_bias −100 keeps a token out of 200 sampled completions; +100 makes it every token', async () => {
    const banned = ids('.'); // the commonest token of these stories
    const sampling = (bias: number, seed: number): SamplingParams => ({ ...GREEDY, temperature: 1, seed, logitBias: [[banned, bias]] });
    const prompt = { prompt: 'Once upon a time, there was a little dog. He liked to play. One day' };
    const free = await Promise.all(
      Array.from({ length: 40 }, (_, i) => run(engine, { input: prompt, sampling: { ...GREEDY, temperature: 1, seed: i }, maxTokens: 12 })),
    );
    expect(free.flatMap((r) => r.ids).filter((t) => t === banned).length).toBeGreaterThan(10); // common without the bias
    const out: number[][] = [];
    for (let b = 0; b < 200; b += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, i) => run(engine, { input: prompt, sampling: sampling(-100, b + i), maxTokens: 12 })),
      );
      out.push(...batch.map((r) => r.ids));
    }
    expect(out.length).toBe(200);
    expect(out.flat().filter((t) => t === banned)).toEqual([]);
    const forced = await Promise.all(
      Array.from({ length: 8 }, (_, i) => run(engine, { input: prompt, sampling: sampling(100, i), maxTokens: 6 })),
    );
    for (const r of forced) expect(r.ids).toEqual(Array(6).fill(banned));
  }, 120_000);
});
