import { z } from 'zod';
import { checkOneInput, type Limits, messagesSchema, promptSchema } from './params.ts';

/**
 * POST /tokenize and POST /detokenize, in vLLM's shapes: a completion-style body (`prompt`) or a chat-style one
 * (`messages`) → the ids generation would run; ids → text.
 */
export function tokenizeBodySchema(l: Limits) {
  return z
    .object({
      model: z.string().nullish(),
      prompt: promptSchema(l).optional(),
      messages: messagesSchema(l).optional(),
      /** Raw prompts: the tokenizer's special tokens (BOS); default true, as generation encodes them. */
      add_special_tokens: z.boolean().nullish(),
      /** Chat: the template's opening of the assistant turn; default true, as generation renders it. */
      add_generation_prompt: z.boolean().nullish(),
    })
    .passthrough()
    .superRefine((b, ctx) => checkOneInput(b, ctx, 'a tokenize request'));
}

export function detokenizeBodySchema(l: Limits) {
  const maxIds = Math.ceil(l.maxPromptChars / 4) + l.maxCompletionTokens;
  return z
    .object({
      model: z.string().nullish(),
      tokens: z
        .array(z.number().int('must be an integer').min(0, 'must be ≥ 0'), { invalid_type_error: 'must be an array of token ids' })
        .max(maxIds, `at most ${maxIds} token ids`),
    })
    .passthrough();
}

export type TokenizeBody = z.output<ReturnType<typeof tokenizeBodySchema>>;

export interface TokenizeResponse {
  count: number;
  /** The target's context length. */
  max_model_len: number;
  tokens: number[];
}

export interface DetokenizeResponse {
  prompt: string;
}
