/**
 * Budget routing (`mode: "auto"`): predict each mode's time to first token and mean inter-token latency from live
 * measurements, then serve the request with the most accurate mode whose prediction fits its latency budget.
 * Accuracy order is target > speculative > draft (speculative is lossless, but the issue's contract keeps the
 * reference first). When nothing fits, the fastest mode serves it and the decision says `budgetMissed`.
 *
 * The model is deliberately simple and fed only with measured numbers. The engine core runs every decoding stream
 * in every iteration (one batched verify pass, batched draft passes), so a new stream's per-token latency is the
 * iteration time with it in the batch over the tokens its mode makes per iteration, and never less than the
 * iteration time the running streams already take (a draft-mode stream beside speculative ones waits for their
 * verify pass too). Its first token comes out of its target prefill (the draft's in draft mode), which runs in
 * chunks between the others' decode steps while they are running.
 */
import type { LatencyBudget, Mode, RouteDecision } from '../types.ts';
import { chooseK, expectedTokens, type StepCosts } from './adaptive-k.ts';

/** Per-token allowance of a stream without an ITL budget (reported to the core; best effort). */
export const UNBUDGETED_ITL_MS = 200;

export interface Prediction {
  ttftMs: number;
  itlMs: number;
}

export interface LiveLoad {
  /** Streams decoding now (not counting this one) and waiting for a slot. */
  running: number;
  queued: number;
  maxRunning: number;
  /** Measured wall time of a recent decode iteration (0 when nothing decodes). */
  iterationMs: number;
  /** Worker time per iteration beyond the forward passes (sampling, verification, cache bookkeeping). */
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

export function predict(mode: Mode, promptTokens: number, costs: StepCosts, load: LiveLoad): Prediction {
  const c = costs.ratio() ?? 0.1;
  const rows = Math.min(load.running, load.maxRunning - 1) + 1;
  const { stepMs, tokensPerStep } = stepCost(mode, costs, { ...load, rows });
  const iterationMs = Math.max(stepMs, load.running > 0 ? load.iterationMs : 0);
  const queueMs = load.running >= load.maxRunning ? ((load.queued + 1) / load.maxRunning) * load.streamMs : 0;
  const prefillPerToken = load.prefillMsPerToken * (mode === 'draft' ? c : 1);
  // While others decode, each prefill chunk waits for one of their iterations.
  const chunks = load.running > 0 ? Math.ceil(promptTokens / load.prefillChunk) : 0;
  const prefillMs = promptTokens * prefillPerToken + chunks * load.iterationMs;
  return { ttftMs: queueMs + prefillMs + load.overheadMs, itlMs: iterationMs / tokensPerStep };
}

/** One decode iteration of `rows` streams of `mode` (passes plus overhead) and the tokens each is expected to make. */
export function stepCost(
  mode: Mode,
  costs: StepCosts,
  load: Pick<LiveLoad, 'alpha' | 'maxK' | 'overheadMs'> & { rows: number },
): { stepMs: number; tokensPerStep: number } {
  const { rows } = load;
  if (mode === 'target') return { stepMs: costs.target(rows, 1) + load.overheadMs, tokensPerStep: 1 };
  if (mode === 'draft') return { stepMs: costs.draft(rows) + load.overheadMs, tokensPerStep: 1 };
  const k = chooseK(new Array<number>(rows).fill(load.alpha), costs, load.maxK, { minK: 0, overheadMs: load.overheadMs });
  return { stepMs: costs.round(k, { target: rows, draft: rows }) + load.overheadMs, tokensPerStep: expectedTokens(load.alpha, k) };
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
