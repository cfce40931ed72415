/**
 * Export parity: replays the fixture written by export.py through ONNX Runtime (the runtime specd serves with)
 * and compares logits with torch's, for a prefill with an empty past and a 3-token step on top of its cache.
 * Both graphs of the folder go through the engine's own DecoderModel (so the pooled graph is driven by the KV pool
 * that serves with it): the standard onnx/model.onnx must stay within 1e-3 of torch, the pooled
 * onnx/model_pooled.onnx (scripts/models/fused_graph.py) within 1e-4, or within 0.5 when its LM head is int8
 * (`fused_graph.py --int8-head`, the bundled draft's: that graph's fp32 form is checked at 1e-4 by models:build
 * before the head is quantized). Exits non-zero when either misses.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DecoderModel, POOLED_FILE } from '../../src/engine/model/decoder.ts';

interface Fixture {
  prefill_ids: number[];
  step_ids: number[];
  prefill_logits: number[];
  step_logits: number[];
}

const [dirArg, fixturePath] = process.argv.slice(2);
const modelDir = dirArg && resolve(dirArg);
if (!modelDir || !fixturePath) throw new Error('usage: parity.ts <model dir> <fixture.json>');
const fx = JSON.parse(readFileSync(fixturePath, 'utf8')) as Fixture;

function maxDiff(a: Float32Array, b: number[]): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

let ok = true;
// fused_graph.py records in the pooled graph's manifest whether it wrote the head in int8.
const manifest = join(modelDir ?? '', 'onnx', 'model_pooled.json');
const int8Head = existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { int8_head?: boolean }).int8_head === true;
const graphs = [
  { graph: 'standard' as const, bar: 1e-3 },
  ...(existsSync(join(modelDir, POOLED_FILE)) ? [{ graph: 'auto' as const, bar: int8Head ? 0.5 : 1e-4 }] : []),
];
for (const { graph, bar } of graphs) {
  const m = await DecoderModel.load(modelDir, { dtype: 'fp32', threads: 2, graph });
  const cache = m.newCache();
  const pre = await m.forward(cache, fx.prefill_ids, 0);
  const step = await m.forward(cache, fx.step_ids, 0);
  const result = {
    model: modelDir,
    file: m.info.file,
    prefill_max_abs_diff: maxDiff(pre, fx.prefill_logits),
    with_past_max_abs_diff: maxDiff(step, fx.step_logits),
    bar,
    ...(graph === 'auto' && int8Head ? { lm_head: 'int8' } : {}),
  };
  console.log(JSON.stringify(result));
  ok &&= result.prefill_max_abs_diff < bar && result.with_past_max_abs_diff < bar;
}
if (!ok) process.exit(1);
