import { z } from 'zod';
import {
  chatLogprobsShape,
  checkBudget,
  checkLogprobs,
  checkOneInput,
  type Limits,
  MAX_ID_LENGTH,
  messagesSchema,
  ModeSchema,
  promptSchema,
  samplingShape,
} from './params.ts';
import { FinishReasonSchema, RouteSchema, SpeculativeSchema, TimingsSchema, TokenSourceSchema, UsageSchema } from './stats.ts';

/**
 * The WebSocket protocol at GET /v1/stream: JSON text frames discriminated on `type`.
 * These schemas are its single definition (docs/protocol.md describes them; a test keeps the two in step).
 */

export const StreamIdSchema = z
  .string()
  .min(1, 'must be a non-empty string')
  .max(MAX_ID_LENGTH, `must be at most ${MAX_ID_LENGTH} characters`);

// ── client → server ──────────────────────────────────────────────────────────────────────────────────────────

export function generateFrameSchema(l: Limits) {
  return z
    .object({
      type: z.literal('generate'),
      id: StreamIdSchema,
      prompt: promptSchema(l).optional(),
      messages: messagesSchema(l).optional(),
      ...chatLogprobsShape,
      ...samplingShape(l),
    })
    .strict();
}

export const CancelFrameSchema = z.object({ type: z.literal('cancel'), id: StreamIdSchema }).strict();

export const CLIENT_FRAME_TYPES = ['generate', 'cancel'] as const;

/** A client frame: `generate` (exactly one of prompt / messages) or `cancel`. */
export function clientFrameSchema(l: Limits) {
  return z.discriminatedUnion('type', [generateFrameSchema(l), CancelFrameSchema]).superRefine((frame, ctx) => {
    if (frame.type !== 'generate') return;
    checkBudget(frame, ctx);
    checkLogprobs(frame, ctx);
    checkOneInput(frame, ctx, 'a generate frame');
  });
}

export type GenerateFrame = z.infer<ReturnType<typeof generateFrameSchema>>;
export type CancelFrame = z.infer<typeof CancelFrameSchema>;
export type ClientFrame = GenerateFrame | CancelFrame;

// ── server → client ──────────────────────────────────────────────────────────────────────────────────────────

export const StartFrameSchema = z.object({
  type: z.literal('start'),
  id: StreamIdSchema,
  /** The model whose distribution the tokens follow: the target's id (the draft's in `draft` mode). */
  model: z.string(),
  prompt_tokens: z.number().int(),
  queue_ms: z.number(),
  mode: ModeSchema,
  seed: z.number().int(),
  /** With mode "auto": the mode the router chose, its predictions and whether the budget could be met. */
  route: RouteSchema.optional(),
});

const TopLogprobSchema = z.object({ id: z.number().int(), text: z.string(), logprob: z.number() });

export const WireTokenSchema = z.object({
  id: z.number().int(),
  text: z.string(),
  source: TokenSourceSchema,
  /** ms since the request was submitted when the engine handed the token over. */
  t_ms: z.number(),
  /** With `logprobs: true`: the target's log-probability of this token (the draft's in draft mode). */
  logprob: z.number().optional(),
  /** With `top_logprobs: N`: the N most likely tokens at this position, most likely first. */
  top_logprobs: z.array(TopLogprobSchema).optional(),
});

/** One frame per engine step: 1..k+1 tokens; `text` is the stream's text delta (may be '' while a stop string is held back). */
export const TokenFrameSchema = z.object({
  type: z.literal('token'),
  id: StreamIdSchema,
  text: z.string(),
  tokens: z.array(WireTokenSchema),
});

export const DoneFrameSchema = z.object({
  type: z.literal('done'),
  id: StreamIdSchema,
  finish_reason: FinishReasonSchema,
  usage: UsageSchema,
  timings: TimingsSchema,
  speculative: SpeculativeSchema,
  route: RouteSchema.optional(),
  /** Present when finish_reason is `error`. */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const ErrorFrameSchema = z.object({
  type: z.literal('error'),
  /** The generation the error belongs to; absent for frame-level problems (bad JSON, binary frame). */
  id: z.string().optional(),
  code: z.string(),
  message: z.string(),
  details: z.record(z.unknown()).optional(),
});

export const ServerFrameSchema = z.discriminatedUnion('type', [StartFrameSchema, TokenFrameSchema, DoneFrameSchema, ErrorFrameSchema]);

export type StartFrame = z.infer<typeof StartFrameSchema>;
export type TokenFrame = z.infer<typeof TokenFrameSchema>;
export type DoneFrame = z.infer<typeof DoneFrameSchema>;
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;
export type ServerFrame = z.infer<typeof ServerFrameSchema>;
