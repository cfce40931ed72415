/**
 * The main thread ↔ model worker boundary: plain, structured-cloneable data only (no classes), tagged by `type`.
 * The main thread opens and closes streams; the worker's engine core owns everything in between (which streams
 * run, their k, prefill chunking, the models, caches and logits) and sends each pass's results back as one `out`
 * message covering every stream that pass touched. Every stream the worker accepted gets exactly one result with
 * `done` (or one `failed`), so the main thread always learns how a stream ended.
 */
import type { GrammarSpec, GrammarVocabulary } from '../grammar/spec.ts';
import type { TokenLogprob } from '../sampling/logprobs.ts';
import type { Mode, SamplingParams } from '../types.ts';
import type { DecoderInfo, LoadOptions } from '../model/decoder.ts';

export interface WorkerInit {
  targetPath: string;
  draftPath: string | null;
  load: LoadOptions;
  /** Largest draft length: calibration times target passes up to maxK + 1 tokens. */
  maxK: number;
  /** Most streams decoding at once: calibration times batches up to that many rows. */
  maxRows: number;
  /** Prompt token-rows per prefill pass while others decode: bounds how long a prompt holds the others up. */
  prefillChunk: number;
  /** The target's vocabulary as XGrammar reads it (grammars start on the first constrained stream). */
  grammarVocabulary: GrammarVocabulary;
}

/** Pass costs measured right after loading (which also warms ONNX Runtime up): adaptive k starts informed. */
export interface Calibration {
  /** [rows, tokens per row, ms] of each shape timed on the target. */
  target: [number, number, number][];
  /** The same for the draft (empty without a draft). */
  draft: [number, number, number][];
}

/** 0 accepted draft proposal, 1 target's own token, 2 bonus token (all k accepted). */
export type SourceCode = 0 | 1 | 2;

export type ToWorker =
  | {
      type: 'open';
      sid: number;
      promptIds: number[];
      mode: Mode;
      sampling: SamplingParams & { seed: number };
      ignoreEos: boolean;
      /** Completion tokens the stream may make: the worker ends it (done, reason length) when they are used. */
      maxNew: number;
      /** Draft length: fixed, or chosen by the core from batched step costs. */
      k: number | 'auto';
      /** The stream's per-token allowance, ms (its ITL budget, else the unbudgeted default). */
      allowanceMs: number;
      /** Report each token's log-probability and this many top alternatives (null: none). */
      logprobs: number | null;
      /**
       * A seeded, sampled speculative stream: its k is fixed and it waits for its draft prefill instead of
       * decoding alone meanwhile, so its rounds, and with them its random draws, depend on its own tokens only.
       */
      pinned?: boolean;
      /** Constrained output: every token, drafted or verified, is one this grammar allows; it ends the stream. */
      grammar?: GrammarSpec;
    }
  | { type: 'close'; sid: number }
  // Finish the running iteration, then stop (terminating a worker inside an ONNX Runtime run aborts the process).
  | { type: 'shutdown' }
  // Test hook: exit the worker thread between iterations, as a crash would.
  | { type: 'crash' };

export interface StepResult {
  type: 'stepped';
  sid: number;
  /** A prefill pass's result: its cost is not a decode step's (it may still carry the first token). */
  prefill: boolean;
  /** The worker finished the stream (EOS, or its maxNew tokens): no more results follow. */
  done: boolean;
  tokens: number[];
  sources: SourceCode[];
  /** With `logprobs` asked for: one entry per token, from the row of the pass that chose it. */
  logprobs?: TokenLogprob[];
  /** Draft tokens proposed and accepted in this step (speculative rounds only). */
  proposed: number;
  accepted: number;
  /** The stream produced an end-of-sequence token (not included in `tokens`). */
  eos: boolean;
  draftMs: number;
  draftCalls: number;
  targetMs: number;
  /** Tokens of this stream in the target pass (k + 1 in a speculative round), 0 if none ran. */
  targetTokens: number;
}

/** What one iteration of the core cost, for the main thread's routing predictions. */
export interface PassReport {
  /** Streams decoding in this iteration. */
  rows: number;
  /** Wall time of the iteration's decode step (draft passes, verify pass, bookkeeping), ms. */
  decodeMs: number;
  /**
   * Time since the previous decode step ended, ms (0 for the first after an idle spell): what a decoding stream
   * waits between its rounds, prefill passes and the loop's own overhead included.
   */
  periodMs: number;
  /** Every decode pass's shape and time: [model, rows, tokens per row (padded), ms]. */
  passes: ['target' | 'draft', number, number, number][];
  /** Wall time of a target prefill pass and the prompt tokens it cached (draft prefills are not reported). */
  prefillMs: number;
  prefillTokens: number;
}

export type FromWorker =
  | { type: 'ready'; target: DecoderInfo; draft: DecoderInfo | null; calibration: Calibration }
  | { type: 'load-failed'; message: string }
  | { type: 'out'; results: StepResult[]; report: PassReport | null }
  | { type: 'failed'; sid: number; message: string }
  | { type: 'stopped' };

export function emptyStepResult(sid = 0): StepResult {
  return {
    type: 'stepped',
    sid,
    prefill: false,
    done: false,
    tokens: [],
    sources: [],
    proposed: 0,
    accepted: 0,
    eos: false,
    draftMs: 0,
    draftCalls: 0,
    targetMs: 0,
    targetTokens: 0,
  };
}

/** Time of the decode step spent outside its forward passes (sampling, verification, cache bookkeeping), ms. */
export function decodeOverheadMs(r: PassReport): number {
  return Math.max(0, r.decodeMs - r.passes.reduce((a, p) => a + p[3], 0));
}
