/**
 * `npm run bench:step-cost`: where one speculative round's time goes as the context grows, on the models
 * directly (no engine, no worker; the graphs and KV cache the engine runs): a 5-token target verify pass, a 1-token
 * draft step, and the KV rollback of rejected positions, at pasts of ~20, ~250 and ~760 tokens (medians). Also the
 * same 5-token pass on the raw ONNX session of the standard export (onnx/model.onnx) with every output fetched and with the logits alone: the difference is what returning the whole
 * `present.*` cache costs (ONNX Runtime's Node binding copies each output into a new JS buffer). A diagnostic for
 * the batched core and the fused-graph work, with no bar: it prints and records what it measured.
 * Writes results/step-cost.json (--save: docs/bench/step-cost.json).
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { feeds, sessionOptions } from './ort-direct.ts';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { table } from './table.ts';

const cli = benchCli('bench:step-cost', { reps: '15', pasts: '20,250,760', target: TARGET_DIR, draft: DRAFT_DIR });
const REPS = cli.num('reps');
const PASTS = cli.opts.pasts.split(',').map(Number);
const target = await DecoderModel.load(cli.opts.target, { dtype: 'fp32', threads: 2 });
const draft = await DecoderModel.load(cli.opts.draft, { dtype: 'fp32', threads: 1 });

const time = async (f: () => unknown): Promise<number> => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};

const raw = await ort.InferenceSession.create(join(cli.opts.target, 'onnx', 'model.onnx'), sessionOptions(2));
const rows: Record<string, number>[] = [];
for (const P of PASTS) {
  const ids = Array.from({ length: P }, (_, i) => 5 + ((i * 37) % 8000));
  const tc = target.newCache();
  const dc = draft.newCache();
  await target.forward(tc, ids, 1);
  await draft.forward(dc, ids, 1);
  const verify: number[] = [];
  const rollbackT: number[] = [];
  const step: number[] = [];
  const rollbackD: number[] = [];
  for (let r = 0; r < REPS; r++) {
    verify.push(await time(() => target.forward(tc, [10, 11, 12, 13, 14], 0)));
    rollbackT.push(await time(() => tc.truncate(tc.length - 3)));
    step.push(await time(() => draft.forward(dc, [10], 1)));
    await draft.forward(dc, [11, 12], 1);
    rollbackD.push(await time(() => dc.truncate(dc.length - 2)));
  }
  const f = feeds(raw, [10, 11, 12, 13, 14], P, 0);
  const all: number[] = [];
  const logitsOnly: number[] = [];
  for (let w = 0; w < 3; w++) await raw.run(f);
  for (let r = 0; r < REPS; r++) {
    all.push(await time(() => raw.run(f)));
    logitsOnly.push(await time(() => raw.run(f, ['logits'])));
  }
  const med = (xs: number[]) => round(percentile(xs, 50), 3);
  rows.push({
    past: P,
    'target verify(5) ms': med(verify),
    'raw pass, all outputs ms': med(all),
    'raw pass, logits only ms': med(logitsOnly),
    'target rollback ms': med(rollbackT),
    'draft step ms': med(step),
    'draft rollback ms': med(rollbackD),
  });
}
console.log(table(rows));
cli.writeJson('docs/bench/step-cost.json', { reps: REPS, rows });
