import type { Calibration } from '../ipc/messages.ts';
import type { DecoderModel } from '../model/decoder.ts';

const CONTEXT = 64;

/**
 * Pass costs measured right after loading (which also warms ONNX Runtime up), so the first choice of k is an
 * informed one: the target at 1 row × 1..maxK+1 tokens and at the batch sizes up to `maxRows` (4, 8, 16, 32 and
 * maxRows itself) with the few tokens per row a loaded batch verifies; the draft at the same row counts, one token.
 * All on a 64-token context; the core keeps the grids' levels current from every pass it runs.
 */
export async function calibrate(target: DecoderModel, draft: DecoderModel | null, maxK: number, maxRows: number): Promise<Calibration> {
  const rowCounts = [...new Set([4, 8, 16, 32].filter((r) => r < maxRows).concat(maxRows > 1 ? [maxRows] : []))];
  const shapes: { m: DecoderModel; which: 'target' | 'draft'; rows: number; T: number }[] = [];
  for (let T = 1; T <= maxK + 1; T++) shapes.push({ m: target, which: 'target', rows: 1, T });
  // Bigger batches only ever verify a few proposals per row (the goodput rule), so a few token counts do.
  for (const rows of rowCounts)
    for (const T of [1, 2, 3, 5].filter((t) => t <= maxK + 1)) shapes.push({ m: target, which: 'target', rows, T });
  if (draft) for (const rows of [1, ...rowCounts]) shapes.push({ m: draft, which: 'draft', rows, T: 1 });
  // Round-robin over the shapes, REPS times, median per shape: a slow spell of a shared machine then falls on every
  // shape alike instead of on whichever was being timed (3 reps of one shape at a time had 16 × 2 cheaper than 16 × 1).
  // One cache per shape (its rollbacks leave holes: shared between shapes they would reach a compaction mid-timing),
  // prefilled one after the other rather than as concurrent runs of one session.
  const caches: Awaited<ReturnType<typeof prefilled>>[] = [];
  for (const s of shapes) caches.push(await prefilled(s.m, s.rows));
  const times = shapes.map(() => [] as number[]);
  for (let rep = 0; rep < REPS; rep++) {
    let last: DecoderModel | null = null;
    for (const [i, s] of shapes.entries()) {
      // The first pass of a model after the other's streams its weights back from memory: an untimed one first.
      if (s.m !== last) await timePass(s.m, caches[i]!, s.rows, s.T);
      last = s.m;
      times[i]!.push(await timePass(s.m, caches[i]!, s.rows, s.T));
    }
  }
  const out: Calibration = { target: [], draft: [] };
  shapes.forEach((s, i) => out[s.which].push([s.rows, s.T, median(times[i]!)]));
  return out;
}

const REPS = 5;

/** A batch of `rows` rows holding a 64-token context each. */
async function prefilled(m: DecoderModel, rows: number) {
  const kv = m.newBatch();
  kv.addEmpty(rows);
  await m.forwardBatch(kv, ids(rows, CONTEXT, 5), 1);
  return kv;
}

const ids = (rows: number, n: number, from: number) => Array.from({ length: rows }, () => Array.from({ length: n }, (_, i) => from + i));

/** One pass of `rows` × `T` tokens on top of the context, rolled back after. */
async function timePass(m: DecoderModel, kv: Awaited<ReturnType<typeof prefilled>>, rows: number, T: number): Promise<number> {
  const t0 = performance.now();
  await m.forwardBatch(kv, ids(rows, T, 7), 0);
  const ms = performance.now() - t0;
  for (let row = 0; row < rows; row++) kv.truncate(row, CONTEXT);
  return ms;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}
