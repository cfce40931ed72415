import { z } from 'zod';
import { chatLogprobsShape, checkBudget, checkLogprobs, type Limits, messagesSchema, promptSchema, samplingShape } from './params.ts';
import type { Usage, WireFinishReason, WireRoute, WireSpeculative, WireTimings } from './stats.ts';

/**
 * OpenAI-compatible request bodies for POST /v1/completions and POST /v1/chat/completions.
 * Unknown fields are ignored (clients send many); known OpenAI parameters that would change the output and that
 * specd does not implement are refused with 400 `unsupported_parameter` naming them, unless they hold their
 * no-op value (e.g. n: 1, logprobs: false, presence_penalty: 0).
 */

interface Unsupported {
  param: string;
  /** True for the values that mean "off", which are accepted and ignored. */
  isNoOp: (v: unknown) => boolean;
  why: string;
}

const nil = (v: unknown) => v === undefined || v === null;
const UNSUPPORTED_COMMON: Unsupported[] = [];
const UNSUPPORTED_COMPLETIONS: Unsupported[] = [
  ...UNSUPPORTED_COMMON,
  { param: 'best_of', isNoOp: (v) => nil(v) || v === 1, why: 'only best_of=1 is supported' },
  { param: 'echo', isNoOp: (v) => nil(v) || v === false, why: 'echo is not supported' },
  { param: 'suffix', isNoOp: (v) => nil(v) || v === '', why: 'suffix (insertion) is not supported' },
];
const UNSUPPORTED_CHAT: Unsupported[] = [
  ...UNSUPPORTED_COMMON,
  { param: 'tools', isNoOp: (v) => nil(v) || (Array.isArray(v) && v.length === 0), why: 'tool calling is not supported' },
  { param: 'functions', isNoOp: (v) => nil(v) || (Array.isArray(v) && v.length === 0), why: 'function calling is not supported' },
];

function refuseUnsupported(list: Unsupported[]) {
  return (body: Record<string, unknown>, ctx: z.RefinementCtx) => {
    for (const u of list) {
      if (!u.isNoOp(body[u.param])) {
        ctx.addIssue({ code: 'custom', path: [u.param], message: u.why, params: { unsupported: true } });
        return;
      }
    }
  };
}

/** Choices per request: each is an independent stream in the engine's batch. */
export const MAX_CHOICES = 16;
const nSchema = z
  .number()
  .int('must be an integer')
  .min(1, `must be 1..${MAX_CHOICES}`)
  .max(MAX_CHOICES, `must be 1..${MAX_CHOICES} (each choice is a stream of its own)`)
  .nullish();

const StreamOptionsSchema = z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish();

export function completionBodySchema(l: Limits) {
  return z
    .object({
      model: z.string().nullish(),
      prompt: z.union([promptSchema(l), z.array(promptSchema(l)).length(1, 'only one prompt per request is supported')], {
        errorMap: (issue, ctx) =>
          issue.code === 'invalid_union'
            ? { message: 'must be a non-empty string (token-id prompts are not supported)' }
            : { message: ctx.defaultError },
      }),
      stream: z.boolean().nullish(),
      stream_options: StreamOptionsSchema,
      n: nSchema,
      /** Completions' form: how many alternatives per token (0–5; 0 = the chosen token's only). */
      logprobs: z.number().int('must be an integer').min(0, 'must be 0..5').max(5, 'must be 0..5').nullish(),
      ...samplingShape(l),
    })
    .passthrough()
    .superRefine(refuseUnsupported(UNSUPPORTED_COMPLETIONS))
    .superRefine(checkBudget);
}

export function chatBodySchema(l: Limits) {
  return z
    .object({
      model: z.string().nullish(),
      messages: messagesSchema(l),
      stream: z.boolean().nullish(),
      stream_options: StreamOptionsSchema,
      /** OpenAI's newer name for max_tokens; wins when both are given. */
      max_completion_tokens: samplingShape(l).max_tokens,
      n: nSchema,
      ...chatLogprobsShape,
      ...samplingShape(l),
    })
    .passthrough()
    .superRefine(refuseUnsupported(UNSUPPORTED_CHAT))
    .superRefine(checkLogprobs)
    .superRefine(checkBudget);
}

export type CompletionBody = z.infer<ReturnType<typeof completionBodySchema>>;
export type ChatBody = z.infer<ReturnType<typeof chatBodySchema>>;

// ── responses (built by the server; typed here so the wire shapes live in one module) ─────────────────────────

/** Finish reasons pass through unchanged: OpenAI's stop/length plus specd's cancelled/error/shutdown. */
export type OpenAIFinishReason = WireFinishReason;

/** specd's extra fields on a non-streaming response and on the final streaming chunk. */
export interface SpecdExtra {
  mode: 'speculative' | 'target' | 'draft';
  /** The seed the stream sampled with (null for a stream cancelled before it started). */
  seed: number | null;
  timings: WireTimings;
  speculative: WireSpeculative;
  route?: WireRoute;
  error?: { code: string; message: string };
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: OpenAIFinishReason; logprobs: CompletionLogprobs | null }[];
  usage: Usage;
  specd: SpecdExtra;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: OpenAIFinishReason | null; logprobs: CompletionLogprobs | null }[];
  usage?: Usage | null;
  specd?: SpecdExtra;
}

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: OpenAIFinishReason;
    logprobs: ChatLogprobs | null;
  }[];
  usage: Usage;
  specd: SpecdExtra;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: OpenAIFinishReason | null;
    logprobs: ChatLogprobs | null;
  }[];
  usage?: Usage | null;
  specd?: SpecdExtra;
}

/** OpenAI's chat logprobs: one entry per token, its UTF-8 bytes and its most likely alternatives. */
export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}
export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

/** OpenAI's (legacy) completions logprobs: parallel arrays; text_offset is each token's offset in the text. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

export interface ModelList {
  object: 'list';
  data: {
    id: string;
    object: 'model';
    created: number;
    owned_by: 'specd';
    role: 'target' | 'draft';
    context_length: number;
    /** What was loaded: config.json's model_type, dtype and file, and the KV layout the graph declares. */
    specd: {
      family: string;
      dtype: string;
      file: string;
      attention: 'MHA' | 'GQA' | 'MQA';
      heads: number;
      kv_heads: number;
      head_dim: number;
      kv_dtype: string;
      logits_dtype: string;
      merged_decoder: boolean;
      position_ids: boolean;
      /** The KV cache is written in place (the bundled models' pooled graph) rather than returned by every pass. */
      kv_in_place: boolean;
      layers: number;
    };
  }[];
}
