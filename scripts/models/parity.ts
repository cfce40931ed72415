/**
 * Export parity: replays the fixture written by export.py through ONNX Runtime (the runtime specd serves with)
 * and compares logits with torch's, for a prefill with an empty past and a 3-token step on top of its cache.
 * Exits non-zero when the max abs difference reaches 1e-3.
 */
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Fixture {
  prefill_ids: number[];
  step_ids: number[];
  prefill_logits: number[];
  step_logits: number[];
  vocab: number;
  layers: number;
  kv_heads: number;
  head_dim: number;
}

const [modelDir, fixturePath] = process.argv.slice(2);
if (!modelDir || !fixturePath) throw new Error('usage: parity.ts <model dir> <fixture.json>');
const fx = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;
const session = await ort.InferenceSession.create(join(modelDir, 'onnx', 'model.onnx'));

const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
async function run(ids: number[], past: Record<string, ort.Tensor>, pastLen: number) {
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64(ids),
    attention_mask: i64(new Array(pastLen + ids.length).fill(1)),
    position_ids: i64(ids.map((_, i) => pastLen + i)),
    ...past,
  };
  // Every row's logits, compared with torch's (0 = keep all; logits_to_keep.py).
  if (session.inputNames.includes('num_logits_to_keep'))
    feeds['num_logits_to_keep'] = new ort.Tensor('int64', BigInt64Array.from([0n]), []);
  return session.run(feeds);
}
function maxDiff(a: Float32Array, b: number[]): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const empty: Record<string, ort.Tensor> = {};
for (let l = 0; l < fx.layers; l++)
  for (const kv of ['key', 'value'])
    empty[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, fx.kv_heads, 0, fx.head_dim]);
const pre = await run(fx.prefill_ids, empty, 0);
const past: Record<string, ort.Tensor> = {};
for (const [name, t] of Object.entries(pre)) if (name.startsWith('present.')) past[name.replace('present.', 'past_key_values.')] = t;
const step = await run(fx.step_ids, past, fx.prefill_ids.length);
const result = {
  model: modelDir,
  prefill_max_abs_diff: maxDiff(pre.logits!.data as Float32Array, fx.prefill_logits),
  with_past_max_abs_diff: maxDiff(step.logits!.data as Float32Array, fx.step_logits),
};
console.log(JSON.stringify(result));
if (!(result.prefill_max_abs_diff < 1e-3 && result.with_past_max_abs_diff < 1e-3)) process.exit(1);
