/**
 * Budget routing (`mode: "auto"`): predict each mode's time to first token and mean inter-token latency from live
 * measurements, then serve the request with the most accurate mode whose prediction fits its latency budget.
 * Accuracy order is target > speculative > draft (speculative is lossless, but the contract keeps the
 * reference first). When nothing fits, the fastest mode serves it and the decision says `budgetMissed`.
 *
 * The model is deliberately simple and fed only with measured numbers: one worker serves the running streams
 * round-robin, so each of our steps also waits for one step of every other running stream.
 */
import type { LatencyBudget, Mode, RouteDecision } from '../types.ts';
import { chooseK, expectedTokens, type StepCosts } from './adaptive-k.ts';

export interface Prediction {
  ttftMs: number;
  itlMs: number;
}

export interface LiveLoad {
  /** Streams decoding now (not counting this one) and waiting for a slot. */
  running: number;
  queued: number;
  maxRunning: number;
  /** Mean duration of one worker step of any stream (what we wait for per other running stream). */
  stepMs: number;
  /** Mean lifetime of an admitted stream (queue estimate when all slots are busy). */
  streamMs: number;
  /** Prefill cost per prompt token on the target (the draft's is scaled by the cost ratio). */
  prefillMsPerToken: number;
  alpha: number;
  maxK: number;
  prefillChunk: number;
}

export const ACCURACY_ORDER: readonly Mode[] = ['target', 'speculative', 'draft'];

export function predict(mode: Mode, promptTokens: number, costs: StepCosts, load: LiveLoad): Prediction {
  const others = Math.min(load.running, load.maxRunning - 1) * load.stepMs;
  const c = costs.ratio() ?? 0.1;
  const t1 = costs.target(1);
  let stepMs: number, tokensPerStep: number, prefillPerToken: number;
  if (mode === 'target') {
    stepMs = t1; tokensPerStep = 1; prefillPerToken = load.prefillMsPerToken;
  } else if (mode === 'draft') {
    stepMs = costs.draftMs; tokensPerStep = 1; prefillPerToken = load.prefillMsPerToken * c;
  } else {
    const k = chooseK(load.alpha, costs, load.maxK);
    stepMs = k * costs.draftMs + costs.target(k + 1);
    tokensPerStep = expectedTokens(load.alpha, k);
    prefillPerToken = load.prefillMsPerToken * (1 + c);
  }
  const queueMs = load.running >= load.maxRunning ? ((load.queued + 1) / load.maxRunning) * load.streamMs : 0;
  const chunks = Math.ceil(Math.max(0, promptTokens - 1) / load.prefillChunk);
  const prefillMs = Math.max(0, promptTokens - 1) * prefillPerToken + chunks * others;
  return { ttftMs: queueMs + prefillMs + stepMs + others, itlMs: (stepMs + others) / tokensPerStep };
}

const fits = (p: Prediction, b: LatencyBudget) => (b.ttftMs === undefined || p.ttftMs <= b.ttftMs) && (b.itlMs === undefined || p.itlMs <= b.itlMs);

/** The most accurate available mode whose prediction fits; else the fastest, flagged. */
export function route(budget: LatencyBudget, predictions: Partial<Record<Mode, Prediction>>): RouteDecision {
  const modes = ACCURACY_ORDER.filter((m) => predictions[m]);
  const ok = modes.find((m) => fits(predictions[m]!, budget));
  if (ok) return { mode: ok, budgetMissed: false, predicted: predictions };
  const fastest = [...modes].sort((a, b) => score(predictions[a]!, budget) - score(predictions[b]!, budget))[0]!;
  return { mode: fastest, budgetMissed: true, predicted: predictions };
}

/** How far over budget a prediction is, relative to the budget (0 = fits). */
function score(p: Prediction, b: LatencyBudget): number {
  const over = (x: number, limit?: number) => (limit === undefined ? 0 : Math.max(0, x / limit - 1));
  return over(p.ttftMs, b.ttftMs) + over(p.itlMs, b.itlMs);
}
