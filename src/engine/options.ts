/** Construction options of the engine (the server's config maps onto these). */
export interface EngineOptions {
  /** Target model folder (transformers.js layout) or, with allowRemote, a hub id. */
  targetPath: string;
  /** Draft model folder; null disables `speculative` and `draft` modes. */
  draftPath: string | null;
  dtype: 'fp32' | 'fp16' | 'q8' | 'q4';
  /** Which graph of a local folder to run: 'auto' prefers onnx/model_pooled.onnx (fp32), 'standard' never does. */
  graph?: 'auto' | 'standard';
  /** ONNX Runtime intra-op threads in the model worker. */
  threads: number;
  /** Streams decoding at once; more wait in the queue. */
  maxRunning: number;
  /** Streams allowed to wait; beyond it generate() rejects with 'overloaded'. */
  maxQueue: number;
  /** A queued stream not admitted within this time is rejected with 'overloaded'. */
  queueTimeoutMs: number;
  /** Prompts longer than this (or than the context) are rejected with 'prompt_too_long'. */
  maxPromptTokens: number;
  /** Upper bound of the adaptive draft length, and of a fixed k. */
  maxK: number;
  /** Let transformers.js fetch from env.remoteHost (tests point it at a local stand-in of the hub). */
  allowRemote?: boolean;
  /** Where the hub stand-in lives when allowRemote is set. */
  remoteHost?: string;
  /** Download cache for hub models (transformers.js in Node loads remote ONNX files from disk). */
  cacheDir?: string;
}

export const DEFAULT_ENGINE_OPTIONS: Omit<EngineOptions, 'targetPath' | 'draftPath'> = {
  dtype: 'fp32',
  threads: 2,
  maxRunning: 8,
  maxQueue: 32,
  queueTimeoutMs: 30_000,
  maxPromptTokens: 896,
  maxK: 8,
};
