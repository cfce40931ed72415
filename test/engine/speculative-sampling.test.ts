/**
 * End-to-end losslessness under sampling: the first two tokens drawn by speculative sampling (draft proposals,
 * rejection test, residual resampling, bonus token) follow the same joint distribution as target-only sampling.
 * Two-sample chi-square homogeneity test over ≥ 2,000 seeded runs each, with top-k/top-p applied so that q has
 * mass where p has none and vice versa.
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { beforeAll, expect, it } from 'vitest';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import type { KvCache } from '../../src/engine/model/kv-cache.ts';
import { StreamState, type Models } from '../../src/engine/speculation/stream-state.ts';
import type { Mode, SamplingParams } from '../../src/engine/types.ts';
import { chiSquareSurvival } from './sampling/chi-square.ts';
import { describeWithModels, DRAFT_DIR, TARGET_DIR } from '../helpers/models.ts';

const RUNS = 2000;
const PROMPT = 'One day, a little girl named';

/** Two-sample chi-square homogeneity over categories; rare categories (< minCount combined) are pooled. */
export function homogeneity(a: Map<string, number>, b: Map<string, number>, minCount = 10): { stat: number; df: number; p: number } {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const na = [...a.values()].reduce((x, y) => x + y, 0),
    nb = [...b.values()].reduce((x, y) => x + y, 0);
  const bins: [number, number][] = [];
  let pooled: [number, number] = [0, 0];
  for (const k of keys) {
    const ca = a.get(k) ?? 0,
      cb = b.get(k) ?? 0;
    if (ca + cb >= minCount) bins.push([ca, cb]);
    else pooled = [pooled[0] + ca, pooled[1] + cb];
  }
  if (pooled[0] + pooled[1] > 0) bins.push(pooled);
  let stat = 0;
  for (const [ca, cb] of bins) {
    const total = ca + cb;
    const ea = (total * na) / (na + nb),
      eb = (total * nb) / (na + nb);
    stat += (ca - ea) ** 2 / ea + (cb - eb) ** 2 / eb;
  }
  const df = bins.length - 1;
  return { stat, df, p: df > 0 ? chiSquareSurvival(stat, df) : 1 };
}

describeWithModels('speculative sampling preserves the target distribution', () => {
  let models: Models<KvCache>;
  let promptIds: number[];
  let eos: Set<number>;

  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.useFSCache = false;
    const load = { dtype: 'fp32' as const, threads: 1 };
    const [t, d] = [await DecoderModel.load(TARGET_DIR, load), await DecoderModel.load(DRAFT_DIR, load)];
    models = { target: t, draft: d };
    eos = new Set(t.info.eosIds);
    promptIds = (await AutoTokenizer.from_pretrained(TARGET_DIR)).encode(PROMPT);
  });

  async function firstTwo(mode: Mode, sampling: Omit<SamplingParams, 'seed'>, seed: number): Promise<string> {
    const s = new StreamState(models, promptIds, mode, { ...sampling, seed }, eos, 512);
    const out: number[] = [];
    while (out.length < 2) {
      const r = await s.step(mode === 'speculative' ? 3 : 0, 2 - out.length + 1);
      out.push(...r.tokens);
      if (r.eos) break;
    }
    return out.slice(0, 2).join(',');
  }

  async function histogram(mode: Mode, sampling: Omit<SamplingParams, 'seed'>, seedBase: number): Promise<Map<string, number>> {
    const h = new Map<string, number>();
    for (let i = 0; i < RUNS; i++) {
      const key = await firstTwo(mode, sampling, seedBase + i);
      h.set(key, (h.get(key) ?? 0) + 1);
    }
    return h;
  }

  for (const [name, sampling] of [
    ['temperature 1.2', { temperature: 1.2, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 }],
    ['top-k 8 + top-p 0.9', { temperature: 1, topP: 0.9, topK: 8, minP: 0, repetitionPenalty: 1 }],
  ] as const) {
    it(`first-two-token distribution matches target mode (${name}, ${RUNS} runs each)`, async () => {
      const spec = await histogram('speculative', sampling, 1_000_000);
      const target = await histogram('target', sampling, 2_000_000);
      const t = homogeneity(spec, target);
      expect(t.df).toBeGreaterThan(2); // the test only means something if the pairs are spread out
      expect(t.p, JSON.stringify(t)).toBeGreaterThan(0.01);
    }, 400_000); // a statistical test: its cost is its runs (90–100 s each on a quiet 2-core machine, twice that beside another suite)
  }

  it('the same seed gives the same tokens', async () => {
    const s = { temperature: 1, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 };
    expect(await firstTwo('speculative', s, 42)).toBe(await firstTwo('speculative', s, 42));
  });
});
