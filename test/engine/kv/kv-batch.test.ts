/**
 * KvBatch bookkeeping without a model: a fake pass writes, for every new slot, values that name the row's token,
 * so after rollbacks, joins, leaves and compaction each row's live slots must read back exactly its tokens, in
 * order, in every head, and the attention mask must say which slots those are. Both storage layouts: standard
 * (the pass returns the whole cache) and pooled (the pass returns its new slots, written in place).
 */
import { Tensor } from 'onnxruntime-node';
import { beforeEach, describe, expect, it } from 'vitest';
import { KvBatch } from '../../../src/engine/kv/kv-batch.ts';
import type { KvLayout } from '../../../src/engine/model/kv-cache.ts';

const H = 2,
  D = 3;
const standard: KvLayout = {
  names: ['past.0.key', 'past.0.value'],
  presentNames: ['present.0.key', 'present.0.value'],
  kvHeads: H,
  headDim: D,
  type: 'float32',
};
const pooled: KvLayout = { ...standard, pooled: true };
let layout = standard;

/** Where slot s of row r, head h lies in a fed past of `rows` × `S` slots. */
function at(r: number, h: number, s: number, rows: number, S: number): number {
  return (layout.pooled ? (s * rows + r) * H + h : (r * H + h) * S + s) * D;
}

/** A pass appending ids[r] (left-padded) to every row, the way ONNX Runtime's concat would. */
function pass(kv: KvBatch, ids: number[][]): void {
  const T = Math.max(1, ...ids.map((x) => x.length));
  const live = new Uint8Array(kv.rows * T);
  ids.forEach((row, r) => row.forEach((_, i) => (live[r * T + T - row.length + i] = 1)));
  const feeds: Record<string, Tensor> = {};
  kv.feeds(feeds, T, live);
  const S = kv.slots;
  const am = feeds['attention_mask']!;
  expect(am.dims).toEqual([kv.rows, S + T]);
  const out: Record<string, Tensor> = {};
  const value = (r: number, h: number, li: number, t: number) => {
    const i = t - (T - ids[r]!.length);
    return i >= 0 ? ids[r]![i]! * 100 + h * 10 + li : -1;
  };
  layout.names.forEach((name, li) => {
    const past = feeds[name]!.data as Float32Array;
    if (layout.pooled) {
      // Only the new slots come back, slot-major; the past was fed as the buffer's prefix.
      expect(feeds[name]!.dims).toEqual([S, kv.rows, H, D]);
      const data = new Float32Array(T * kv.rows * H * D);
      for (let t = 0; t < T; t++)
        for (let r = 0; r < kv.rows; r++)
          for (let h = 0; h < H; h++) data.fill(value(r, h, li, t), ((t * kv.rows + r) * H + h) * D, ((t * kv.rows + r) * H + h + 1) * D);
      out[layout.presentNames[li]!] = new Tensor('float32', data, [T, kv.rows, H, D]);
      return;
    }
    const data = new Float32Array(kv.rows * H * (S + T) * D);
    for (let r = 0; r < kv.rows; r++)
      for (let h = 0; h < H; h++) {
        data.set(past.subarray((r * H + h) * S * D, (r * H + h + 1) * S * D), (r * H + h) * (S + T) * D);
        for (let t = 0; t < T; t++)
          data.fill(value(r, h, li, t), ((r * H + h) * (S + T) + S + t) * D, ((r * H + h) * (S + T) + S + t + 1) * D);
      }
    out[layout.presentNames[li]!] = new Tensor('float32', data, [kv.rows, H, S + T, D]);
  });
  kv.adopt(out, T, live);
}

/** Each row's tokens read back from its live slots (checked across heads, layers and the D values). */
function readBack(kv: KvBatch): number[][] {
  const feeds: Record<string, Tensor> = {};
  kv.feeds(feeds, 0, new Uint8Array(0));
  const S = kv.slots;
  return Array.from({ length: kv.rows }, (_, r) => {
    const tokens: number[] = [];
    for (let s = 0; s < S; s++) {
      if (!kv.mask[r * S + s]) continue;
      expect(feeds['attention_mask']!.data[r * S + s]).toBe(1n);
      const v = (feeds['past.0.key']!.data as Float32Array)[at(r, 0, s, kv.rows, S)]!;
      for (let h = 0; h < H; h++)
        layout.names.forEach((name, li) => {
          const o = at(r, h, s, kv.rows, S);
          expect(Array.from((feeds[name]!.data as Float32Array).subarray(o, o + D))).toEqual(
            new Array(D).fill(v - (v % 100) + h * 10 + li),
          );
        });
      tokens.push(Math.floor(v / 100));
    }
    expect(tokens.length).toBe(kv.length(r));
    return tokens;
  });
}

describe.each([
  ['standard', standard],
  ['pooled', pooled],
])('KvBatch, %s layout', (_, which) => {
  beforeEach(() => {
    layout = which;
  });

  it('rows of different lengths share passes; rollback masks, compaction packs, each row keeps its tokens', () => {
    const kv = new KvBatch(layout);
    kv.addEmpty(3);
    pass(kv, [[1, 2, 3], [4], [5, 6]]);
    pass(kv, [[7, 8], [9, 10, 11], []]);
    expect(readBack(kv)).toEqual([
      [1, 2, 3, 7, 8],
      [4, 9, 10, 11],
      [5, 6],
    ]);
    kv.truncate(0, 3);
    kv.truncate(1, 2);
    expect(readBack(kv)).toEqual([
      [1, 2, 3],
      [4, 9],
      [5, 6],
    ]);
    pass(kv, [[12], [13], [14]]);
    expect(readBack(kv)).toEqual([
      [1, 2, 3, 12],
      [4, 9, 13],
      [5, 6, 14],
    ]);
    for (let i = 0; i < 40; i++) {
      pass(kv, [[20, 21, 22], [23], [24, 25]]);
      kv.truncate(0, kv.length(0) - 2);
      kv.truncate(2, kv.length(2) - 1);
    }
    kv.compactIfSparse();
    expect(kv.slots).toBe(Math.max(...kv.lens)); // packed
    const rows = readBack(kv);
    expect(rows[0]).toEqual([1, 2, 3, 12, ...new Array(40).fill(20)]);
    expect(rows[1]).toEqual([4, 9, 13, ...new Array(40).fill(23)]);
    expect(rows[2]).toEqual([5, 6, 14, ...new Array(40).fill(24)]);
  });

  it('rows leave, are lifted out and join another batch intact', () => {
    const a = new KvBatch(layout);
    a.addEmpty(4);
    pass(a, [[1], [2, 3], [4, 5, 6], [7]]);
    a.truncate(2, 2);
    const b = new KvBatch(layout);
    b.addEmpty(1);
    pass(b, [[8, 9, 10, 11, 12]]);
    const [lifted, map] = a.split([2, 0]);
    expect(readBack(lifted)).toEqual([[4, 5], [1]]);
    expect(readBack(a)).toEqual([[2, 3], [7]]); // half the rows gone: packed in either layout
    expect(map).toEqual([-1, 0, -1, 1]);
    expect(b.append(lifted)).toEqual([1, 2]);
    expect(lifted.rows).toBe(0);
    expect(readBack(b)).toEqual([[8, 9, 10, 11, 12], [4, 5], [1]]);
    expect(b.remove([0])).toEqual([-1, 0, 1]);
    expect(readBack(b)).toEqual([[4, 5], [1]]);
    pass(b, [[13], [14, 15]]);
    expect(readBack(b)).toEqual([
      [4, 5, 13],
      [1, 14, 15],
    ]);
  });

  it('for a graph without position_ids, a rollback packs the row at once (no holes for it to count)', () => {
    const kv = new KvBatch(layout, false);
    kv.addEmpty(1);
    pass(kv, [[1, 2, 3, 4, 5]]);
    kv.truncate(0, 3);
    expect(kv.slots).toBe(3);
    expect(Array.from(kv.mask)).toEqual([1, 1, 1]);
    pass(kv, [[6]]);
    expect(readBack(kv)).toEqual([[1, 2, 3, 6]]);
  });
});

describe('KvBatch, pooled layout, in place', () => {
  it('a row that leaves stays vacant, with no copy, and the next newcomer that fits takes it', () => {
    layout = pooled;
    const kv = new KvBatch(pooled);
    kv.addEmpty(5);
    pass(kv, [[1, 2], [3], [4, 5, 6], [7], [8]]);
    const before: Record<string, Tensor> = {};
    kv.feeds(before, 0, new Uint8Array(0));
    expect(kv.remove([1])).toEqual([0, -1, 2, 3, 4]);
    expect(kv.rows).toBe(5);
    const after: Record<string, Tensor> = {};
    kv.feeds(after, 0, new Uint8Array(0));
    expect((after['past.0.key']!.data as Float32Array).buffer).toBe((before['past.0.key']!.data as Float32Array).buffer);
    expect(readBack(kv)).toEqual([[1, 2], [], [4, 5, 6], [7], [8]]);
    // A vacant row rides along as padding.
    pass(kv, [[9], [], [10], [11], [12]]);
    expect(readBack(kv)).toEqual([[1, 2, 9], [], [4, 5, 6, 10], [7, 11], [8, 12]]);
    // A newcomer with no more slots than the batch goes into the vacant row; only its slots are written.
    const newcomer = new KvBatch(pooled);
    newcomer.addEmpty(1);
    pass(newcomer, [[20, 21]]);
    expect(kv.append(newcomer)).toEqual([1]);
    expect(kv.rows).toBe(5);
    expect(readBack(kv)).toEqual([
      [1, 2, 9],
      [20, 21],
      [4, 5, 6, 10],
      [7, 11],
      [8, 12],
    ]);
    pass(kv, [[13], [22], [], [], []]);
    expect(readBack(kv)).toEqual([
      [1, 2, 9, 13],
      [20, 21, 22],
      [4, 5, 6, 10],
      [7, 11],
      [8, 12],
    ]);
    // One longer than the batch goes to the end (a regroup), even with a row vacant: every row keeps its index.
    expect(kv.remove([3])).toEqual([0, 1, 2, -1, 4]);
    const long = new KvBatch(pooled);
    long.addEmpty(1);
    pass(long, [[30, 31, 32, 33, 34, 35, 36]]);
    expect(kv.append(long)).toEqual([5]);
    expect(readBack(kv)).toEqual([[1, 2, 9, 13], [20, 21, 22], [4, 5, 6, 10], [], [8, 12], [30, 31, 32, 33, 34, 35, 36]]);
    // Past a quarter of the rows vacant, the live rows are packed.
    expect(kv.remove([0])).toEqual([-1, 0, 1, -1, 2, 3]);
    expect(readBack(kv)).toEqual([
      [20, 21, 22],
      [4, 5, 6, 10],
      [8, 12],
      [30, 31, 32, 33, 34, 35, 36],
    ]);
    expect(kv.remove([1])).toEqual([0, -1, 2, 3]);
    expect(kv.remove([0, 2, 3])).toEqual([-1, -1, -1, -1]);
    expect(kv.rows).toBe(0);
    // A vacancy nobody takes is packed away once it has ridden along in as many passes as the batch has rows.
    kv.addEmpty(4);
    pass(kv, [[1], [2], [3], [4]]);
    expect(kv.remove([2])).toEqual([0, 1, -1, 3]);
    for (let i = 0; i < 3; i++) {
      expect(kv.packVacancies()).toBeNull();
      pass(kv, [[5], [6], [], [7]]);
    }
    expect(kv.packVacancies()).toEqual([0, 1, -1, 2]);
    expect(readBack(kv)).toEqual([
      [1, 5, 5, 5],
      [2, 6, 6, 6],
      [4, 7, 7, 7],
    ]);
    expect(kv.packVacancies()).toBeNull();
    expect(kv.remove([0, 1, 2])).toEqual([-1, -1, -1]);
    expect(kv.rows).toBe(0);
  });

  it('feeds the first slots of one buffer without copying it, and grows it by doubling', () => {
    layout = pooled;
    const kv = new KvBatch(pooled);
    kv.addEmpty(2);
    pass(kv, [[1], [2]]);
    const first: Record<string, Tensor> = {};
    kv.feeds(first, 1, new Uint8Array(2));
    pass(kv, [[3], [4]]);
    const second: Record<string, Tensor> = {};
    kv.feeds(second, 1, new Uint8Array(2));
    // The same buffer both times: the pass wrote its slots after the prefix instead of returning a new cache.
    expect((second['past.0.key']!.data as Float32Array).buffer).toBe((first['past.0.key']!.data as Float32Array).buffer);
    for (let i = 0; i < 100; i++) pass(kv, [[5], [6]]);
    expect(kv.slots).toBe(102);
    expect(readBack(kv)).toEqual([
      [1, 3, ...new Array(100).fill(5)],
      [2, 4, ...new Array(100).fill(6)],
    ]);
  });
});
