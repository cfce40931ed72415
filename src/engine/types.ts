/**
 * The engine's public contract: what the server may import. Types and interfaces, plus the one error class the
 * server maps to statuses (EngineError); no HTTP and no model maths.
 * The server maps its wire protocol onto these types; the engine never imports the protocol.
 */

/** Which model(s) produce the tokens: the accuracy/latency dial of each request. */
export type Mode = 'speculative' | 'target' | 'draft';

/** Where an emitted token came from: an accepted draft proposal, the target's own token at the first
 *  disagreement (or every token in `target` mode), or the free token after all k proposals were accepted. */
export type TokenSource = 'draft' | 'target' | 'bonus';

/** What a request may ask for: a mode, or 'auto' to let the router pick one that fits its latency budget. */
export type RequestedMode = Mode | 'auto';

export interface LatencyBudget {
  ttftMs?: number;
  /** Mean gap between tokens after the first: (e2e − ttft) / (tokens − 1). */
  itlMs?: number;
}

/** The router's choice for a `mode: 'auto'` request, with the predictions it was based on. */
export interface RouteDecision {
  mode: Mode;
  budgetMissed: boolean;
  predicted: Partial<Record<Mode, { ttftMs: number; itlMs: number }>>;
}

export type FinishReason = 'stop' | 'length' | 'cancelled' | 'error' | 'shutdown';

export interface SamplingParams {
  /** 0 means greedy (argmax); the other transforms are then irrelevant. */
  temperature: number;
  topP: number;
  /** 0 disables top-k. */
  topK: number;
  minP: number;
  repetitionPenalty: number;
  /** OpenAI's: subtracted once from the logit of every token the completion already contains (0 = off). */
  presencePenalty?: number;
  /** OpenAI's: subtracted from a token's logit once per time the completion already contains it (0 = off). */
  frequencyPenalty?: number;
  /** OpenAI's logit_bias: [token id, bias in [−100, 100]] pairs added to the logits (−100 bans, +100 forces). */
  logitBias?: readonly (readonly [number, number])[];
  /** Same request + same seed → same tokens. Omitted: a random seed is drawn (and reported). */
  seed?: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface GenerateRequest {
  /** Raw text (BOS added as the tokenizer does) or chat messages (rendered with the model's chat template). */
  input: { prompt: string } | { messages: ChatMessage[] };
  maxTokens: number;
  sampling: SamplingParams;
  /** Never emitted; matched across token boundaries. */
  stop: string[];
  mode: RequestedMode;
  /** With mode 'auto': the latency the request must meet (predicted from live measurements). */
  latencyBudget?: LatencyBudget;
  /** Draft length per round; 'auto' adapts per stream. 0 means target-only. */
  k: number | 'auto';
  /** Keep generating through end-of-sequence tokens (vLLM's ignore_eos): for benchmarks of fixed length. */
  ignoreEos?: boolean;
  /**
   * Report each token's log-probability, and this many (0–20) most likely alternatives, from the distribution the
   * token was emitted under: the target's verify pass (the draft's in draft mode), before sampling transforms.
   */
  logprobs?: number;
  /**
   * Constrained output (OpenAI's response_format): every token, drafted or verified, is one XGrammar allows, so
   * the text is a JSON object, or JSON valid under `schema` (properties and items it does not name are left out).
   * The stream ends when the JSON does.
   */
  responseFormat?: ResponseFormat;
  /** Aborting ends the stream at the next step boundary with finish_reason 'cancelled'. */
  signal?: AbortSignal;
}

export type ResponseFormat = { type: 'json_object' } | { type: 'json_schema'; schema: unknown };

export interface EmittedToken {
  id: number;
  text: string;
  source: TokenSource;
  /** Milliseconds since the request was submitted, when this token was handed to the consumer. */
  tMs: number;
  /** With `logprobs` asked for: this token's log-probability and the row's top alternatives. */
  logprobs?: TokenLogprobs;
}

export interface TopLogprob {
  id: number;
  /** The token on its own, special tokens spelled out (`text` above is the stream's text, which may be held back). */
  text: string;
  logprob: number;
}

export interface TokenLogprobs extends TopLogprob {
  top: TopLogprob[];
}

export interface StartEvent {
  type: 'start';
  promptTokens: number;
  queueMs: number;
  mode: Mode;
  seed: number;
  /** Present when the request asked for mode 'auto'. */
  route?: RouteDecision;
}

/** One engine step: 1..k+1 tokens arrive together. `text` is the stream's text delta (stop-string holdback applied). */
export interface TokensEvent {
  type: 'tokens';
  text: string;
  tokens: EmittedToken[];
}

export interface Timings {
  queueMs: number;
  prefillMs: number;
  ttftMs: number;
  /** Gap before each token after the first, as the consumer saw them (tokens of one step have gaps of ~0). */
  itlMs: number[];
  e2eMs: number;
  /** Time inside forward passes during decoding (prefill excluded), as the worker measured it: where a stream's
   *  time went, and the per-stream cost ratio (draftMs / draftPasses over a one-token target pass). */
  decode: { draftMs: number; draftPasses: number; targetMs: number; targetPasses: number; targetTokens: number };
}

export interface SpeculativeStats {
  /** Rounds in which the draft proposed at least one token. */
  drafts: number;
  proposed: number;
  accepted: number;
  /** accepted / proposed (vLLM's draft acceptance rate); null when nothing was proposed. */
  acceptanceRate: number | null;
  /** Tokens produced per target pass (1 + accepted/drafts); null without drafts. */
  meanAcceptedLength: number | null;
  /** Mean draft length over rounds. */
  meanK: number | null;
  /** Rounds that stopped before k (Leviathan's per-token α = accepted / (accepted + rejections)). */
  rejections: number;
  /** accepted count per draft position (index 0 = first proposal), for acceptance-per-position metrics. */
  acceptedPerPosition: number[];
}

export interface DoneEvent {
  type: 'done';
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** The full completion text (equals the concatenation of every `tokens` event's text). */
  text: string;
  timings: Timings;
  speculative: SpeculativeStats;
  /** The mode that served the stream and, for mode 'auto', the router's decision. */
  mode?: Mode;
  route?: RouteDecision;
  /** Set when finishReason is 'error'. */
  error?: { code: string; message: string };
}

export type EngineEvent = StartEvent | TokensEvent | DoneEvent;

/** Errors the engine raises before a stream starts; the server maps `code` to a status in one table. */
export type EngineErrorCode =
  | 'prompt_too_long' // prompt alone does not fit the context
  | 'invalid_request' // e.g. messages on a model without a chat template, draft mode without a draft
  | 'overloaded' // queue full, or queued longer than the queue timeout
  | 'cancelled' // the request's signal aborted while it was still queued (no stream was started)
  | 'shutting_down'
  | 'not_ready'
  | 'internal';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface ModelInfo {
  target: { id: string; path: string; contextLength: number; vocabSize: number; layout: ModelLayout };
  draft: { id: string; path: string; layout: ModelLayout } | null;
}

/** What was loaded, as the graph declares it (printed at startup, reported by /v1/models). */
export interface ModelLayout {
  /** config.json's model_type: llama, qwen2, gpt2 … */
  family: string;
  dtype: string;
  /** The ONNX file transformers.js loaded for that dtype. */
  file: string;
  /** MHA (a KV head per attention head), GQA (fewer), MQA (one). */
  attention: 'MHA' | 'GQA' | 'MQA';
  heads: number;
  kvHeads: number;
  headDim: number;
  kvDtype: 'float32' | 'float16';
  logitsDtype: 'float32' | 'float16';
  /** optimum's merged decoder (`use_cache_branch`). */
  merged: boolean;
  positionIds: boolean;
  /** The pooled layout (the bundled models' model_pooled.onnx): the KV cache is written in place. */
  pooled: boolean;
  contextLength: number;
  layers: number;
}

export interface EngineStats {
  running: number;
  queued: number;
}

/** Whether the engine can serve at all (the model worker is alive), for liveness probes. */
export interface EngineHealth {
  ok: boolean;
  /** Why not, when not ok (the worker died and is being restarted, or could not be). */
  reason: string | null;
  /** Times the model worker died and was replaced in this process. */
  workerRestarts: number;
}

export interface Engine {
  readonly ready: boolean;
  info(): ModelInfo;
  stats(): EngineStats;
  health(): EngineHealth;
  /**
   * Admits (or queues) a request and streams its events: exactly one 'start' (after admission), any number of
   * 'tokens', exactly one 'done'. Rejections before admission throw EngineError (overloaded, prompt_too_long…)
   * from the first iteration, before any event. Every admitted stream ends with a 'done' event.
   */
  generate(req: GenerateRequest): AsyncIterable<EngineEvent>;
  /**
   * A prompt's ids exactly as generate() would run them (defaults), or without the tokenizer's special tokens /
   * the chat template's generation prompt. Throws EngineError (invalid_request, not_ready) like generate().
   */
  tokenize(input: GenerateRequest['input'], opts?: { addSpecialTokens?: boolean; addGenerationPrompt?: boolean }): number[];
  /** Text of ids, special tokens spelled out; invalid_request for an id outside the vocabulary. */
  detokenize(ids: readonly number[]): string;
  /** Stop admitting; let running streams run up to graceMs, then end the rest with finish_reason 'shutdown'. */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}
