/**
 * `npm run bench:draft-cost`: what a draft variant costs and how often it agrees with the target, measured the
 * way the engine uses a draft, for choosing one (issue: a cheaper draft). No bar: it prints and records.
 *
 * - c: the median draft pass (one token, past of 64) in the loop's pattern, one 1-token target pass and then k = 4
 *   draft passes, over the median 1-token target pass; the first pass after the target's is also reported (its
 *   weights have just been evicted). Variants alternate round by round, so machine noise hits all of them alike.
 * - greedy agreement: on held-out stories, teacher-forced, the share of positions where the variant's argmax is the
 *   target's (what greedy speculation accepts one proposal at a time).
 *
 * Variants: the committed draft, and by default the same draft with its LM head in int8
 * (scripts/models/quantize.py --head-only, run here with /usr/bin/python3 and python3-onnx); `--variants a.onnx,b.onnx`
 * names others. Writes results/draft-cost.json (--save: docs/bench/draft-cost.json).
 */
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, DRAFT_DIR, ROOT, TARGET_DIR } from './cli.ts';
import { heldoutStories } from './heldout.ts';
import { argmaxRows, feeds, quantizedCopy, sessionOptions } from './ort-direct.ts';
import { table } from './table.ts';

const cli = benchCli('bench:draft-cost', { rounds: '60', k: '4', stories: '24', variants: '', target: TARGET_DIR, draft: DRAFT_DIR });
const ROUNDS = cli.num('rounds');
const K = cli.num('k');
const PAST = 64;

function variantPaths(): string[] {
  const committed = join(cli.opts.draft, 'onnx', 'model.onnx');
  if (cli.opts.variants) return [committed, ...cli.opts.variants.split(',')];
  return [committed, quantizedCopy(committed, 'draft-int8-head.onnx', ['--head-only'])];
}

const paths = variantPaths();
const target = await ort.InferenceSession.create(join(cli.opts.target, 'onnx', 'model.onnx'), sessionOptions(2));
const drafts = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, sessionOptions(1))));
const tFeeds = feeds(target, [5], PAST, 1);
const dFeeds = drafts.map((d) => feeds(d, [7], PAST, 1));

for (let w = 0; w < 5; w++) {
  await target.run(tFeeds);
  for (const [i, d] of drafts.entries()) await d.run(dFeeds[i]!);
}
const targetMs: number[] = [];
const passMs = drafts.map(() => [] as number[]);
const firstMs = drafts.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (const [i, d] of drafts.entries()) {
    let t0 = performance.now();
    await target.run(tFeeds);
    targetMs.push(performance.now() - t0);
    for (let j = 0; j < K; j++) {
      t0 = performance.now();
      await d.run(dFeeds[i]!);
      const ms = performance.now() - t0;
      passMs[i]!.push(ms);
      if (j === 0) firstMs[i]!.push(ms);
    }
  }
}
const tMs = percentile(targetMs, 50);

// Greedy agreement with the target, teacher-forced on held-out stories (their first 256 tokens).
env.allowRemoteModels = false;
const tok = await AutoTokenizer.from_pretrained(cli.opts.target);
const stories = heldoutStories().slice(0, cli.num('stories'));
const agree = drafts.map(() => 0);
let positions = 0;
for (const story of stories) {
  const ids = tok.encode(story).slice(0, 256);
  const want = argmaxRows((await target.run(feeds(target, ids, 0, 0))).logits!.data as Float32Array, ids.length);
  for (const [i, d] of drafts.entries()) {
    const got = argmaxRows((await d.run(feeds(d, ids, 0, 0))).logits!.data as Float32Array, ids.length);
    agree[i]! += got.filter((t, p) => t === want[p]).length;
  }
  positions += ids.length;
}

const rows = paths.map((p, i) => ({
  variant: p.startsWith(`${ROOT}/`) ? p.slice(ROOT.length + 1) : basename(p),
  'pass ms (median)': round(percentile(passMs[i]!, 50), 3),
  'first pass ms': round(percentile(firstMs[i]!, 50), 3),
  c: round(percentile(passMs[i]!, 50) / tMs, 3),
  'c (first pass)': round(percentile(firstMs[i]!, 50) / tMs, 3),
  'greedy agreement': round(agree[i]! / positions, 4),
}));
console.log(table(rows));
console.log(
  `target 1-token pass (past ${PAST}): ${tMs.toFixed(2)} ms; ${ROUNDS} rounds of 1 target + ${K} draft passes per variant; agreement over ${positions} positions of ${stories.length} held-out stories`,
);
cli.writeJson('docs/bench/draft-cost.json', { rounds: ROUNDS, k: K, past: PAST, target_pass_ms: tMs, positions, rows });
