/**
 * Fake batched models for the core's tests: logits depend on the whole sequence a row has cached, so a wrong
 * rollback, a row mix-up in a batch or an off-by-one in the cache invariant changes every later token.
 */
import type { BatchCache, BatchModel } from '../../../src/engine/core/batch.ts';

export const V = 40;

export class SeqBatch implements BatchCache {
  seqs: number[][] = [];
  vacant: boolean[] = [];
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
    for (let i = 0; i < n; i++) {
      this.seqs.push([]);
      this.vacant.push(false);
    }
  }
  /**
   * Like the pooled KvBatch: a row no longer than the batch's longest takes a vacant row, any other goes to the end
   * (the vacant rows staying vacant), so the lanes' row bookkeeping meets both.
   */
  append(other: this) {
    const at: number[] = [];
    const longest = Math.max(0, ...this.seqs.map((s) => s.length));
    for (const seq of other.seqs) {
      const free = seq!.length <= longest ? this.vacant.findIndex((v) => v) : -1;
      if (free >= 0) {
        this.seqs[free] = seq!;
        this.vacant[free] = false;
        at.push(free);
      } else {
        at.push(this.seqs.length);
        this.seqs.push(seq!);
        this.vacant.push(false);
      }
    }
    other.seqs = [];
    other.vacant = [];
    return at;
  }
  /** Leaves dropped rows vacant while at most half the batch is; then packs. */
  remove(rows: readonly number[]) {
    const gone = new Set(rows);
    for (const r of gone) {
      this.seqs[r] = [];
      this.vacant[r] = true;
    }
    const empty = this.vacant.filter(Boolean).length;
    if (2 * empty <= this.seqs.length) return this.seqs.map((_, r) => (gone.has(r) ? -1 : r));
    return this.pack();
  }
  private vacantRowPasses = 0;
  /** As the pooled KvBatch: packs once vacant rows have ridden along in as many row-passes as the batch has rows. */
  packVacancies() {
    const empty = this.vacant.filter(Boolean).length;
    this.vacantRowPasses = empty > 0 ? this.vacantRowPasses + empty : 0;
    if (empty === 0 || this.vacantRowPasses < this.seqs.length) return null;
    this.vacantRowPasses = 0;
    return this.pack();
  }
  /** Drops the vacant rows; returns old row → new (−1: dropped). */
  private pack(): number[] {
    const map: number[] = [];
    let j = 0;
    this.vacant.forEach((v) => map.push(v ? -1 : j++));
    this.seqs = this.seqs.filter((_, r) => !this.vacant[r]);
    this.vacant = this.seqs.map(() => false);
    return map;
  }
  split(rows: readonly number[]): [this, number[]] {
    const out = new SeqBatch() as this;
    out.seqs = rows.map((r) => [...this.seqs[r]!]);
    out.vacant = rows.map(() => false);
    return [out, this.remove(rows)];
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
