import type { Calibration } from '../ipc/messages.ts';
import type { DecoderModel } from '../model/decoder.ts';

const CONTEXT = 64;

/**
 * Pass costs measured right after loading (which also warms ONNX Runtime up), so the first choice of k is an
 * informed one: the target at 1 row × 1..maxK+1 tokens and at batches of 4, 8 and 16 rows verifying up to 4
 * proposals, the draft at 1, 4, 8 and 16 rows, all on a 64-token context. The core keeps refining these tables from every pass it runs.
 */
export async function calibrate(target: DecoderModel, draft: DecoderModel | null, maxK: number): Promise<Calibration> {
  const targetMs: number[] = [];
  for (let T = 1; T <= maxK + 1; T++) targetMs[T] = await timePass(target, 1, T, 5);
  // The shapes a loaded batch runs: 16 rows verifying k = 0…4 proposals each, and smaller batches.
  for (const [rows, T] of [
    [4, 1],
    [4, 3],
    [8, 1],
    [8, 3],
    [16, 1],
    [16, 2],
    [16, 3],
    [16, 5],
  ] as const) {
    if (rows * T > maxK + 1 && rows * T <= 16 * (maxK + 1)) targetMs[rows * T] = await timePass(target, rows, T, 3);
  }
  const draftMs: number[] = [];
  if (draft) for (const rows of [1, 4, 8, 16]) draftMs[rows] = await timePass(draft, rows, 1, 5);
  return { targetMs: [...targetMs].map((v) => v ?? 0), draftMs: [...draftMs].map((v) => v ?? 0) };
}

/** Median time of `reps` passes of `rows` × `T` tokens on top of a 64-token context, rolled back after each. */
async function timePass(m: DecoderModel, rows: number, T: number, reps: number): Promise<number> {
  const kv = m.newBatch();
  kv.addEmpty(rows);
  const ids = (n: number, from: number) => Array.from({ length: rows }, () => Array.from({ length: n }, (_, i) => from + i));
  await m.forwardBatch(kv, ids(CONTEXT, 5), 1);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await m.forwardBatch(kv, ids(T, 7), 0);
    times.push(performance.now() - t0);
    for (let row = 0; row < rows; row++) kv.truncate(row, CONTEXT);
  }
  return times.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
}
