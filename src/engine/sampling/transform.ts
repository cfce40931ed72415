import type { SamplingParams } from '../types.ts';
import { argmax } from './argmax.ts';
import { kthLargest, massThreshold } from './threshold.ts';

export { argmax };

/*
 * Speculative sampling is exact only if draft and target distributions are shaped by the same function, so this is
 * the one place a logits row becomes a distribution. The order follows HF transformers / vLLM: repetition penalty →
 * presence / frequency penalties → logit bias → temperature → top-k → top-p → min-p → renormalise. The repetition
 * penalty counts the prompt too (as HF's does); presence and frequency count the completion only (as OpenAI's and
 * vLLM's do), which is why the history comes with the index where the completion starts.
 *
 * Every filter keeps a top set of one ordering (temperature is monotonic), so after exponentiating relative to the
 * max logit, e_i = exp((l_i − max)/T) with e = 1 exactly at the argmax, each filter reduces to a threshold:
 *   top-k: the k-th largest logit, found by selection before exponentiating (so only survivors pay for exp);
 *   top-p: the weight at which the descending mass first reaches p of the survivors' mass, again by selection;
 *   min-p: p_i >= min_p · p_max  ⇔  e_i >= min_p, because e_max = 1, so it needs no search at all.
 * Thresholds rather than counts keep every token tied with the last one admitted (as HF's top-k does), so the result
 * never depends on token order. The argmax always survives.
 */

/** Boundaries that are exact in decimal (0.5 + 0.25 vs top_p 0.75; p = 0.1 vs min_p 0.2 · 0.5) are only approximately
 *  so after float32 exp; within this relative distance a boundary counts as met, so rounding does not decide. */
const BOUNDARY_TOLERANCE = 1e-6;

function check(params: SamplingParams): void {
  const { temperature, topP, topK, minP, repetitionPenalty } = params;
  if (!(temperature >= 0) || temperature === Infinity) throw new RangeError(`temperature must be finite and >= 0, got ${temperature}`);
  if (!(topP >= 0 && topP <= 1)) throw new RangeError(`topP must be in [0, 1], got ${topP}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer >= 0, got ${topK}`);
  if (!(minP >= 0 && minP <= 1)) throw new RangeError(`minP must be in [0, 1], got ${minP}`);
  if (!(repetitionPenalty > 0) || repetitionPenalty === Infinity) {
    throw new RangeError(`repetitionPenalty must be finite and > 0, got ${repetitionPenalty}`);
  }
  for (const [name, v] of [
    ['presencePenalty', params.presencePenalty ?? 0],
    ['frequencyPenalty', params.frequencyPenalty ?? 0],
  ] as const) {
    if (!(v >= -2 && v <= 2)) throw new RangeError(`${name} must be in [-2, 2], got ${v}`);
  }
  for (const [id, b] of params.logitBias ?? []) {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`logitBias token ${id} is not a token id`);
    if (!(b >= -100 && b <= 100)) throw new RangeError(`logitBias for token ${id} must be in [-100, 100], got ${b}`);
  }
}

/** Whether any history-dependent or additive transform is on (greedy callers may then skip the plain argmax). */
export function reshapes(params: SamplingParams): boolean {
  return (
    params.repetitionPenalty !== 1 ||
    (params.presencePenalty ?? 0) !== 0 ||
    (params.frequencyPenalty ?? 0) !== 0 ||
    (params.logitBias?.length ?? 0) > 0
  );
}

/** OpenAI's presence and frequency penalties over the completion's tokens, subtracted from `dst`. */
function penaliseCompletion(
  dst: Float32Array,
  history: readonly number[] | Int32Array,
  from: number,
  presence: number,
  frequency: number,
): void {
  const counts = new Map<number, number>();
  for (let j = Math.max(0, from); j < history.length; j++) {
    const id = history[j]!;
    if (!(id >= 0 && id < dst.length) || !Number.isInteger(id))
      throw new RangeError(`history token ${id} outside vocabulary of ${dst.length}`);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  for (const [id, c] of counts) dst[id] = dst[id]! - presence - frequency * c;
}

function addBias(dst: Float32Array, bias: readonly (readonly [number, number])[]): void {
  for (const [id, b] of bias) {
    if (id >= dst.length) throw new RangeError(`logitBias token ${id} outside vocabulary of ${dst.length}`);
    dst[id] = dst[id]! + b;
  }
}

/**
 * HF's RepetitionPenaltyLogitsProcessor: a logit of a token already in `history` is divided by the penalty when
 * positive and multiplied when negative, so a penalty > 1 always makes the token less likely. Reading the original
 * logit from `src` makes repeated ids idempotent, which applies the penalty once per distinct id without a set.
 */
function penalise(src: Float32Array, dst: Float32Array, history: readonly number[] | Int32Array, penalty: number): void {
  const n = src.length;
  for (let j = 0; j < history.length; j++) {
    const id = history[j]!;
    if (!(id >= 0 && id < n) || !Number.isInteger(id)) throw new RangeError(`history token ${id} outside vocabulary of ${n}`);
    const l = src[id]!;
    dst[id] = l > 0 ? l / penalty : l * penalty;
  }
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * One row of logits → a probability vector of the same length, zero where filtered. `logits` is never written (the
 * caller reuses its buffers); the result goes to `out` when given, which must have the row's length and must not
 * overlap `logits`. `history` (prompt + completion so far) feeds the penalties, and `completionStart` is where its
 * completion begins; pass null when no penalty is on to skip them.
 *
 * temperature 0 returns a one-hot at the (penalised) argmax, lowest index on ties, so callers that take argmax
 * directly and callers that sample this vector agree. NaN logits count as -Infinity; +Infinity logits share all the
 * mass equally; a row with nothing above -Infinity is an error.
 */
export function toProbs(
  logits: Float32Array,
  params: SamplingParams,
  history: readonly number[] | Int32Array | null,
  out?: Float32Array,
  completionStart = 0,
): Float32Array {
  check(params);
  const n = logits.length;
  if (n === 0) throw new RangeError('toProbs: empty logits row');
  const w = out ?? new Float32Array(n);
  if (w.length !== n) throw new RangeError(`toProbs: out has length ${w.length}, logits ${n}`);
  if (overlaps(w, logits)) throw new RangeError('toProbs: out must not overlap logits');

  w.set(logits);
  if (history && params.repetitionPenalty !== 1) penalise(logits, w, history, params.repetitionPenalty);
  const presence = params.presencePenalty ?? 0,
    frequency = params.frequencyPenalty ?? 0;
  if (history && (presence !== 0 || frequency !== 0)) penaliseCompletion(w, history, completionStart, presence, frequency);
  if (params.logitBias && params.logitBias.length > 0) addBias(w, params.logitBias);

  if (params.temperature === 0) {
    const at = argmax(w);
    w.fill(0);
    w[at] = 1;
    return w;
  }

  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = w[i]!;
    if (x !== x) w[i] = -Infinity;
    else if (x > max) max = x;
  }
  if (max === -Infinity) throw new RangeError('toProbs: no token has a finite logit');
  if (max === Infinity) return uniformOverInfinite(w);

  // top-k: a logit floor. Skipped when it could not remove anything.
  const floor = params.topK > 0 && params.topK < n ? kthLargest(w, params.topK) : -Infinity;

  // A temperature so small that 1/T overflows (5e-324 is a valid request) makes invT Infinity: the top logits then
  // keep weight 1 (0 × Infinity would be NaN) and every other one 0, the limit of softmax as T → 0.
  const invT = 1 / params.temperature;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = w[i]!;
    if (x >= floor) {
      // Summing the float32-rounded values keeps `sum` consistent with what the buffer holds.
      const e = x === max ? 1 : Math.fround(Math.exp((x - max) * invT));
      w[i] = e;
      sum += e;
    } else w[i] = 0;
  }

  // cut: a weight threshold in e-space, where the argmax has weight exactly 1.
  let cut = 0;
  if (params.topP < 1) cut = massThreshold(w, sum, params.topP * sum * (1 - BOUNDARY_TOLERANCE));
  const minCut = params.minP * (1 - BOUNDARY_TOLERANCE);
  if (minCut > cut) cut = minCut;
  if (cut > 1) cut = 1;

  if (cut > 0) {
    sum = 0;
    for (let i = 0; i < n; i++) {
      const e = w[i]!;
      if (e >= cut) sum += e;
      else w[i] = 0;
    }
  }
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) w[i] = w[i]! * inv;
  return w;
}

function uniformOverInfinite(w: Float32Array): Float32Array {
  let count = 0;
  for (let i = 0; i < w.length; i++) if (w[i] === Infinity) count++;
  const p = 1 / count;
  for (let i = 0; i < w.length; i++) w[i] = w[i] === Infinity ? p : 0;
  return w;
}
