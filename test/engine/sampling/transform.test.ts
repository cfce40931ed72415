import { describe, expect, it } from 'vitest';
import { argmax, createRng, toProbs, type Rng } from '../../../src/engine/sampling/index.ts';
import type { SamplingParams } from '../../../src/engine/types.ts';

const OFF: SamplingParams = { temperature: 1, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 };
const params = (p: Partial<SamplingParams>): SamplingParams => ({ ...OFF, ...p });

function softmax(xs: ArrayLike<number>, t = 1): number[] {
  const arr = Array.from(xs, (x) => x / t);
  const m = arr.reduce((a, b) => Math.max(a, b), -Infinity);
  const e = arr.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

const support = (p: ArrayLike<number>) => Array.from(p).flatMap((x, i) => (x > 0 ? [i] : []));
/** Support ignoring float32 subnormals (< 1e-38), whose exact rounding to zero differs between any two correct paths. */
const mainSupport = (p: ArrayLike<number>) => Array.from(p).flatMap((x, i) => (x > 1e-38 ? [i] : []));
const sum = (p: ArrayLike<number>) => Array.from(p).reduce((a, b) => a + b, 0);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `index ${i}`).toBeLessThan(tol);
}

/** The specification written the obvious way (float64, full sort); the selection-based implementation must agree. */
function reference(logits: Float32Array, p: SamplingParams, history: number[] | null): number[] {
  const l = Array.from(logits, (x) => (Number.isNaN(x) ? -Infinity : x));
  if (history && p.repetitionPenalty !== 1) {
    for (const id of new Set(history)) l[id] = logits[id]! > 0 ? logits[id]! / p.repetitionPenalty : logits[id]! * p.repetitionPenalty;
  }
  if (p.temperature === 0) {
    const at = l.indexOf(l.reduce((a, b) => Math.max(a, b), -Infinity));
    return l.map((_, i) => (i === at ? 1 : 0));
  }
  let probs = softmax(l, p.temperature);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let keep = new Set(order);
  const renorm = () => {
    const s = sum(probs.filter((_, i) => keep.has(i)));
    probs = probs.map((x, i) => (keep.has(i) ? x / s : 0));
  };
  if (p.topK > 0 && p.topK < l.length) {
    const kth = probs[order[p.topK - 1]!]!;
    keep = new Set(order.filter((i) => probs[i]! >= kth));
    renorm();
  }
  if (p.topP < 1) {
    let acc = 0;
    const kept: number[] = [];
    for (const i of order) {
      if (!keep.has(i)) continue;
      kept.push(i);
      acc += probs[i]!;
      if (acc >= p.topP) break;
    }
    keep = new Set(kept);
    renorm();
  }
  if (p.minP > 0) {
    const pmax = probs.reduce((a, b) => Math.max(a, b), 0);
    keep = new Set(order.filter((i) => keep.has(i) && probs[i]! >= p.minP * pmax));
    renorm();
  }
  // What a Float32Array can hold: float64 probabilities below ~1e-45 are 0 in any float32 implementation.
  return probs.map(Math.fround);
}

function randomLogits(rng: Rng, n: number, scale: number): Float32Array {
  const l = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Sum of uniforms: roughly normal, with a few tokens pushed well above the rest as in real LM rows.
    l[i] = (rng.next() + rng.next() + rng.next() - 1.5) * scale + (rng.next() < 0.01 ? 3 * scale : 0);
  }
  return l;
}

describe('argmax', () => {
  it('returns the lowest index on ties, relative to the offset', () => {
    expect(argmax(new Float32Array([1, 3, 3, 2]))).toBe(1);
    const batch = new Float32Array([9, 9, 9, /* row 1: */ 0, 5, 5, /* row 2: */ 1, 1, 7]);
    expect(argmax(batch, 3, 3)).toBe(1);
    expect(argmax(batch, 6, 3)).toBe(2);
    expect(argmax(batch, 6)).toBe(2);
  });

  it('ignores NaN and handles all -Infinity rows', () => {
    expect(argmax(new Float32Array([Number.NaN, 1, 2]))).toBe(2);
    expect(argmax(new Float32Array([-Infinity, -Infinity]))).toBe(0);
    expect(() => argmax(new Float32Array(3), 2, 2)).toThrow(RangeError);
  });
});

describe('toProbs: single transforms', () => {
  const base = [0.5, 0.25, 0.15, 0.1];
  // Shuffled so that nothing relies on sorted input.
  const perm = [2, 0, 3, 1];
  const logits = new Float32Array(perm.map((i) => Math.log(base[i]!)));
  /** The surviving tokens, named by their unfiltered probability, largest first. */
  const keptBase = (p: Float32Array) =>
    support(p)
      .map((i) => base[perm[i]!]!)
      .sort((a, b) => b - a);

  it('with every filter off it is the softmax', () => {
    expectClose(
      toProbs(logits, OFF, null),
      perm.map((i) => base[i]!),
    );
  });

  it('temperature < 1 sharpens and > 1 flattens, as softmax(l / T)', () => {
    const l = new Float32Array([2, 1, 0, -1]);
    const sharp = toProbs(l, params({ temperature: 0.5 }), null);
    const flat = toProbs(l, params({ temperature: 2 }), null);
    expectClose(sharp, softmax(l, 0.5));
    expectClose(flat, softmax(l, 2));
    const plain = softmax(l);
    expect(sharp[0]).toBeGreaterThan(plain[0]!);
    expect(flat[0]).toBeLessThan(plain[0]!);
    expect(sharp[3]).toBeLessThan(plain[3]!);
  });

  it('temperature 0 is a one-hot at the argmax, lowest index on ties', () => {
    expect(Array.from(toProbs(new Float32Array([1, 4, 2, 4]), params({ temperature: 0 }), null))).toEqual([0, 1, 0, 0]);
    expect(Array.from(toProbs(logits, params({ temperature: 0, topK: 1, topP: 0.1 }), null))).toEqual([0, 1, 0, 0]);
  });

  it('a temperature whose inverse overflows (5e-324, the smallest double) is the T → 0 limit, not NaN', () => {
    for (const temperature of [5e-324, 1e-310]) {
      expect(Array.from(toProbs(new Float32Array([1, 4, 2, 3]), params({ temperature }), null))).toEqual([0, 1, 0, 0]);
      expect(Array.from(toProbs(new Float32Array([1, 4, 2, 4]), params({ temperature }), null))).toEqual([0, 0.5, 0, 0.5]);
    }
  });

  it('top-k keeps the k largest, renormalised', () => {
    const p = toProbs(logits, params({ topK: 2 }), null);
    expect(support(p)).toEqual([1, 3]); // base 0.5 and 0.25
    expectClose(p, [0, 2 / 3, 0, 1 / 3]);
    expect(support(toProbs(logits, params({ topK: 1 }), null))).toEqual([1]);
    expect(support(toProbs(logits, params({ topK: 4 }), null))).toHaveLength(4);
    expect(support(toProbs(logits, params({ topK: 99 }), null))).toHaveLength(4);
  });

  it('top-k keeps every token tied with the k-th (order-independent, as HF)', () => {
    const p = toProbs(new Float32Array([3, 1, 2, 2, 0]), params({ topK: 2 }), null);
    expect(support(p)).toEqual([0, 2, 3]);
  });

  it('top-p keeps the smallest descending prefix whose mass reaches p', () => {
    const kept = (topP: number) => keptBase(toProbs(logits, params({ topP }), null));
    expect(kept(0.3)).toEqual([0.5]);
    expect(kept(0.5)).toEqual([0.5]); // reached exactly
    expect(kept(0.51)).toEqual([0.5, 0.25]);
    expect(kept(0.75)).toEqual([0.5, 0.25]); // 0.5 + 0.25 reaches 0.75 despite float32 rounding
    expect(kept(0.76)).toEqual([0.5, 0.25, 0.15]);
    expect(kept(0.95)).toHaveLength(4);
    expect(kept(0)).toEqual([0.5]);
    expectClose(toProbs(logits, params({ topP: 0.6 }), null), [0, 2 / 3, 0, 1 / 3]);
  });

  it('min-p keeps tokens with p >= min_p · p_max', () => {
    const kept = (minP: number) => keptBase(toProbs(logits, params({ minP }), null));
    expect(kept(0.2)).toEqual([0.5, 0.25, 0.15, 0.1]); // threshold 0.1, inclusive
    expect(kept(0.25)).toEqual([0.5, 0.25, 0.15]);
    expect(kept(0.5)).toEqual([0.5, 0.25]);
    expect(kept(0.51)).toEqual([0.5]);
    expect(kept(1)).toEqual([0.5]);
  });

  it('repetition penalty divides positive and multiplies negative logits, once per distinct token', () => {
    const l = new Float32Array([2, -2, 1, 0.5, 0]);
    const p = toProbs(l, params({ repetitionPenalty: 2 }), [0, 1, 1, 1, 4, 0]);
    expectClose(p, softmax([1, -4, 1, 0.5, 0]));
    expectClose(toProbs(l, params({ repetitionPenalty: 1 }), [0, 1]), softmax(l));
    // A penalty < 1 rewards repetition, symmetrically.
    expectClose(toProbs(l, params({ repetitionPenalty: 0.5 }), Int32Array.from([0, 1])), softmax([4, -1, 1, 0.5, 0]));
  });

  it('repetition penalty applies before greedy argmax', () => {
    const l = new Float32Array([2, 1.5, -3]);
    expect(Array.from(toProbs(l, params({ temperature: 0, repetitionPenalty: 2 }), [0]))).toEqual([0, 1, 0]);
  });
});

describe('toProbs: combined and contract', () => {
  it('applies penalty → temperature → top-k → top-p → min-p in that order', () => {
    const l = new Float32Array([4, 3.5, 3, 2, 1, 0, -1, -2]);
    const p = params({ temperature: 0.7, topK: 5, topP: 0.9, minP: 0.05, repetitionPenalty: 1.3 });
    const history = [0, 6];
    expectClose(toProbs(l, p, history), reference(l, p, history));
  });

  it('agrees with the full-sort reference on random rows and parameters', () => {
    const rng = createRng(2024);
    for (let trial = 0; trial < 300; trial++) {
      const n = trial % 3 === 0 ? 2000 : 8 + Math.floor(rng.next() * 200);
      const l = randomLogits(rng, n, 1 + rng.next() * 8);
      const p: SamplingParams = {
        temperature: [0, 0.3, 0.7, 1, 1.5][trial % 5]!,
        topK: rng.next() < 0.5 ? 0 : 1 + Math.floor(rng.next() * n),
        topP: rng.next() < 0.3 ? 1 : rng.next(),
        minP: rng.next() < 0.5 ? 0 : rng.next() * 0.3,
        repetitionPenalty: rng.next() < 0.5 ? 1 : 1 + rng.next(),
      };
      const history = Array.from({ length: 10 }, () => Math.floor(rng.next() * n));
      const got = toProbs(l, p, history);
      const want = reference(l, p, history);
      expect(mainSupport(got), `trial ${trial} ${JSON.stringify(p)}`).toEqual(mainSupport(want));
      expectClose(got, want, 1e-5);
    }
  });

  it('sums to 1, does not touch the logits, and writes into (and returns) `out`', () => {
    const rng = createRng(9);
    const l = randomLogits(rng, 5000, 4);
    const before = Float32Array.from(l);
    const out = new Float32Array(5000).fill(123); // stale content must not leak through
    const p = params({ temperature: 0.8, topK: 300, topP: 0.9, minP: 0.01, repetitionPenalty: 1.2 });
    const res = toProbs(l, p, [1, 2, 3], out);
    expect(res).toBe(out);
    expect(l).toEqual(before);
    expect(sum(res)).toBeCloseTo(1, 5);
    for (const x of res) expect(x >= 0 && x <= 1).toBe(true);
    for (const q of [OFF, params({ temperature: 0 }), params({ topP: 0.5 }), params({ minP: 0.2 })]) {
      expect(sum(toProbs(l, q, null, out))).toBeCloseTo(1, 5);
      expect(l).toEqual(before);
    }
  });

  it('handles the rows real models produce: 152k vocabulary, masked tokens, NaN', () => {
    const rng = createRng(5);
    const n = 152_000;
    const l = randomLogits(rng, n, 6);
    for (let i = 0; i < n; i += 7) l[i] = -Infinity;
    l[3] = Number.NaN;
    const out = new Float32Array(n);
    for (const p of [OFF, params({ topP: 0.9 }), params({ topK: 50, topP: 0.95, temperature: 0.7 }), params({ minP: 0.05 })]) {
      const got = toProbs(l, p, [10, 20, 30], out);
      expect(sum(got)).toBeCloseTo(1, 4);
      expect(got[3]).toBe(0);
      expect(got[7]).toBe(0);
    }
    // Spot-check top-p on the big row against the reference (the slow part is the reference's sort).
    const p = params({ topP: 0.8, temperature: 1.3 });
    expect(mainSupport(toProbs(l, p, null, out))).toEqual(mainSupport(reference(l, p, null)));
  });

  it('edge rows: +Infinity shares the mass, all -Infinity throws, bad params throw', () => {
    expect(Array.from(toProbs(new Float32Array([1, Infinity, 0, Infinity]), OFF, null))).toEqual([0, 0.5, 0, 0.5]);
    expect(() => toProbs(new Float32Array([-Infinity, -Infinity]), OFF, null)).toThrow(RangeError);
    const l = new Float32Array([1, 2]);
    expect(() => toProbs(l, params({ temperature: -1 }), null)).toThrow(RangeError);
    expect(() => toProbs(l, params({ topP: 1.5 }), null)).toThrow(RangeError);
    expect(() => toProbs(l, params({ topK: 1.5 }), null)).toThrow(RangeError);
    expect(() => toProbs(l, params({ minP: -0.1 }), null)).toThrow(RangeError);
    expect(() => toProbs(l, params({ repetitionPenalty: 0 }), null)).toThrow(RangeError);
    expect(() => toProbs(l, params({ repetitionPenalty: 2 }), [5])).toThrow(RangeError);
    expect(() => toProbs(l, OFF, null, new Float32Array(3))).toThrow(RangeError);
    expect(() => toProbs(l, OFF, null, l)).toThrow(RangeError);
  });
});

describe('presence, frequency and logit bias (OpenAI semantics)', () => {
  const logits = Float32Array.from([1, 2, 3, 0.5, -1]);

  it('subtract presence once and frequency per occurrence, counting only the completion', () => {
    // history = prompt [2, 2] + completion [0, 0, 1]: token 2 is in the prompt only, so it is not penalised.
    const history = [2, 2, 0, 0, 1];
    const p = toProbs(logits, params({ presencePenalty: 0.5, frequencyPenalty: 0.25 }), history, undefined, 2);
    expectClose(p, softmax([1 - 0.5 - 0.5, 2 - 0.5 - 0.25, 3, 0.5, -1]));
  });

  it('adds logit_bias; -100 leaves no reachable mass, +100 takes it all', () => {
    expectClose(toProbs(logits, params({ logitBias: [[4, 2]] }), null), softmax([1, 2, 3, 0.5, 1]));
    expect(toProbs(logits, params({ logitBias: [[2, -100]] }), null)[2]).toBeLessThan(1e-40);
    expect(toProbs(logits, params({ logitBias: [[4, 100]] }), null)[4]).toBeCloseTo(1, 6);
    // greedy follows the transformed logits
    expect(argmax(toProbs(logits, params({ temperature: 0, logitBias: [[0, 2.5]] }), null))).toBe(0);
  });

  it('apply after the repetition penalty (which counts the prompt too)', () => {
    const p = toProbs(logits, params({ repetitionPenalty: 2, presencePenalty: 1 }), [1, 1], undefined, 1);
    expectClose(p, softmax([1, 2 / 2 - 1, 3, 0.5, -1]));
  });

  it('refuses values outside the OpenAI ranges and ids outside the vocabulary', () => {
    expect(() => toProbs(logits, params({ presencePenalty: 2.5 }), [], undefined, 0)).toThrow(RangeError);
    expect(() => toProbs(logits, params({ logitBias: [[1, 101]] }), null)).toThrow(RangeError);
    expect(() => toProbs(logits, params({ logitBias: [[5, 1]] }), null)).toThrow(RangeError);
  });
});
