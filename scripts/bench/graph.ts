/**
 * `npm run bench:graph`: the bundled pair's pooled graph (onnx/model_pooled.onnx, scripts/models/fused_graph.py)
 * against the standard export (onnx/model.onnx, kept for this comparison), same run, same machine, both driven by
 * the engine's own DecoderModel and KV cache (so the standard graph pays for the cache it returns, the pooled one
 * for writing its new slots in place). Passes alternate between the two graphs, so machine noise hits both alike.
 *
 * - target: a 1-token pass on a 128-token context (bar: pooled ≤ 0.75× standard), and the 5-token verify pass at
 *   pasts of ~20, ~250 and ~760 (how each grows with the context; no bar);
 * - draft, in the loop's pattern (one 1-token target pass, then k = 4 one-token draft passes, each graph with its own
 *   target): the draft's time per proposed token (bar: pooled ≤ 0.35× standard);
 * - greedy: the target's greedy continuations of held-out prompts under both graphs (bar: the same tokens, or
 *   ≥ 99 % of them with every parting at a near-tie, top-2 margin ≤ 0.01 nats; fused kernels may sum in another order).
 *
 * Exits 1 when a bar is missed. Writes results/graph.json (--save: docs/bench/graph.json).
 */
import { createEngine, DEFAULT_ENGINE_OPTIONS, type EmittedToken } from '../../src/engine/index.ts';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { greedyTokens, partingsOf } from './greedy-partings.ts';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutPrompts } from './heldout.ts';
import { table } from './table.ts';

const cli = benchCli('bench:graph', { reps: '40', k: '4', prompts: '20', tokens: '64', target: TARGET_DIR, draft: DRAFT_DIR });
const REPS = cli.num('reps');
const K = cli.num('k');
const GRAPHS = ['standard', 'auto'] as const;
const load = (dir: string, threads: number) =>
  Promise.all(GRAPHS.map((graph) => DecoderModel.load(dir, { dtype: 'fp32', threads, graph })));
const targets = await load(cli.opts.target, 2);
const drafts = await load(cli.opts.draft, 1);
const label = (m: DecoderModel) => m.info.file;
if (!targets[1]!.info.pooled) throw new Error(`${cli.opts.target} has no ${'onnx/model_pooled.onnx'}: nothing to compare`);

const ids = (n: number, from = 5) => Array.from({ length: n }, (_, i) => from + ((i * 37) % 8000));
const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};
const med = (xs: number[]) => percentile(xs, 50);

/**
 * Median time of `T`-token passes on top of exactly `past` cached tokens, graphs alternating. Each rep starts from a
 * freshly prefilled cache (untimed): rolling back by mask would leave holes that grow the pass a little each rep.
 */
async function passTimes(models: DecoderModel[], past: number, T: number): Promise<number[]> {
  const times = models.map(() => [] as number[]);
  for (let r = 0; r < REPS + 3; r++)
    for (const [i, m] of models.entries()) {
      const cache = m.newCache();
      await m.forward(cache, ids(past), 1);
      const ms = await time(() => m.forward(cache, ids(T, 11), 0));
      if (r >= 3) times[i]!.push(ms);
    }
  return times.map(med);
}

const [std1, pooled1] = await passTimes(targets, 128, 1);
const verifyRows = [];
for (const past of [20, 250, 760]) {
  const [s, p] = await passTimes(targets, past, 5);
  verifyRows.push({ past, 'standard ms': round(s!, 3), 'pooled ms': round(p!, 3), 'pooled ÷ standard': round(p! / s!, 3) });
}

// The loop's pattern: the target's pass evicts the draft's weights, then k draft passes (each a proposal).
const draftPerToken = GRAPHS.map(() => [] as number[]);
{
  const tc = targets.map((m) => m.newCache());
  const dc = drafts.map((m) => m.newCache());
  for (const i of [0, 1]) {
    await targets[i]!.forward(tc[i]!, ids(64), 1);
    await drafts[i]!.forward(dc[i]!, ids(64), 1);
  }
  for (let r = 0; r < REPS + 3; r++)
    for (const i of [0, 1]) {
      await targets[i]!.forward(tc[i]!, [9], 1);
      tc[i]!.truncate(64);
      let ms = 0;
      for (let j = 0; j < K; j++) ms += await time(() => drafts[i]!.forward(dc[i]!, [12 + j], 1));
      dc[i]!.truncate(64);
      if (r >= 3) draftPerToken[i]!.push(ms / K);
    }
}
const [stdDraft, pooledDraft] = draftPerToken.map(med);

// Greedy continuations under both graphs, target mode through the engine: where they part, how close the standard
// graph's top two were.
const engineFor = (graph: (typeof GRAPHS)[number]) =>
  createEngine({
    ...DEFAULT_ENGINE_OPTIONS,
    targetPath: cli.opts.target,
    draftPath: cli.opts.draft,
    graph,
    maxRunning: 1,
    queueTimeoutMs: 600_000,
  });
const engines = [await engineFor('standard'), await engineFor('auto')];
const prompts = heldoutPrompts().slice(0, cli.num('prompts'));
const TOKENS = cli.num('tokens');
const pairs: [EmittedToken[], EmittedToken[]][] = [];
for (const p of prompts)
  pairs.push([await greedyTokens(engines[0]!, p, 'target', TOKENS), await greedyTokens(engines[1]!, p, 'target', TOKENS)]);
for (const e of engines) await e.close();
const { equal: same, total, partings } = partingsOf(pairs);

const targetRatio = pooled1! / std1!;
const draftRatio = pooledDraft! / stdDraft!;
const agreement = same / total;
const bars = {
  'target 1-token pass (past 128), pooled ÷ standard ≤ 0.75': { value: round(targetRatio, 3), pass: targetRatio <= 0.75 },
  'draft ms per proposed token (1 target + 4 draft passes), pooled ÷ standard ≤ 0.35': {
    value: round(draftRatio, 3),
    pass: draftRatio <= 0.35,
  },
  'greedy tokens equal, or ≥ 99 % with every parting at a near-tie (≤ 0.01 nats)': {
    value: round(agreement, 4),
    pass: partings.length === 0 || (agreement >= 0.99 && partings.every((x) => x.margin <= 0.01)),
  },
};
console.log(
  table([
    { measure: 'target 1-token pass, past 128 (ms)', [label(targets[0]!)]: round(std1!, 3), [label(targets[1]!)]: round(pooled1!, 3) },
    {
      measure: `draft per proposed token, k = ${K} (ms)`,
      [label(drafts[0]!)]: round(stdDraft!, 3),
      [label(drafts[1]!)]: round(pooledDraft!, 3),
    },
  ]),
);
console.log(table(verifyRows));
console.log(
  `greedy: ${same}/${total} tokens equal up to the first parting (${prompts.length} held-out prompts × ${TOKENS}); partings: ${JSON.stringify(partings)}`,
);
for (const [name, b] of Object.entries(bars)) console.log(`${b.pass ? 'PASS' : 'FAIL'} ${name}: ${b.value}`);
cli.writeJson('docs/bench/graph.json', {
  reps: REPS,
  k: K,
  target_pass_ms: { standard: std1, pooled: pooled1 },
  draft_per_token_ms: { standard: stdDraft, pooled: pooledDraft },
  verify: verifyRows,
  greedy: { prompts: prompts.length, tokens: TOKENS, equal: same, total, partings },
  bars,
});
if (!Object.values(bars).every((b) => b.pass)) process.exit(1);
