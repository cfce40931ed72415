import { Tensor } from 'onnxruntime-node';
import type { KvLayout } from '../model/kv-cache.ts';

type KvData = Float32Array | Uint16Array;

/**
 * The past keys/values of several streams as one batch: one tensor per `past_key_values.*` input, each
 * [rows, kvHeads, slots, headDim], plus a 0/1 mask over [rows, slots] that says which slots hold a row's tokens.
 *
 * Every forward pass appends the same number of slots to every row (the longest row's new tokens; shorter rows are
 * left-padded with masked slots). Rollback of rejected drafts only clears mask bits: the bundled export's attention
 * is causal by slot index and masks by attention_mask, and positions come from position_ids, so a masked slot is a
 * hole nobody sees. Holes cost attention work, so once they are a large share of the slots the batch is rebuilt with
 * every row's live slots packed to the right. That copy is O(rows × slots), the same order as the concatenation
 * ONNX Runtime does inside every pass, and it happens far less often than passes. Rows joining or leaving regroup the
 * batch the same way, except in the pooled layout, where a leaving row turns vacant and a newcomer takes a vacant
 * row (see remove and append): there, streams coming and going one at a time (speculative streams finish unevenly)
 * would otherwise copy the whole cache for each (an ad-hoc CPU profile at 16 streams put ~10 % of the worker there).
 *
 * Rows are independent: a row can be lifted out whole (split) and put into another batch (append), which is how a
 * prefilled prompt joins the decoding batch, and how a cached prefix could be shared later.
 *
 * Two storage layouts, as the graph declares (KvLayout.pooled):
 * - standard (every Hugging Face export): the tensors are [rows, kvHeads, slots, headDim], and each pass returns the
 *   whole cache again as `present.*`, which the batch adopts;
 * - pooled (the bundled models' model_pooled.onnx, see scripts/models/fused_graph.py): one buffer per input,
 *   slot-major [capacity, rows, kvHeads, headDim]. A pass is fed the first `slots` slots as they lie and returns
 *   only its new slots, which are written after them; capacity doubles when it runs out.
 */
export class KvBatch {
  rows = 0;
  slots = 0;
  /** Live slots per row: the row's cache length and the position id of its next token. */
  lens: number[] = [];
  mask = new Uint8Array(0);
  /** Per input: the tensor's data (standard) or the slot-major buffer (pooled). */
  private data: KvData[];
  /** Slots the pooled buffers hold (standard: always `slots`). */
  private capacity = 0;
  /** Pooled: rows whose stream left, kept as empty padding rows until a newcomer takes one (see remove). */
  private vacant: boolean[] = [];
  /** Vacant rows summed over the passes since the batch last had none (see packVacancies). */
  private vacantRowPasses = 0;
  private readonly pooled: boolean;

  /**
   * `holes`: whether masked slots may stay inside a row. A graph that derives positions from the past length
   * (no position_ids input) would count them, so for it a rollback packs the row at once (a copy).
   */
  constructor(
    private readonly layout: KvLayout,
    private readonly holes = true,
  ) {
    this.pooled = layout.pooled === true;
    this.data = layout.names.map(() => alloc(layout, 0));
  }

  length(row: number): number {
    return this.lens[row]!;
  }

  /** Feeds for a pass that appends `T` slots; `newLive[r * T + t]` says whether row r's new slot t holds a token. */
  feeds(into: Record<string, Tensor>, T: number, newLive: Uint8Array): void {
    const { rows, slots } = this;
    const am = new BigInt64Array(rows * (slots + T));
    for (let r = 0; r < rows; r++) {
      const o = r * (slots + T);
      for (let s = 0; s < slots; s++) am[o + s] = this.mask[r * slots + s] ? 1n : 0n;
      for (let t = 0; t < T; t++) am[o + slots + t] = newLive[r * T + t] ? 1n : 0n;
    }
    into['attention_mask'] = new Tensor('int64', am, [rows, slots + T]);
    const { kvHeads: H, headDim: D } = this.layout;
    this.layout.names.forEach((name, i) => {
      into[name] = this.pooled
        ? new Tensor(this.layout.type, this.data[i]!.subarray(0, slots * rows * H * D), [slots, rows, H, D])
        : kvTensor(this.layout, this.data[i]!, rows, slots);
    });
  }

  /** Takes the pass's `present.*` outputs: the whole new past (standard), or the T new slots to write (pooled). */
  adopt(outputs: Record<string, Tensor>, T: number, newLive: Uint8Array): void {
    const S = this.slots + T;
    if (this.pooled) this.reserve(S);
    const { kvHeads: H, headDim: D } = this.layout;
    this.layout.presentNames.forEach((name, i) => {
      const t = outputs[name];
      if (!t) throw new Error(`model output ${name} missing`);
      if (this.pooled) this.data[i]!.set(t.data as KvData, this.slots * this.rows * H * D);
      else this.data[i] = t.data as KvData;
    });
    if (!this.pooled) this.capacity = S;
    const mask = new Uint8Array(this.rows * S);
    for (let r = 0; r < this.rows; r++) {
      mask.set(this.mask.subarray(r * this.slots, (r + 1) * this.slots), r * S);
      let added = 0;
      for (let t = 0; t < T; t++) {
        mask[r * S + this.slots + t] = newLive[r * T + t]!;
        added += newLive[r * T + t]!;
      }
      this.lens[r]! += added;
    }
    this.mask = mask;
    this.slots = S;
  }

  /** Keeps row's first n tokens: the slots after them are masked out (no copy). */
  truncate(row: number, n: number): void {
    let drop = this.lens[row]! - n;
    const packNow = !this.holes && drop > 0;
    for (let s = this.slots - 1; s >= 0 && drop > 0; s--) {
      if (this.mask[row * this.slots + s]) {
        this.mask[row * this.slots + s] = 0;
        drop--;
      }
    }
    this.lens[row] = Math.min(this.lens[row]!, n);
    if (packNow) this.rebuild(this.rowRefs());
  }

  /** Appends `n` empty rows (a stream whose prompt is about to be prefilled). */
  addEmpty(n: number): void {
    const empty = new KvBatch(this.layout, this.holes);
    empty.rebuild(Array.from({ length: n }, () => ({ from: empty, row: 0, len: 0 })));
    this.append(empty);
  }

  /**
   * Moves `other`'s rows into this batch (other is left empty) and returns the row each of them now is, in order.
   * Pooled: a row fits into a vacant row when this batch has at least as many slots as `other`, and is then the
   * only thing copied (its slots, aligned to the end); otherwise, and in the standard layout, the rows go to the end
   * and the batch is regrouped.
   */
  append(other: KvBatch): number[] {
    if (other.rows === 0) return [];
    if (this.rows === 0) {
      this.take(other);
      return this.rowsRange(0);
    }
    const free = this.pooled && other.slots <= this.slots ? this.vacancies() : [];
    if (free.length >= other.rows) {
      const at = free.slice(0, other.rows);
      at.forEach((r, j) => this.place(r, other, j));
      other.clear();
      return at;
    }
    // Every row keeps its index (vacant ones too, still vacant): callers hold rows by index.
    const first = this.rows;
    this.regroup([...this.rowRefs(), ...other.rowRefs()]);
    other.clear();
    return this.rowsRange(first);
  }

  /**
   * Drops the given rows and returns, for every row before, its index after (−1: dropped). Pooled: the rows become
   * vacant (no copy: a regroup moves every row's every slot, the whole cache, for each stream that leaves), until
   * more than a quarter of the batch is vacant, when the live rows are regrouped without them. Standard: regrouped.
   */
  remove(rows: readonly number[]): number[] {
    const gone = new Set(rows);
    if (gone.size === 0) return this.rowsRange(0);
    if (this.pooled) {
      for (const r of gone) {
        this.lens[r] = 0;
        this.mask.fill(0, r * this.slots, (r + 1) * this.slots);
        this.vacant[r] = true;
      }
      const empty = this.vacancies().length;
      if (empty === this.rows) {
        const n = this.rows;
        this.clear();
        return new Array<number>(n).fill(-1);
      }
      if (4 * empty <= this.rows) return Array.from({ length: this.rows }, (_, r) => (gone.has(r) ? -1 : r));
    }
    return this.packLive(gone);
  }

  /** Lifts the given rows out into a new batch (in that order); returns it and what remove() returned for the rest. */
  split(rows: readonly number[]): [out: KvBatch, map: number[]] {
    const out = new KvBatch(this.layout, this.holes);
    const refs = this.rowRefs();
    out.regroup(rows.map((r) => refs[r]!));
    return [out, this.remove(rows)];
  }

  /** Packs the live slots when holes are a large share of them (rollbacks and left padding leave holes). */
  compactIfSparse(): void {
    const longest = Math.max(0, ...this.lens);
    if (this.slots > 64 && this.slots > 1.5 * longest) this.rebuild(this.rowRefs());
  }

  /**
   * Called before each pass. A vacant row is computed in every pass as padding: once the passes vacant rows have
   * ridden along in add up to the batch's row count (one vacancy in 16 rows: 16 passes), packing the live rows (one
   * regroup) is the cheaper way on. Returns what remove() would (old row → new, −1 gone) when it packed, else null.
   */
  packVacancies(): number[] | null {
    const empty = this.pooled ? this.vacancies().length : 0;
    this.vacantRowPasses = empty > 0 ? this.vacantRowPasses + empty : 0;
    if (empty === 0 || this.vacantRowPasses < this.rows) return null;
    this.vacantRowPasses = 0;
    return this.packLive();
  }

  private rowRefs(): RowRef[] {
    return this.lens.map((len, r) => ({ from: this, row: r, len }));
  }

  /** Regroups the rows that are neither vacant nor in `gone`; returns old row → new (−1: dropped). */
  private packLive(gone: ReadonlySet<number> = new Set()): number[] {
    const map = new Array<number>(this.rows).fill(-1);
    const keep = this.rowRefs().filter((ref) => !gone.has(ref.row) && !this.vacant[ref.row]);
    keep.forEach((ref, j) => (map[ref.row] = j));
    this.regroup(keep);
    return map;
  }

  private vacancies(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.rows; r++) if (this.vacant[r]) out.push(r);
    return out;
  }

  private rowsRange(from: number): number[] {
    return Array.from({ length: this.rows - from }, (_, j) => from + j);
  }

  /**
   * Pooled: row j of `src` (src.slots ≤ this.slots) into vacant row r, its slots aligned to the end; the row's earlier
   * slots, the departed stream's, are zeroed (masked either way, but the graph must never meet stale values).
   */
  private place(r: number, src: KvBatch, j: number): void {
    const n = this.layout.kvHeads * this.layout.headDim;
    const shift = this.slots - src.slots;
    this.data.forEach((dst, i) => {
      const from = src.data[i]!;
      for (let s = 0; s < this.slots; s++) {
        const at = (s * this.rows + r) * n;
        if (s < shift) dst.fill(0, at, at + n);
        else {
          const sat = ((s - shift) * src.rows + j) * n;
          dst.set(from.subarray(sat, sat + n), at);
        }
      }
    });
    this.mask.fill(0, r * this.slots, r * this.slots + shift);
    this.mask.set(src.mask.subarray(j * src.slots, (j + 1) * src.slots), r * this.slots + shift);
    this.lens[r] = src.lens[j]!;
    this.vacant[r] = false;
  }

  private clear(): void {
    this.rows = 0;
    this.slots = 0;
    this.capacity = 0;
    this.lens = [];
    this.mask = new Uint8Array(0);
    this.vacant = [];
    this.data = this.layout.names.map(() => alloc(this.layout, 0));
  }

  private take(other: KvBatch): void {
    this.rows = other.rows;
    this.slots = other.slots;
    this.capacity = other.capacity;
    this.lens = other.lens;
    this.mask = other.mask;
    this.vacant = other.vacant;
    this.data = other.data;
    other.clear();
  }

  /** Pooled: room for `S` slots, doubling (the slots in use are one contiguous prefix, so growing is one copy). */
  private reserve(S: number): void {
    if (S <= this.capacity) return;
    const cap = Math.max(S, 2 * this.capacity, 64);
    const n = this.rows * this.layout.kvHeads * this.layout.headDim;
    this.data = this.data.map((old) => {
      const next = alloc(this.layout, cap * n);
      next.set(old.subarray(0, this.slots * n));
      return next;
    });
    this.capacity = cap;
  }

  /** Makes `data` (with room for `capacity` slots) holding `refs`' rows over `slots` slots the batch's state. */
  private install(data: KvData[], capacity: number, refs: RowRef[], slots: number, mask: KvBatch['mask']): void {
    this.data = data;
    this.capacity = capacity;
    this.rows = refs.length;
    this.slots = slots;
    this.lens = refs.map((r) => r.len);
    this.mask = mask;
    this.vacant = refs.map((r) => r.from.vacant[r.row] === true);
  }

  /**
   * Membership changes (rows joining, leaving, lifted out). Standard layout: a packing rebuild. Pooled: rows keep
   * their slots, each source batch aligned to the end of the new one (its newest slots last), so a run of
   * consecutive rows from one source moves as one copy per slot (in slot-major storage those rows are adjacent)
   * instead of one per row and slot; the holes this leaves are packed later by compactIfSparse.
   */
  private regroup(refs: RowRef[]): void {
    if (!this.pooled) return this.rebuild(refs);
    const n = this.layout.kvHeads * this.layout.headDim;
    const S = Math.max(0, ...refs.map((r) => r.from.slots));
    const B = refs.length;
    const cap = Math.max(S + 16, 64);
    const mask = new Uint8Array(B * S);
    // Runs of refs that are consecutive rows of one source: [first ref index, length].
    const runs: [number, number][] = [];
    refs.forEach((ref, b) => {
      const last = runs.at(-1);
      const prev = last ? refs[last[0] + last[1] - 1]! : null;
      if (last && prev && prev.from === ref.from && prev.row + 1 === ref.row) last[1]++;
      else runs.push([b, 1]);
    });
    const next = this.layout.names.map((_, i) => {
      const dst = alloc(this.layout, cap * B * n);
      for (const [b0, len] of runs) {
        const { from, row } = refs[b0]!;
        const src = from.data[i]!;
        const shift = S - from.slots;
        for (let s = 0; s < from.slots; s++) {
          const at = (s * from.rows + row) * n;
          dst.set(src.subarray(at, at + len * n), ((s + shift) * B + b0) * n);
        }
      }
      return dst;
    });
    for (const [b0, len] of runs) {
      const { from, row } = refs[b0]!;
      const shift = S - from.slots;
      for (let r = 0; r < len; r++) mask.set(from.mask.subarray((row + r) * from.slots, (row + r + 1) * from.slots), (b0 + r) * S + shift);
    }
    this.install(next, cap, refs, S, mask);
  }

  /**
   * New buffers holding `refs`' rows, each row's live slots packed to the right of `slots` = the longest row,
   * copied in runs of consecutive live slots.
   */
  private rebuild(refs: RowRef[]): void {
    const { kvHeads: H, headDim: D } = this.layout;
    const S = Math.max(0, ...refs.map((r) => r.len));
    const B = refs.length;
    const mask = new Uint8Array(B * S);
    const runs = refs.map((ref) => liveRuns(ref.from, ref.row));
    const cap = this.pooled ? Math.max(S + 16, 64) : S;
    const next = this.layout.names.map((_, i) => {
      const dst = alloc(this.layout, B * H * cap * D);
      refs.forEach((ref, b) => {
        const src = ref.from.data[i]!;
        const srcS = ref.from.slots,
          srcB = ref.from.rows;
        let at = S - ref.len; // packed to the right: earlier slots of a shorter row are holes
        for (const [start, n] of runs[b]!) {
          if (this.pooled) {
            // Slot-major: a slot's heads are one run of H × D, and consecutive slots of a row are B rows apart.
            for (let s = 0; s < n; s++) {
              const from = ((start + s) * srcB + ref.row) * H * D;
              dst.set(src.subarray(from, from + H * D), ((at + s) * B + b) * H * D);
            }
          } else {
            for (let h = 0; h < H; h++) {
              const s0 = ((ref.row * H + h) * srcS + start) * D;
              dst.set(src.subarray(s0, s0 + n * D), ((b * H + h) * S + at) * D);
            }
          }
          at += n;
        }
      });
      return dst;
    });
    refs.forEach((ref, b) => mask.fill(1, b * S + S - ref.len, (b + 1) * S));
    this.install(next, cap, refs, S, mask);
  }
}

interface RowRef {
  from: KvBatch;
  row: number;
  len: number;
}

/** [start slot, count] of each run of live slots in a row. */
function liveRuns(b: KvBatch, row: number): [number, number][] {
  const runs: [number, number][] = [];
  const m = b.mask.subarray(row * b.slots, (row + 1) * b.slots);
  for (let s = 0; s < m.length;) {
    if (!m[s]) {
      s++;
      continue;
    }
    const start = s;
    while (s < m.length && m[s]) s++;
    runs.push([start, s - start]);
  }
  return runs;
}

function alloc(layout: KvLayout, n: number): KvData {
  return layout.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
}

function kvTensor(layout: KvLayout, data: KvData, rows: number, slots: number): Tensor {
  return new Tensor(layout.type, data, [rows, layout.kvHeads, slots, layout.headDim]);
}
