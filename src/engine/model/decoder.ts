import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM, env } from '@huggingface/transformers';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { KvBatch } from '../kv/kv-batch.ts';
import { KvCache, type KvLayout } from './kv-cache.ts';

export interface LoadOptions {
  dtype: 'fp32' | 'fp16' | 'q8' | 'q4';
  threads: number;
  allowRemote?: boolean;
  remoteHost?: string;
  cacheDir?: string;
  /**
   * 'auto' (default): a local folder's onnx/model_pooled.onnx when it has one and the dtype is fp32 (the bundled
   * models: scripts/models/fused_graph.py), else the standard export; 'standard' always loads the standard one.
   */
  graph?: 'auto' | 'standard';
}

/** The pooled graph's file (fp32 only), beside the standard export in a local model folder. */
export const POOLED_FILE = 'onnx/model_pooled.onnx';

export interface DecoderInfo {
  contextLength: number;
  vocabSize: number;
  eosIds: number[];
  layers: number;
  /** config.json's model_type (llama, qwen2, gpt2 …). */
  family: string;
  /** The file transformers.js loaded for the requested dtype (onnx/model_fp16.onnx …). */
  file: string;
  /** Attention heads and KV heads: MHA when equal, MQA with one KV head, GQA between. */
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Element types of the KV cache and of the logits the graph returns. */
  kvType: 'float32' | 'float16';
  logitsType: 'float32' | 'float16';
  /** optimum's merged decoder: a `use_cache_branch` input selects the with-past branch. */
  merged: boolean;
  /** The graph takes position_ids (else positions follow the past's length, and streams cannot share a batch). */
  positionIds: boolean;
  /** The pooled layout: the cache is written in place, no pass copies it (see KvBatch). */
  pooled: boolean;
}

/** Inputs specd knows how to feed; a graph that declares any other is refused at load, naming it. */
const FED_INPUTS = new Set(['input_ids', 'attention_mask', 'position_ids', 'num_logits_to_keep', 'use_cache_branch']);

/**
 * A decoder-only transformers.js model (Llama, Qwen2, GPT-2 … exports with a past) driven one forward pass at a time.
 * Loading goes through transformers.js, so local folders and hub ids resolve exactly as they do there; the forward
 * pass calls the ONNX session directly, skipping generate()'s per-call wrapping (and its full-mask position cumsum),
 * which matters when a draft step costs well under a millisecond.
 */
export class DecoderModel {
  private constructor(
    private readonly session: InferenceSession,
    private readonly layout: KvLayout,
    /** HF's `num_logits_to_keep`: the graph computes the LM head on the last N rows only (0: all). */
    private readonly hasLogitsToKeep: boolean,
    readonly info: DecoderInfo,
  ) {}

  static async load(path: string, opts: LoadOptions): Promise<DecoderModel> {
    configureHub(opts);
    const pooled = (opts.graph ?? 'auto') === 'auto' && opts.dtype === 'fp32' && existsSync(join(path, POOLED_FILE));
    const session_options = {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all' as const,
      // Pool threads sleep between the parallel sections of a run instead of spinning. The engine core runs pass
      // after pass while streams decode, so spinning threads never leave a core to the main thread: on a 2-core
      // machine that delayed every socket event by milliseconds (the client-seen TTFT drifted ~5 ms from the
      // server's), for a few percent of pass time (bench:concurrency c = 1 was no slower without it).
      extra: { session: { intra_op: { allow_spinning: '0' }, force_spinning_stop: '1' } },
    };
    let session: InferenceSession;
    let config: Record<string, unknown>, generation_config: Record<string, unknown> | null;
    if (pooled) {
      // Opened by path, not through transformers.js (which hands ONNX Runtime the file's bytes): the pooled graph's
      // weights are external data inside model.onnx, found relative to the graph's own path.
      checkPooledWeights(path);
      session = await InferenceSession.create(join(path, POOLED_FILE), session_options);
      config = readJson(join(path, 'config.json')) ?? {};
      generation_config = readJson(join(path, 'generation_config.json'));
    } else {
      const model = await AutoModelForCausalLM.from_pretrained(path, { dtype: opts.dtype, device: 'cpu', session_options });
      const sessions = (model as unknown as { sessions: Record<string, InferenceSession> }).sessions;
      const found = sessions['model'] ?? sessions['decoder_model_merged'];
      if (!found) throw new Error(`${path}: no decoder session found`);
      session = found;
      ({ config, generation_config } = model as unknown as {
        config: Record<string, unknown>;
        generation_config: Record<string, unknown> | null;
      });
    }
    const file = pooled ? POOLED_FILE : `onnx/model${DTYPE_SUFFIX[opts.dtype]}.onnx`;
    const layout = checkLayout(session, config, `${path} (${file})`, pooled);
    const info: DecoderInfo = {
      ...decoderInfo(config, generation_config ?? {}),
      file,
      heads: layout.heads,
      kvHeads: layout.kvHeads,
      headDim: layout.headDim,
      kvType: layout.type,
      logitsType: layout.logitsType,
      merged: session.inputNames.includes('use_cache_branch'),
      positionIds: session.inputNames.includes('position_ids'),
      pooled,
    };
    return new DecoderModel(session, layout, session.inputNames.includes('num_logits_to_keep'), info);
  }

  /** Logits row length: with newCache/forward this makes a DecoderModel the step logic's ForwardModel as is. */
  get vocab(): number {
    return this.info.vocabSize;
  }

  newCache(): KvCache {
    return new KvCache(this.layout, this.info.positionIds);
  }

  newBatch(): KvBatch {
    return new KvBatch(this.layout, this.info.positionIds);
  }

  /**
   * Rows of a batch share a pass only when the export takes position_ids: left padding and rollback holes shift
   * slot indices away from positions, which a graph that derives positions from the past length would get wrong.
   */
  get maxRows(): number {
    return this.info.positionIds ? Infinity : 1;
  }

  /**
   * One pass over a batch: row r runs ids[r] (possibly none) on top of its cached tokens. Rows are left-padded to
   * the longest; logits come back as [rows, K, vocab] with K = keep (or the longest row's length when keep is 0),
   * each row's last token in its last position.
   */
  async forwardBatch(kv: KvBatch, ids: readonly (readonly number[])[], keep = 0): Promise<{ logits: Float32Array; K: number }> {
    const B = kv.rows;
    if (ids.length !== B) throw new Error(`forwardBatch: ${ids.length} id lists for ${B} rows`);
    kv.compactIfSparse();
    const T = Math.max(1, ...ids.map((x) => x.length));
    const input = new BigInt64Array(B * T);
    const pos = new BigInt64Array(B * T);
    const live = new Uint8Array(B * T);
    for (let r = 0; r < B; r++) {
      const row = ids[r]!,
        pad = T - row.length,
        P = kv.length(r);
      for (let t = 0; t < T; t++) {
        const i = t - pad;
        input[r * T + t] = i >= 0 ? BigInt(row[i]!) : 0n;
        pos[r * T + t] = BigInt(P + Math.max(0, i));
        live[r * T + t] = i >= 0 ? 1 : 0;
      }
    }
    const feeds: Record<string, Tensor> = { input_ids: new Tensor('int64', input, [B, T]) };
    if (this.info.positionIds) feeds['position_ids'] = new Tensor('int64', pos, [B, T]);
    const K = keep > 0 && this.hasLogitsToKeep ? Math.min(keep, T) : T;
    if (this.hasLogitsToKeep) feeds['num_logits_to_keep'] = keepTensor(keep > 0 ? K : 0);
    if (this.info.merged) feeds['use_cache_branch'] = cacheBranch(kv.slots > 0);
    kv.feeds(feeds, T, live);
    const out = await this.session.run(feeds);
    kv.adopt(out, T, live);
    return { logits: logitsOf(out), K };
  }

  /**
   * Runs `ids` on top of `cache` (which grows by ids.length) and returns logits rows × vocab: the last `keep`
   * rows, or all ids.length with keep = 0. A graph without `num_logits_to_keep` always returns all of them, so
   * a caller that wants the last rows takes them from the end.
   */
  async forward(cache: KvCache, ids: readonly number[], keep = 0): Promise<Float32Array> {
    return (await this.forwardBatch(cache.batch, [ids], keep)).logits;
  }
}

/**
 * The pooled graph's weights are byte ranges of model.onnx, which ONNX Runtime reads by offset unchecked: a model.onnx
 * replaced since fused_graph.py wrote the graph would load as garbage weights. model_pooled.json names the file it
 * was written against (size and SHA-256; hashing 63 MB takes ~0.1 s at load).
 */
function checkPooledWeights(folder: string): void {
  const manifest = readJson(join(folder, 'onnx', 'model_pooled.json'));
  const weights = join(folder, 'onnx', typeof manifest?.['weights'] === 'string' ? manifest['weights'] : 'model.onnx');
  const ok =
    manifest !== null &&
    existsSync(weights) &&
    statSync(weights).size === manifest['bytes'] &&
    createHash('sha256').update(readFileSync(weights)).digest('hex') === manifest['sha256'];
  if (!ok)
    throw new Error(
      `${folder}: onnx/model_pooled.onnx was written against another onnx/model.onnx (its weights are read from that file by offset); rerun scripts/models/fused_graph.py on the folder, or start with --graph standard`,
    );
}

function readJson(file: string): Record<string, unknown> | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : null;
}

function logitsOf(out: Record<string, Tensor>): Float32Array {
  const logits = out['logits'];
  if (!logits) throw new Error('model has no logits output');
  const data = logits.data;
  if (data instanceof Float32Array) return data;
  if (logits.type === 'float16' && data instanceof Uint16Array) return halfToFloat(data);
  throw new Error(`unsupported logits type ${logits.type}`);
}

/** float16 bit patterns → float32, through a table of all 65,536 (256 KB, built on first use). */
let HALF: Float32Array | null = null;
function halfToFloat(h: Uint16Array): Float32Array {
  HALF ??= Float32Array.from({ length: 65536 }, (_, bits) => {
    const sign = bits & 0x8000 ? -1 : 1,
      exp = (bits >> 10) & 0x1f,
      frac = bits & 0x3ff;
    if (exp === 0) return sign * frac * 2 ** -24;
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * (1 + frac / 1024) * 2 ** (exp - 15);
  });
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = HALF[h[i]!]!;
  return out;
}

/** The file suffix transformers.js requests per dtype (its DEFAULT_DTYPE_SUFFIX_MAPPING). */
const DTYPE_SUFFIX: Record<LoadOptions['dtype'], string> = { fp32: '', fp16: '_fp16', q8: '_quantized', q4: '_q4' };

const BRANCH = [false, true].map((b) => new Tensor('bool', Uint8Array.of(b ? 1 : 0), [1]));
function cacheBranch(withPast: boolean): Tensor {
  return BRANCH[withPast ? 1 : 0]!;
}

/** The scalar `num_logits_to_keep` feeds; the step logic only ever asks for 0 (all) or 1, so those are made once. */
const KEEP = [0, 1].map((n) => new Tensor('int64', BigInt64Array.of(BigInt(n)), []));
function keepTensor(keep: number): Tensor {
  return KEEP[keep] ?? new Tensor('int64', BigInt64Array.of(BigInt(keep)), []);
}

/**
 * Offline by default. The download cache is on only for hub models: in Node, transformers.js loads a downloaded
 * ONNX file from that cache, while for local folders a stale cache entry would shadow the folder's own files.
 */
export function configureHub(opts: { allowRemote?: boolean; remoteHost?: string; cacheDir?: string }): void {
  env.allowRemoteModels = opts.allowRemote ?? false;
  env.useFSCache = opts.allowRemote ?? false;
  if (opts.remoteHost) env.remoteHost = opts.remoteHost;
  if (opts.cacheDir) env.cacheDir = opts.cacheDir;
}

type IoMeta = { name: string; type?: string; shape?: (string | number)[] };

/**
 * What the graph declares, checked before any stream runs: a layout specd cannot drive fails the load with a message
 * naming the missing or unknown piece, never a stream later. KV heads and head size come from the past's declared
 * shape (exports declare them static), else from config.json (Llama/Qwen2 and GPT-2 names).
 */
function checkLayout(
  session: InferenceSession,
  config: Record<string, unknown>,
  what: string,
  pooled: boolean,
): KvLayout & {
  heads: number;
  logitsType: 'float32' | 'float16';
} {
  const s = session as unknown as { inputMetadata?: IoMeta[]; outputMetadata?: IoMeta[] };
  const names = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  if (!session.inputNames.includes('input_ids'))
    throw new Error(
      `${what} takes no input_ids (inputs: ${session.inputNames.join(', ')}): a decoder fed embeddings needs its separate embedding model, which specd does not run`,
    );
  if (names.length === 0)
    throw new Error(
      `${what} has no past_key_values inputs: specd needs a decoder exported with its KV cache (optimum's text-generation-with-past, transformers.js's model.onnx)`,
    );
  const unknown = session.inputNames.filter((n) => !FED_INPUTS.has(n) && !n.startsWith('past_key_values.'));
  if (unknown.length > 0) throw new Error(`${what} declares inputs specd cannot feed: ${unknown.join(', ')}`);
  const presentNames = names.map((n) => n.replace('past_key_values.', 'present.'));
  const missing = ['logits', ...presentNames].filter((n) => !session.outputNames.includes(n));
  if (missing.length > 0) throw new Error(`${what} lacks the outputs ${missing.join(', ')}`);
  const meta = s.inputMetadata?.find((m) => m.name === names[0]);
  const logitsMeta = s.outputMetadata?.find((m) => m.name === 'logits');
  const logitsType = logitsMeta?.type ?? 'float32';
  if (logitsType !== 'float32' && logitsType !== 'float16')
    throw new Error(`${what} returns ${logitsType} logits; specd reads float32 or float16`);
  const kvType = meta?.type ?? 'float32';
  if (kvType !== 'float32' && kvType !== 'float16') throw new Error(`${what} keeps a ${kvType} KV cache; specd handles float32 or float16`);
  // The pooled past is [past_sequence_length, batch_size, kvH, hd]; the standard one [batch_size, kvH, past, hd].
  const declared = meta?.shape ?? [];
  if (pooled && !(typeof declared[2] === 'number' && typeof declared[3] === 'number' && typeof declared[0] === 'string'))
    throw new Error(`${what}: a pooled graph's past must be [past_sequence_length, batch_size, kvH, hd], not ${JSON.stringify(declared)}`);
  if (pooled && !session.inputNames.includes('position_ids')) throw new Error(`${what}: a pooled graph must take position_ids`);
  const shape = pooled ? [declared[1], declared[2], declared[0], declared[3]] : declared;
  const num = (...keys: string[]) => keys.map((k) => config[k]).find((v): v is number => typeof v === 'number');
  const heads = num('num_attention_heads', 'n_head');
  const kvHeads = typeof shape[1] === 'number' ? shape[1] : (num('num_key_value_heads') ?? heads);
  const hidden = num('hidden_size', 'n_embd');
  const headDim = typeof shape[3] === 'number' ? shape[3] : (num('head_dim') ?? (hidden && heads ? hidden / heads : undefined));
  if (!kvHeads || !headDim)
    throw new Error(`${what}: cannot tell the KV cache layout from past_key_values shape ${JSON.stringify(shape)} or config.json`);
  return { names, presentNames, kvHeads, headDim, type: kvType, heads: heads ?? kvHeads, logitsType, pooled };
}

/** EOS ids come from config.json and generation_config.json together: chat models often list <|im_end|> only in the latter. */
function decoderInfo(
  config: Record<string, unknown>,
  generation: Record<string, unknown>,
): Pick<DecoderInfo, 'contextLength' | 'vocabSize' | 'eosIds' | 'layers' | 'family'> {
  const num = (...keys: string[]) => keys.map((k) => config[k]).find((v): v is number => typeof v === 'number');
  const ids = [config['eos_token_id'], generation['eos_token_id']].flat().filter((v): v is number => typeof v === 'number');
  return {
    contextLength: num('max_position_embeddings', 'n_positions', 'n_ctx') ?? 2048,
    vocabSize: num('vocab_size') ?? 0,
    eosIds: [...new Set(ids)],
    layers: num('num_hidden_layers', 'n_layer') ?? 0,
    family: typeof config['model_type'] === 'string' ? config['model_type'] : 'unknown',
  };
}
