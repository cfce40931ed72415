/**
 * End-to-end losslessness under sampling: the first two tokens drawn by speculative sampling (draft proposals,
 * rejection test, residual resampling, bonus token) follow the same joint distribution as target-only sampling,
 * with 8 streams sharing every pass of the engine core.
 * Two-sample chi-square homogeneity test over ≥ 2,000 seeded runs each, with top-k/top-p applied so that q has
 * mass where p has none and vice versa.
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { beforeAll, expect, it } from 'vitest';
import type { BatchModels } from '../../src/engine/core/batch.ts';
import { EngineCore } from '../../src/engine/core/engine-core.ts';
import type { KvBatch } from '../../src/engine/kv/kv-batch.ts';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import type { Mode, SamplingParams } from '../../src/engine/types.ts';
import { chiSquareSurvival } from './sampling/chi-square.ts';
import { describeWithModels, DRAFT_DIR, TARGET_DIR } from '../helpers/models.ts';

const RUNS = 2000;
/** Streams per engine core run: the distribution must hold for streams that share their passes. */
const BATCH = 8;
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
  let models: BatchModels<KvBatch>;
  let promptIds: number[];
  let eos: Set<number>;
  /** Draft proposals seen: the second token must really come out of speculative rounds. */
  let proposals = 0;

  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.useFSCache = false;
    const load = { dtype: 'fp32' as const, threads: 1 };
    const [t, d] = [await DecoderModel.load(TARGET_DIR, load), await DecoderModel.load(DRAFT_DIR, load)];
    models = { target: t, draft: d };
    eos = new Set(t.info.eosIds);
    promptIds = (await AutoTokenizer.from_pretrained(TARGET_DIR)).encode(PROMPT);
  });

  /**
   * The first two tokens of `seeds.length` streams run together in one engine core (one batch). The first token
   * comes from the target's prefill; with 4 tokens allowed, the second comes out of a speculative round (k = 2).
   */
  async function firstTwo(mode: Mode, sampling: Omit<SamplingParams, 'seed'>, seeds: number[]): Promise<string[]> {
    const tokens = new Map<number, number[]>();
    const done = new Set<number>();
    const core = new EngineCore(
      models,
      eos,
      { maxK: 3, prefillChunk: 64 },
      (results) => {
        for (const r of results) {
          proposals += r.proposed;
          tokens.set(r.sid, [...(tokens.get(r.sid) ?? []), ...r.tokens]);
          if (r.done || (tokens.get(r.sid)?.length ?? 0) >= 2) done.add(r.sid);
        }
      },
      (sid, message) => {
        throw new Error(`stream ${sid}: ${message}`);
      },
    );
    seeds.forEach((seed, i) =>
      core.open({
        type: 'open',
        sid: i + 1,
        promptIds,
        mode,
        sampling: { ...sampling, seed },
        ignoreEos: false,
        maxNew: 4,
        k: mode === 'speculative' ? 3 : 0,
        allowanceMs: 200,
        logprobs: null,
      }),
    );
    while (done.size < seeds.length) await core.iterate();
    return seeds.map((_, i) =>
      tokens
        .get(i + 1)!
        .slice(0, 2)
        .join(','),
    );
  }

  async function histogram(mode: Mode, sampling: Omit<SamplingParams, 'seed'>, seedBase: number): Promise<Map<string, number>> {
    const h = new Map<string, number>();
    for (let i = 0; i < RUNS; i += BATCH) {
      for (const key of await firstTwo(
        mode,
        sampling,
        Array.from({ length: BATCH }, (_, j) => seedBase + i + j),
      ))
        h.set(key, (h.get(key) ?? 0) + 1);
    }
    return h;
  }

  for (const [name, sampling] of [
    ['temperature 1.2', { temperature: 1.2, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 }],
    ['top-k 8 + top-p 0.9', { temperature: 1, topP: 0.9, topK: 8, minP: 0, repetitionPenalty: 1 }],
  ] as const) {
    it(`first-two-token distribution matches target mode (${name}, ${RUNS} runs each)`, async () => {
      proposals = 0;
      const spec = await histogram('speculative', sampling, 1_000_000);
      expect(proposals).toBeGreaterThanOrEqual(RUNS);
      const target = await histogram('target', sampling, 2_000_000);
      const t = homogeneity(spec, target);
      expect(t.df).toBeGreaterThan(2); // the test only means something if the pairs are spread out
      expect(t.p, JSON.stringify(t)).toBeGreaterThan(0.01);
    }, 400_000); // a statistical test: its cost is its runs
  }

  it(`first-two-token distribution matches target mode with penalties and logit_bias active (${RUNS} runs each)`, async () => {
    const tok = await AutoTokenizer.from_pretrained(TARGET_DIR);
    const id = (w: string) => tok.encode(w, { add_special_tokens: false })[0]!;
    // The second token sees the first through presence/frequency (completion only) and repetition (prompt too);
    // the bias moves mass between likely names, so q and p are both reshaped where the draws happen. What this
    // guards: the verify side samples the same transformed p as target mode. It cannot see whether the draft's q is
    // transformed (rejection sampling is exact for any q), nor whether the transforms act at all: the greedy test in
    // sampling-transforms.test.ts asserts that they change the output.
    const sampling = {
      temperature: 1,
      topP: 0.95,
      topK: 0,
      minP: 0,
      repetitionPenalty: 1.2,
      presencePenalty: 0.8,
      frequencyPenalty: 0.5,
      logitBias: [
        [id(' Lily'), -2],
        [id(' Sue'), 1.5],
        [id(' Tim'), 1],
      ] as [number, number][],
    };
    proposals = 0;
    const spec = await histogram('speculative', sampling, 3_000_000);
    expect(proposals).toBeGreaterThanOrEqual(RUNS);
    const target = await histogram('target', sampling, 4_000_000);
    const t = homogeneity(spec, target);
    expect(t.df).toBeGreaterThan(2);
    expect(t.p, JSON.stringify(t)).toBeGreaterThan(0.01);
  }, 400_000);

  it('the same seed gives the same tokens, whichever streams share its batch', async () => {
    const s = { temperature: 1, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 };
    const [alone] = await firstTwo('speculative', s, [42]);
    expect((await firstTwo('speculative', s, [7, 42, 9, 11]))[1]).toBe(alone);
  });
});
