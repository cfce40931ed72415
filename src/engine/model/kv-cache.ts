import { KvBatch } from '../kv/kv-batch.ts';

/**
 * One model's past key/values for one stream, for the unbatched callers (models:eval, the model cards, the
 * diagnostics, the unbatched speculative round): a one-row KvBatch, so every graph layout, rollback by mask and the
 * pooled graph's in-place writes behave exactly as they do in the engine core.
 */
export class KvCache {
  readonly batch: KvBatch;

  constructor(layout: KvLayout, positionIds: boolean) {
    this.batch = new KvBatch(layout, positionIds);
    this.batch.addEmpty(1);
  }

  get length(): number {
    return this.batch.length(0);
  }

  /** Keep the first n positions. */
  truncate(n: number): void {
    this.batch.truncate(0, n);
  }
}

export interface KvLayout {
  names: string[];
  presentNames: string[];
  kvHeads: number;
  headDim: number;
  type: 'float32' | 'float16';
  /** The pooled layout (scripts/models/fused_graph.py): slot-major past in, only the new slots out. */
  pooled?: boolean;
}
