import { Tensor } from 'onnxruntime-node';
import { KvBatch } from '../kv/kv-batch.ts';

type KvData = Float32Array | Uint16Array;

/**
 * One model's past key/values for one stream: a tensor per `past_key_values.*` input, each [1, kvHeads, length, headDim].
 * ONNX Runtime hands back fresh `present.*` buffers on every call, so the cache just adopts them; rollback of
 * rejected draft positions copies each head's prefix (Tensor.slice is ~70× slower), or is zero-copy with one KV head.
 * A pooled graph's cache is a one-row KvBatch instead (`batch`), which writes new slots in place.
 */
export class KvCache {
  private len = 0;
  private tensors: Tensor[];
  readonly batch: KvBatch | null;

  constructor(private readonly layout: KvLayout) {
    this.tensors = layout.names.map(() => emptyKv(layout));
    this.batch = layout.pooled ? new KvBatch(layout) : null;
    this.batch?.addEmpty(1);
  }

  get length(): number {
    return this.batch ? this.batch.length(0) : this.len;
  }

  feeds(into: Record<string, Tensor>): void {
    this.layout.names.forEach((name, i) => {
      into[name] = this.tensors[i]!;
    });
  }

  adopt(outputs: Record<string, Tensor>, length: number): void {
    this.tensors = this.layout.presentNames.map((name) => {
      const t = outputs[name];
      if (!t) throw new Error(`model output ${name} missing`);
      return t;
    });
    this.len = length;
  }

  /** Keep the first n positions. */
  truncate(n: number): void {
    if (this.batch) return this.batch.truncate(0, n);
    if (n >= this.length) return;
    const { kvHeads, headDim } = this.layout;
    this.tensors = this.tensors.map((t) => {
      const src = t.data as KvData;
      const S = this.length;
      if (kvHeads === 1) return new Tensor(t.type, src.subarray(0, n * headDim), [1, 1, n, headDim]);
      const dst = new (src.constructor as new (n: number) => KvData)(kvHeads * n * headDim);
      for (let h = 0; h < kvHeads; h++) dst.set(src.subarray(h * S * headDim, h * S * headDim + n * headDim), h * n * headDim);
      return new Tensor(t.type, dst, [1, kvHeads, n, headDim]);
    });
    this.len = n;
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

function emptyKv(layout: KvLayout): Tensor {
  const data = layout.type === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  return new Tensor(layout.type, data, [1, layout.kvHeads, 0, layout.headDim]);
}
