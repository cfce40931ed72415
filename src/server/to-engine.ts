import type { GenerateRequest, Mode } from '../engine/index.ts';
import type { WireMessage, WireSampling } from '../protocol/index.ts';

/** Server-wide defaults applied to parameters a request leaves out. */
export interface RequestDefaults {
  mode: Mode;
  k: number | 'auto';
  maxTokens: number;
}

/**
 * specd's sampling defaults. Temperature defaults to 0 (greedy) — unlike OpenAI's 1 — so that a request without
 * sampling parameters returns exactly the target model's greedy output, which is what speculative decoding
 * preserves and what is easiest to check. The rest are the identity transforms.
 */
export const SAMPLING_DEFAULTS = { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 } as const;

export type WireInput = { prompt: string } | { messages: WireMessage[] };

/** Maps validated wire parameters (snake_case, nulls = absent) onto the engine's GenerateRequest. */
export function toGenerateRequest(
  input: WireInput,
  p: Partial<WireSampling>,
  defaults: RequestDefaults,
  signal?: AbortSignal,
  /** Token log-probabilities with this many alternatives (undefined: none). */
  logprobs?: number,
): GenerateRequest {
  const stop = p.stop == null ? [] : typeof p.stop === 'string' ? [p.stop] : [...p.stop];
  return {
    input: 'prompt' in input ? { prompt: input.prompt } : { messages: input.messages.map((m) => ({ role: m.role, content: m.content })) },
    maxTokens: p.max_tokens ?? defaults.maxTokens,
    sampling: {
      temperature: p.temperature ?? SAMPLING_DEFAULTS.temperature,
      topP: p.top_p ?? SAMPLING_DEFAULTS.topP,
      topK: p.top_k ?? SAMPLING_DEFAULTS.topK,
      minP: p.min_p ?? SAMPLING_DEFAULTS.minP,
      repetitionPenalty: p.repetition_penalty ?? SAMPLING_DEFAULTS.repetitionPenalty,
      ...(p.presence_penalty ? { presencePenalty: p.presence_penalty } : {}),
      ...(p.frequency_penalty ? { frequencyPenalty: p.frequency_penalty } : {}),
      ...(p.logit_bias && Object.keys(p.logit_bias).length > 0
        ? { logitBias: Object.entries(p.logit_bias).map(([id, b]) => [Number(id), b] as const) }
        : {}),
      ...(p.seed != null ? { seed: p.seed } : {}),
    },
    stop,
    // A budget without a mode asks for routing; with an explicit mode the schema has already refused it.
    mode: p.mode ?? (p.latency_budget ? 'auto' : defaults.mode),
    ...(p.latency_budget ? { latencyBudget: { ttftMs: p.latency_budget.ttft_ms, itlMs: p.latency_budget.itl_ms } } : {}),
    k: p.k ?? defaults.k,
    ...(p.ignore_eos ? { ignoreEos: true } : {}),
    ...(p.response_format?.type === 'json_object' ? { responseFormat: { type: 'json_object' as const } } : {}),
    ...(p.response_format?.type === 'json_schema'
      ? { responseFormat: { type: 'json_schema' as const, schema: p.response_format.json_schema.schema } }
      : {}),
    ...(logprobs !== undefined ? { logprobs } : {}),
    ...(signal ? { signal } : {}),
  };
}
