import type { Calibration } from '../ipc/messages.ts';
import type { DecoderModel } from '../model/decoder.ts';

const CONTEXT = 64;

/**
 * Pass costs measured right after loading (which also warms ONNX Runtime up), so the first choice of k is an
 * informed one: the target at 1 row × 1..maxK+1 tokens and at the batch sizes up to `maxRows` (4, 8, 16, 32 and
 * maxRows itself) with the few tokens per row a loaded batch verifies; the draft at the same row counts, one token.
 * All on a 64-token context; the core keeps the grids' level current from every pass it runs.
 */
export async function calibrate(target: DecoderModel, draft: DecoderModel | null, maxK: number, maxRows: number): Promise<Calibration> {
  const rowCounts = [...new Set([4, 8, 16, 32].filter((r) => r < maxRows).concat(maxRows > 1 ? [maxRows] : []))];
  const out: Calibration = { target: [], draft: [] };
  for (let T = 1; T <= maxK + 1; T++) out.target.push([1, T, await timePass(target, 1, T, 5)]);
  for (const rows of rowCounts) {
    // Bigger batches only ever verify a few proposals per row (the goodput rule), so a few token counts do.
    for (const T of [1, 2, 3, 5].filter((t) => t <= maxK + 1)) out.target.push([rows, T, await timePass(target, rows, T, 3)]);
  }
  if (draft) for (const rows of [1, ...rowCounts]) out.draft.push([rows, 1, await timePass(draft, rows, 1, 5)]);
  return out;
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
