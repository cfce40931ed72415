import { z } from 'zod';

/** Per-stream figures reported in the WebSocket `done` frame and under the `specd` key of HTTP responses. */

export const UsageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

/** mean / p50 / p95 / p99 / max of the stream's inter-token gaps in ms (all 0 with fewer than 2 tokens). */
export const ItlSummarySchema = z.object({
  mean: z.number(),
  p50: z.number(),
  p95: z.number(),
  p99: z.number(),
  max: z.number(),
});

export const TimingsSchema = z.object({
  /** Submission → admission. */
  queue_ms: z.number(),
  /** Submission → first token handed to the transport. */
  ttft_ms: z.number(),
  itl_ms: ItlSummarySchema,
  /** Submission → last event. */
  e2e_ms: z.number(),
  /** completion_tokens ÷ e2e seconds (0 without tokens). */
  tokens_per_second: z.number(),
});

export const SpeculativeSchema = z.object({
  /** Mean draft length over rounds that drafted (null when none did). */
  mean_k: z.number().nullable(),
  proposed: z.number().int(),
  accepted: z.number().int(),
  /** accepted ÷ proposed (null when nothing was proposed). */
  acceptance_rate: z.number().nullable(),
  /** Tokens per target pass over drafting rounds, 1 + accepted ÷ drafts (null without drafts). */
  mean_accepted_length: z.number().nullable(),
});

const PredictionSchema = z.object({ ttft_ms: z.number(), itl_ms: z.number() });
/** The router's decision for a mode "auto" request: the mode it chose, whether the budget could be met, and the
 *  predicted TTFT / mean ITL of every mode it considered. */
export const RouteSchema = z.object({
  mode: z.enum(['speculative', 'target', 'draft']),
  budget_missed: z.boolean(),
  predicted: z.record(PredictionSchema),
});

export const FinishReasonSchema = z.enum(['stop', 'length', 'cancelled', 'error', 'shutdown']);
export const TokenSourceSchema = z.enum(['draft', 'target', 'bonus']);

export type Usage = z.infer<typeof UsageSchema>;
export type WireRoute = z.infer<typeof RouteSchema>;
export type WireTimings = z.infer<typeof TimingsSchema>;
export type WireSpeculative = z.infer<typeof SpeculativeSchema>;
export type WireFinishReason = z.infer<typeof FinishReasonSchema>;
