/**
 * The main thread ↔ model worker boundary: plain, structured-cloneable data only (no classes), tagged by `type`.
 * The main thread owns scheduling (which stream steps next, with which k); the worker owns models, caches and
 * logits, and answers every `step` with exactly one `stepped`, `failed` or (for a step still queued when its
 * stream's `close` arrives) `dropped`. The one-answer rule lets the main thread know when the worker is idle.
 */
import type { Mode, SamplingParams } from '../types.ts';
import type { DecoderInfo, LoadOptions } from '../model/decoder.ts';

export interface WorkerInit {
  targetPath: string;
  draftPath: string | null;
  load: LoadOptions;
  /** Largest draft length: calibration times target passes up to maxK + 1 tokens. */
  maxK: number;
  /** Prompt tokens run per prefill step: bounds how long one stream's prompt holds the worker from the others. */
  prefillChunk: number;
}

/** Step costs measured right after loading (which also warms ONNX Runtime up): adaptive k starts informed. */
export interface Calibration {
  /** One-token draft pass, ms (0 without a draft). */
  draftMs: number;
  /** Target pass over T tokens at index T, ms. */
  targetMs: number[];
}

/** 0 accepted draft proposal, 1 target's own token, 2 bonus token (all k accepted). */
export type SourceCode = 0 | 1 | 2;

export type ToWorker =
  // maxNew caps the stream's completion: the worker clamps every step to what is left of it, so the main thread can
  // queue a step before it has seen how many tokens the previous one made.
  | {
      type: 'open';
      sid: number;
      promptIds: number[];
      mode: Mode;
      sampling: SamplingParams & { seed: number };
      ignoreEos: boolean;
      maxNew: number;
    }
  // deadline: epoch ms; the worker runs the queued step with the earliest one first (scheduler/deadlines.ts).
  | { type: 'step'; sid: number; k: number; deadline: number }
  | { type: 'close'; sid: number };

export interface StepResult {
  type: 'stepped';
  sid: number;
  /** True while the prompt is still being prefilled (no tokens yet). */
  prefill: boolean;
  tokens: number[];
  sources: SourceCode[];
  /** Draft tokens proposed and accepted in this step (speculative rounds only). */
  proposed: number;
  accepted: number;
  /** The stream produced an end-of-sequence token (not included in `tokens`). */
  eos: boolean;
  draftMs: number;
  draftCalls: number;
  targetMs: number;
  /** Tokens in the target pass of this step (k + 1 in a speculative round), 0 if none ran. */
  targetTokens: number;
  /** Worker time for the whole step: the passes plus sampling, verification and cache rollback. */
  wallMs: number;
}

export type FromWorker =
  | { type: 'ready'; target: DecoderInfo; draft: DecoderInfo | null; calibration: Calibration }
  | { type: 'load-failed'; message: string }
  | StepResult
  | { type: 'failed'; sid: number; message: string }
  | { type: 'dropped'; sid: number };
