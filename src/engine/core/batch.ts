/**
 * What the engine core needs from a model and its KV cache, so the loop runs the same on the ONNX decoders and on
 * the fakes the tests use. A batch is a set of rows, one per stream, that share every forward pass.
 */
export interface BatchCache {
  readonly rows: number;
  length(row: number): number;
  /** Keep row's first n tokens. */
  truncate(row: number, n: number): void;
  addEmpty(n: number): void;
  /**
   * Moves other's rows into this batch; returns the row each now is, in order. A cache may put them into rows that
   * streams left (vacant rows) instead of at the end.
   */
  append(other: this): readonly number[];
  /**
   * Drops rows; returns, for each row before, its index after (−1: dropped). A cache may keep the others where they
   * are and leave the dropped ones vacant (empty rows that ride along in passes until a newcomer takes one).
   */
  remove(rows: readonly number[]): readonly number[];
  /** Before a pass: drops vacant rows if it is time to (returns what remove() would), else null. */
  packVacancies?(): readonly number[] | null;
  /** Lifts rows out into a new batch, in the order given; with it, what remove() returned for the rest. */
  split(rows: readonly number[]): [out: this, map: readonly number[]];
}

export interface BatchModel<C extends BatchCache = BatchCache> {
  readonly vocab: number;
  /** Rows one batch may hold (1 for an export that cannot take left padding and holes). */
  readonly maxRows: number;
  newBatch(): C;
  /**
   * Row r runs ids[r] (possibly none) on top of its cached tokens. Logits come back as [rows, K, vocab], K = keep
   * (or the longest row's new tokens when keep is 0), row r's last new token in position K − 1.
   */
  forwardBatch(cache: C, ids: readonly (readonly number[])[], keep: number): Promise<{ logits: Float32Array; K: number }>;
}

export interface BatchModels<C extends BatchCache = BatchCache> {
  target: BatchModel<C>;
  draft: BatchModel<C> | null;
}

/** Logits of row r's token i out of its t new tokens (left-padded into K positions). */
export function rowLogits(logits: Float32Array, V: number, K: number, r: number, i: number, t: number): Float32Array {
  const at = r * K + K - t + i;
  return logits.subarray(at * V, (at + 1) * V);
}
