import type { DoneEvent, RouteDecision } from '../engine/index.ts';
import { round, summarize } from '../lib/stats.ts';
import type { Usage, WireRoute, WireSpeculative, WireTimings } from '../protocol/index.ts';

/**
 * A finished stream's figures in wire form (WebSocket `done`, HTTP `specd`, recent streams, JSONL log).
 *
 * ITL: the engine reports the gap before each token after the first as the consumer saw it, so the tokens of
 * one speculative step (1..k+1 tokens handed over together) carry gaps of ~0 and the step's wait sits on its
 * first token. The percentiles are taken over that series as is: p50 shows how often tokens arrive "for free",
 * p95/p99/max show the real waits. (vLLM / SGLang benchmarks instead spread a step's interval evenly over its
 * tokens; mean ITL is the same either way.)
 */
export interface StreamStatsWire {
  usage: Usage;
  timings: WireTimings;
  speculative: WireSpeculative;
  route?: WireRoute;
}

export function wireStats(done: DoneEvent): StreamStatsWire {
  const t = done.timings;
  const itl = summarize(t.itlMs);
  const s = done.speculative;
  return {
    usage: {
      prompt_tokens: done.promptTokens,
      completion_tokens: done.completionTokens,
      total_tokens: done.promptTokens + done.completionTokens,
    },
    timings: {
      queue_ms: round(t.queueMs),
      ttft_ms: round(t.ttftMs),
      itl_ms: { mean: round(itl.mean), p50: round(itl.p50), p95: round(itl.p95), p99: round(itl.p99), max: round(itl.max) },
      e2e_ms: round(t.e2eMs),
      tokens_per_second: t.e2eMs > 0 ? round((done.completionTokens * 1000) / t.e2eMs, 2) : 0,
    },
    speculative: {
      mean_k: s.meanK === null ? null : round(s.meanK),
      proposed: s.proposed,
      accepted: s.accepted,
      acceptance_rate: s.acceptanceRate === null ? null : round(s.acceptanceRate, 4),
      mean_accepted_length: s.meanAcceptedLength === null ? null : round(s.meanAcceptedLength),
    },
    ...(done.route ? { route: wireRoute(done.route) } : {}),
  };
}

export function wireRoute(r: RouteDecision): WireRoute {
  return {
    mode: r.mode,
    budget_missed: r.budgetMissed,
    predicted: Object.fromEntries(Object.entries(r.predicted).map(([m, p]) => [m, { ttft_ms: round(p.ttftMs), itl_ms: round(p.itlMs) }])),
  };
}

/** A DoneEvent for a stream cancelled while it was still queued (the engine throws instead of starting it). */
export function cancelledBeforeStart(elapsedMs: number): DoneEvent {
  return {
    type: 'done',
    finishReason: 'cancelled',
    promptTokens: 0,
    completionTokens: 0,
    text: '',
    timings: {
      queueMs: elapsedMs,
      prefillMs: 0,
      ttftMs: 0,
      itlMs: [],
      e2eMs: elapsedMs,
      decode: { draftMs: 0, draftPasses: 0, targetMs: 0, targetPasses: 0, targetTokens: 0 },
    },
    speculative: {
      drafts: 0,
      proposed: 0,
      accepted: 0,
      acceptanceRate: null,
      meanAcceptedLength: null,
      meanK: null,
      rejections: 0,
      acceptedPerPosition: [],
    },
  };
}
