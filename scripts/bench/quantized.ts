/**
 * `npm run bench:q8`: the bundled pair's int8 files (`onnx/model_quantized.onnx`, what `--dtype q8` loads) against
 * their fp32 originals, side by side in one run: the 1-token pass at a past of 128 (variants alternating), greedy
 * agreement with the fp32 model (teacher-forced argmax on held-out stories) and held-out perplexity. Speculative
 * decoding stays lossless with respect to whichever target is loaded; this says what q8 changes about the target.
 *
 * Then, through the engine with --dtype q8: greedy speculative (k auto) against q8 target mode on held-out prompts,
 * 128 tokens. int8 kernels can round a verify pass's rows differently from a 1-token pass, so the two may part at a
 * near-tie; where they do, the target's margin there (top-1 minus top-2 log-probability) is reported.
 *
 * Bars (exit 1 if missed): the q8 target's pass ≤ 0.75× the fp32 target's (a quarter of the bytes is the point);
 * its perplexity within 2 % of fp32's; q8 speculative equal to q8 target on ≥ 99 % of tokens, every parting at a
 * near-tie (margin ≤ 0.01 nats). Greedy agreement with fp32 is reported, not barred: q8 is a different model.
 * Writes results/q8.json (--save: docs/bench/q8.json).
 * Files missing from the model folders are made with scripts/models/quantize.py into results/.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { createEngine, DEFAULT_ENGINE_OPTIONS, type EmittedToken } from '../../src/engine/index.ts';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, DRAFT_DIR, ROOT, TARGET_DIR } from './cli.ts';
import { heldoutPrompts, heldoutStories } from './heldout.ts';
import { greedyTokens, partingsOf } from './greedy-partings.ts';
import { argmaxRows, feeds, meanNll, quantizedCopy, sessionOptions } from './ort-direct.ts';
import { table } from './table.ts';

const cli = benchCli('bench:q8', {
  reps: '40',
  past: '128',
  stories: '24',
  prompts: '20',
  'new-tokens': '128',
  target: TARGET_DIR,
  draft: DRAFT_DIR,
});
const REPS = cli.num('reps');
const PAST = cli.num('past');

function q8Path(dir: string): string {
  const committed = join(dir, 'onnx', 'model_quantized.onnx');
  return existsSync(committed) ? committed : quantizedCopy(join(dir, 'onnx', 'model.onnx'), `${basename(dir)}-model_quantized.onnx`);
}

env.allowRemoteModels = false;
const tok = await AutoTokenizer.from_pretrained(cli.opts.target);
const stories = heldoutStories()
  .slice(0, cli.num('stories'))
  .map((s) => tok.encode(s).slice(0, 256));
const positions = stories.reduce((a, s) => a + s.length, 0);

const rows = [];
const bars: Record<string, boolean> = {};
for (const [role, dir, threads] of [
  ['target', cli.opts.target, 2],
  ['draft', cli.opts.draft, 1],
] as const) {
  const paths = [join(dir, 'onnx', 'model.onnx'), q8Path(dir)];
  const sessions = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, sessionOptions(threads))));
  const step = sessions.map((s) => feeds(s, [5], PAST, 1));
  for (let w = 0; w < 5; w++) for (const [i, s] of sessions.entries()) await s.run(step[i]!);
  const ms = sessions.map(() => [] as number[]);
  for (let r = 0; r < REPS; r++)
    for (const [i, s] of sessions.entries()) {
      const t0 = performance.now();
      await s.run(step[i]!);
      ms[i]!.push(performance.now() - t0);
    }
  const nll = sessions.map(() => 0);
  let agree = 0;
  for (const ids of stories) {
    const logits = await Promise.all(sessions.map(async (s) => (await s.run(feeds(s, ids, 0, 0))).logits!.data as Float32Array));
    logits.forEach((l, i) => (nll[i]! += meanNll(l, ids) * (ids.length - 1)));
    const [a, b] = logits.map((l) => argmaxRows(l, ids.length));
    agree += a!.filter((t, p) => t === b![p]).length;
  }
  const ppl = nll.map((x) => Math.exp(x / (positions - stories.length)));
  const pass = ms.map((m) => percentile(m, 50));
  for (const [i, p] of paths.entries()) {
    rows.push({
      model: role,
      file: p.startsWith(`${ROOT}/`) ? p.slice(ROOT.length + 1) : p,
      'pass ms (median)': round(pass[i]!, 3),
      'vs fp32': round(pass[i]! / pass[0]!, 3),
      'greedy agreement with fp32': i === 0 ? 1 : round(agree / positions, 4),
      perplexity: round(ppl[i]!, 5),
    });
  }
  if (role === 'target') {
    bars['q8 target pass ≤ 0.75× fp32'] = pass[1]! / pass[0]! <= 0.75;
    bars['q8 target perplexity within 2 % of fp32'] = ppl[1]! / ppl[0]! <= 1.02;
  }
}
// Speculative against target mode under q8, through the engine.
const engine = await createEngine({
  ...DEFAULT_ENGINE_OPTIONS,
  targetPath: cli.opts.target,
  draftPath: cli.opts.draft,
  dtype: 'q8',
  maxRunning: 1,
  maxQueue: 64,
  queueTimeoutMs: 600_000,
  maxPromptTokens: 768,
});
const pairs: [EmittedToken[], EmittedToken[]][] = [];
for (const p of heldoutPrompts().slice(0, cli.num('prompts')))
  pairs.push([
    await greedyTokens(engine, p, 'target', cli.num('new-tokens')),
    await greedyTokens(engine, p, 'speculative', cli.num('new-tokens')),
  ]);
const { equal: equalTokens, total: totalTokens, partings } = partingsOf(pairs);
await engine.close();
const equalShare = equalTokens / totalTokens;
bars['q8 speculative = q8 target on ≥ 99 % of tokens'] = equalShare >= 0.99;
bars['q8: every parting at a near-tie (margin ≤ 0.01 nats)'] = partings.every((x) => x.margin <= 0.01);

console.log(table(rows));
console.log(
  `q8 speculative vs q8 target, greedy, ${totalTokens} tokens: equal up to the first parting on ${(100 * equalShare).toFixed(2)} % of tokens; ${partings.length} prompts part${partings.length ? `, at margins ${partings.map((x) => x.margin).join(', ')} nats` : ''}`,
);
console.log(
  `1-token pass on a past of ${PAST}, ${REPS} reps alternating; agreement and perplexity over ${positions} positions of ${stories.length} held-out stories`,
);
for (const [name, ok] of Object.entries(bars)) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
cli.writeJson('docs/bench/q8.json', {
  reps: REPS,
  past: PAST,
  positions,
  rows,
  speculative: { tokens: totalTokens, equal_share: equalShare, partings },
  bars,
});
process.exit(Object.values(bars).every(Boolean) ? 0 : 1);
