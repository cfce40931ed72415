import type { BatchCache, BatchModel } from './batch.ts';
import type { Sequence } from './sequence.ts';

/**
 * A batch cache and the streams whose rows it holds: `byRow[r]` is row r's stream, null for a vacant row (one whose
 * stream left and that the cache keeps, empty, for a newcomer instead of copying every other row's cache to drop it).
 * Membership changes may still copy the cache, so the core batches them: all of an iteration's leavers go in one drop.
 */
export class Lane<C extends BatchCache> {
  private rows: (Sequence | null)[] = [];
  /** The lane's streams, in row order. */
  seqs: readonly Sequence[] = [];
  readonly cache: C;

  constructor(readonly model: BatchModel<C>) {
    this.cache = model.newBatch();
  }

  /** Row r's stream (null: vacant), for every row of the cache. */
  get byRow(): readonly (Sequence | null)[] {
    return this.rows;
  }

  get size(): number {
    return this.seqs.length;
  }

  get full(): boolean {
    return this.seqs.length >= this.model.maxRows;
  }

  row(seq: Sequence): number {
    return this.rows.indexOf(seq);
  }

  addEmpty(seqs: readonly Sequence[]): void {
    if (seqs.length === 0) return;
    const empty = this.model.newBatch();
    empty.addEmpty(seqs.length);
    this.place(this.cache.append(empty), seqs);
  }

  /** Moves `seqs` (rows of `from`) into this lane with their caches. */
  adopt(from: Lane<C>, seqs: readonly Sequence[]): void {
    if (seqs.length === 0) return;
    const [out, map] = from.cache.split(seqs.map((s) => from.row(s)));
    from.remap(map);
    this.place(this.cache.append(out), seqs);
  }

  drop(seqs: readonly Sequence[]): void {
    const rows = seqs.map((s) => this.row(s)).filter((r) => r >= 0);
    if (rows.length === 0) return;
    this.remap(this.cache.remove(rows));
  }

  /** Rows moved (map[old] = new, −1 gone); rows the cache still has but nobody maps to are vacant. */
  private remap(map: readonly number[]): void {
    const next = new Array<Sequence | null>(this.cache.rows).fill(null);
    map.forEach((to, from) => {
      if (to >= 0) next[to] = this.rows[from] ?? null;
    });
    this.set(next);
  }

  private place(at: readonly number[], seqs: readonly Sequence[]): void {
    const next = [...this.rows, ...new Array<null>(Math.max(0, this.cache.rows - this.rows.length)).fill(null)];
    at.forEach((r, j) => (next[r] = seqs[j]!));
    this.set(next);
  }

  private set(rows: (Sequence | null)[]): void {
    if (rows.length !== this.cache.rows) throw new Error(`lane: ${rows.length} rows for a cache of ${this.cache.rows}`);
    this.rows = rows;
    this.seqs = rows.filter((s): s is Sequence => s !== null);
  }

  /** One pass: ids(seq) per row; rows with none, and vacant rows, ride along as padding. Null when nothing ran. */
  async run(
    ids: (s: Sequence) => readonly number[],
    keep: number,
  ): Promise<{ logits: Float32Array; K: number; feeds: (readonly number[])[]; ms: number; rows: number; T: number } | null> {
    const packed = this.cache.packVacancies?.();
    if (packed) this.remap(packed);
    const feeds = this.rows.map((s) => (s ? ids(s) : []));
    if (!feeds.some((f) => f.length > 0)) return null;
    const t0 = performance.now();
    const { logits, K } = await this.model.forwardBatch(this.cache, feeds, keep);
    const T = Math.max(...feeds.map((f) => f.length));
    return { logits, K, feeds, ms: performance.now() - t0, rows: feeds.length, T };
  }
}

/** Lanes for one model: one lane for a model that batches, one per stream for one that cannot. */
export class LaneSet<C extends BatchCache> {
  readonly lanes: Lane<C>[] = [];

  constructor(private readonly model: BatchModel<C>) {}

  get size(): number {
    return this.lanes.reduce((a, l) => a + l.size, 0);
  }

  /** The lane a newcomer goes into. */
  open(): Lane<C> {
    const free = this.lanes.find((l) => !l.full);
    if (free) return free;
    const lane = new Lane(this.model);
    this.lanes.push(lane);
    return lane;
  }

  laneOf(seq: Sequence): Lane<C> | undefined {
    return this.lanes.find((l) => l.row(seq) >= 0);
  }

  drop(seqs: readonly Sequence[]): void {
    for (const l of this.lanes) l.drop(seqs);
    for (let i = this.lanes.length - 1; i >= 0; i--) if (this.lanes[i]!.size === 0 && this.lanes.length > 1) this.lanes.splice(i, 1);
  }

  /** Moves a stream's row from a lane of another set into a lane of this one. */
  adopt(from: Lane<C>, seqs: readonly Sequence[]): void {
    const rest = [...seqs];
    while (rest.length > 0) {
      const lane = this.open();
      lane.adopt(from, rest.splice(0, lane.model.maxRows - lane.size));
    }
  }
}
