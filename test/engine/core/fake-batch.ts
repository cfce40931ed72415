/**
 * Fake batched models for the core's tests: logits depend on the whole sequence a row has cached, so a wrong
 * rollback, a row mix-up in a batch or an off-by-one in the cache invariant changes every later token.
 */
import type { BatchCache, BatchModel } from '../../../src/engine/core/batch.ts';

export const V = 40;

export class SeqBatch implements BatchCache {
  seqs: number[][] = [];
  get rows() {
    return this.seqs.length;
  }
  length(row: number) {
    return this.seqs[row]!.length;
  }
  truncate(row: number, n: number) {
    this.seqs[row]!.length = Math.min(this.seqs[row]!.length, n);
  }
  addEmpty(n: number) {
    for (let i = 0; i < n; i++) this.seqs.push([]);
  }
  append(other: this) {
    this.seqs.push(...other.seqs);
    other.seqs = [];
  }
  remove(rows: readonly number[]) {
    const gone = new Set(rows);
    this.seqs = this.seqs.filter((_, r) => !gone.has(r));
  }
  split(rows: readonly number[]): this {
    const out = new SeqBatch() as this;
    out.seqs = rows.map((r) => this.seqs[r]!);
    this.remove(rows);
    return out;
  }
}

function hash(xs: readonly number[], salt: number): number {
  let h = 2166136261 ^ salt;
  for (const x of xs) h = Math.imul(h ^ x, 16777619);
  return h >>> 0;
}

/** Logits for the next token after a context; `noise` > 0 makes a draft that disagrees now and then. */
export function nextLogits(context: readonly number[], salt: number, noise: number, out: Float32Array, at: number): void {
  const h = hash(context, 0);
  const n = hash(context, salt);
  for (let v = 0; v < V; v++) {
    const base = ((Math.imul(h, v + 1) >>> 0) % 1000) / 100;
    const jitter = ((Math.imul(n, v + 7) >>> 0) % 1000) / 1000;
    out[at + v] = base + noise * jitter;
  }
}

export interface FakeBatchModel extends BatchModel<SeqBatch> {
  /** Rows in each pass, for asserting that streams really shared passes. */
  passes: number[];
}

export function fakeBatchModel(salt: number, noise: number, maxRows = Infinity): FakeBatchModel {
  return {
    vocab: V,
    maxRows,
    passes: [],
    newBatch: () => new SeqBatch(),
    async forwardBatch(cache, ids, keep) {
      if (ids.length !== cache.rows) throw new Error('one id list per row');
      this.passes.push(ids.filter((x) => x.length > 0).length);
      const T = Math.max(1, ...ids.map((x) => x.length));
      const K = keep > 0 ? Math.min(keep, T) : T;
      const logits = new Float32Array(cache.rows * K * V);
      ids.forEach((row, r) => {
        row.forEach((id, i) => {
          cache.seqs[r]!.push(id);
          const slot = T - row.length + i; // left-padded
          const k = slot - (T - K);
          if (k >= 0) nextLogits(cache.seqs[r]!, salt, noise, logits, (r * K + k) * V);
        });
      });
      return { logits, K };
    },
  };
}
