/**
 * What the benchmarks that time ONNX graphs directly (no engine, no worker) share: sessions opened as the engine
 * opens them, feeds for a pass on top of a random past, and per-row argmax.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { RESULTS_DIR, ROOT } from './cli.ts';

/** As src/engine/model/decoder.ts opens sessions: pool threads sleep between parallel sections. */
export const sessionOptions = (threads: number): ort.InferenceSession.SessionOptions => ({
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' }, force_spinning_stop: '1' } },
});

interface Shape {
  layers: number;
  kvHeads: number;
  headDim: number;
}
function shapeOf(s: ort.InferenceSession): Shape {
  const meta = (s as unknown as { inputMetadata: { name: string; shape: (number | string)[] }[] }).inputMetadata;
  const past = meta.filter((m) => m.name.startsWith('past_key_values.'));
  return { layers: past.length / 2, kvHeads: Number(past[0]!.shape[1]), headDim: Number(past[0]!.shape[3]) };
}

/** Feeds for `ids` on top of a random past of `past` positions; `keep` logits rows (0: all). */
export function feeds(s: ort.InferenceSession, ids: readonly number[], past: number, keep: number): Record<string, ort.Tensor> {
  const { layers, kvHeads, headDim } = shapeOf(s);
  const T = ids.length;
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, T]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past + T).fill(1n), [1, past + T]),
    position_ids: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: T }, (_, i) => BigInt(past + i)),
      [1, T],
    ),
  };
  if (s.inputNames.includes('num_logits_to_keep')) f['num_logits_to_keep'] = new ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), []);
  for (let i = 0; i < layers; i++)
    for (const kv of ['key', 'value'])
      f[`past_key_values.${i}.${kv}`] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: kvHeads * past * headDim }, () => Math.random() * 0.1),
        [1, kvHeads, past, headDim],
      );
  return f;
}

/** Argmax of each of `rows` logits rows. */
export function argmaxRows(logits: Float32Array, rows: number): number[] {
  const V = logits.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[r * V + i]! > logits[r * V + best]!) best = i;
    return best;
  });
}

/** Mean negative log-likelihood (nats) of ids[1..] under the logits of ids[..-1]. */
export function meanNll(logits: Float32Array, ids: readonly number[]): number {
  const rows = ids.length;
  const V = logits.length / rows;
  let total = 0;
  for (let r = 0; r < rows - 1; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    let max = -Infinity;
    for (const x of row) if (x > max) max = x;
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    total += max + Math.log(sum) - row[ids[r + 1]!]!;
  }
  return total / (rows - 1);
}

/**
 * results/`name`: an int8 copy of the graph at `src` (scripts/models/quantize.py with `args`, run with Debian's
 * /usr/bin/python3 and python3-onnx), made on first use and kept.
 */
export function quantizedCopy(src: string, name: string, args: readonly string[] = []): string {
  const out = join(RESULTS_DIR, name);
  if (!existsSync(out)) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    execFileSync('/usr/bin/python3', [join(ROOT, 'scripts', 'models', 'quantize.py'), src, out, ...args], { stdio: 'inherit' });
  }
  return out;
}
