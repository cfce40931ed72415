/**
 * Budget routing (`mode: "auto"`): predict each mode's time to first token and mean inter-token latency from live
 * measurements, then serve the request with the most accurate mode whose prediction fits its latency budget.
 * Accuracy order is target > speculative > draft (speculative is lossless, but the contract keeps the
 * reference first). When nothing fits, the fastest mode serves it and the decision says `budgetMissed`.
 *
 * The model is deliberately simple and fed only with measured numbers. One worker serves every stream, earliest
 * step deadline first (deadlines.ts), and every running stream always has a step queued, so the worker never idles
 * and shares its time in proportion to 1 / allowance. Per token of ours, the others therefore take our allowance ×
 * their demand (Σ step time / (allowance × tokens per step)) of worker time: a new stream's per-token latency is
 * its own step time per token plus allowance × demand. A budget fits exactly when the total demand stays ≤ 1, which
 * is also when every budgeted stream already running keeps its own budget.
 */
import type { LatencyBudget, Mode, RouteDecision } from '../types.ts';
import { chooseK, expectedTokens, type StepCosts } from './adaptive-k.ts';
import { UNBUDGETED_ITL_MS } from './deadlines.ts';

export interface Prediction {
  ttftMs: number;
  itlMs: number;
}

export interface LiveLoad {
  /** Streams decoding now (not counting this one) and waiting for a slot. */
  running: number;
  queued: number;
  maxRunning: number;
  /** Summed demand of the running streams: the share of the worker's time they need to keep their allowances. */
  demand: number;
  /** Worker time per step beyond the forward passes (sampling, verification, cache rollback), ms. */
  overheadMs: number;
  /** Mean lifetime of an admitted stream (queue estimate when all slots are busy). */
  streamMs: number;
  /** Prefill cost per prompt token on the target (the draft's is scaled by the cost ratio). */
  prefillMsPerToken: number;
  alpha: number;
  maxK: number;
  prefillChunk: number;
}

export const ACCURACY_ORDER: readonly Mode[] = ['target', 'speculative', 'draft'];

/** `allowanceMs`: the new stream's per-token allowance (its ITL budget, else the unbudgeted default). */
export function predict(mode: Mode, promptTokens: number, costs: StepCosts, load: LiveLoad, allowanceMs = UNBUDGETED_ITL_MS): Prediction {
  const c = costs.ratio() ?? 0.1;
  const { stepMs, tokensPerStep } = stepCost(mode, costs, load);
  const waitPerToken = allowanceMs * load.demand;
  const prefillPerToken = load.prefillMsPerToken * (mode === 'target' ? 1 : mode === 'draft' ? c : 1 + c);
  const queueMs = load.running >= load.maxRunning ? ((load.queued + 1) / load.maxRunning) * load.streamMs : 0;
  const chunks = Math.ceil(Math.max(0, promptTokens - 1) / load.prefillChunk);
  const prefillMs = Math.max(0, promptTokens - 1) * prefillPerToken + chunks * (load.overheadMs + waitPerToken);
  return { ttftMs: queueMs + prefillMs + stepMs + waitPerToken, itlMs: stepMs / tokensPerStep + waitPerToken };
}

/** One decode step of `mode` in worker time (passes plus overhead) and the tokens it is expected to make. */
export function stepCost(
  mode: Mode,
  costs: StepCosts,
  load: Pick<LiveLoad, 'alpha' | 'maxK' | 'overheadMs'>,
): { stepMs: number; tokensPerStep: number } {
  if (mode === 'target') return { stepMs: costs.target(1) + load.overheadMs, tokensPerStep: 1 };
  if (mode === 'draft') return { stepMs: costs.draftMs + load.overheadMs, tokensPerStep: 1 };
  const k = chooseK(load.alpha, costs, load.maxK);
  return { stepMs: k * costs.draftMs + costs.target(k + 1) + load.overheadMs, tokensPerStep: expectedTokens(load.alpha, k) };
}

/**
 * A prediction fits when it is within this fraction of the budget. Predictions come from averages (step times,
 * acceptance, the others' demand) and a stream's own latency scatters around them by ~10 %; routing right up to
 * the budget would miss it about half the time.
 */
export const HEADROOM = 0.85;

const fits = (p: Prediction, b: LatencyBudget) =>
  (b.ttftMs === undefined || p.ttftMs <= HEADROOM * b.ttftMs) && (b.itlMs === undefined || p.itlMs <= HEADROOM * b.itlMs);

/** The most accurate available mode whose prediction fits (within HEADROOM of the budget); else the closest, flagged. */
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
