import type { BatchCache, BatchModel } from './batch.ts';
import type { Sequence } from './sequence.ts';

/**
 * A batch cache and the streams whose rows it holds, in row order. Membership changes copy the cache (KvBatch
 * rebuilds), so the core batches them: all of an iteration's leavers go in one remove.
 */
export class Lane<C extends BatchCache> {
  readonly seqs: Sequence[] = [];
  readonly cache: C;

  constructor(readonly model: BatchModel<C>) {
    this.cache = model.newBatch();
  }

  get size(): number {
    return this.seqs.length;
  }

  get full(): boolean {
    return this.seqs.length >= this.model.maxRows;
  }

  row(seq: Sequence): number {
    return this.seqs.indexOf(seq);
  }

  addEmpty(seqs: readonly Sequence[]): void {
    if (seqs.length === 0) return;
    this.cache.addEmpty(seqs.length);
    this.seqs.push(...seqs);
  }

  /** Moves `seqs` (rows of `from`) into this lane with their caches. */
  adopt(from: Lane<C>, seqs: readonly Sequence[]): void {
    if (seqs.length === 0) return;
    const moved = from.cache.split(seqs.map((s) => from.row(s)));
    for (const s of seqs) from.seqs.splice(from.seqs.indexOf(s), 1);
    this.cache.append(moved);
    this.seqs.push(...seqs);
  }

  drop(seqs: readonly Sequence[]): void {
    const rows = seqs.map((s) => this.row(s)).filter((r) => r >= 0);
    if (rows.length === 0) return;
    this.cache.remove(rows);
    const gone = new Set(seqs);
    const kept = this.seqs.filter((s) => !gone.has(s));
    this.seqs.length = 0;
    this.seqs.push(...kept);
  }

  /** One pass: ids(seq) per row; rows with none ride along as padding. Null when no row had anything to run. */
  async run(
    ids: (s: Sequence) => readonly number[],
    keep: number,
  ): Promise<{ logits: Float32Array; K: number; feeds: (readonly number[])[]; ms: number; rows: number; T: number } | null> {
    const feeds = this.seqs.map(ids);
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
