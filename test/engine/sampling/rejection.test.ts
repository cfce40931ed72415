import { describe, expect, it } from 'vitest';
import {
  createRng,
  sampleFrom,
  sampleResidual,
  toProbs,
  verifyToken,
  verifyTokenWith,
  type Rng,
  type Verifier,
} from '../../../src/engine/sampling/index.ts';
import { chiSquareGoodnessOfFit, type GoodnessOfFit } from './chi-square.ts';

const N = 30_000;
const ALPHA = 0.01;

const dist = (xs: number[]) => {
  const s = xs.reduce((a, b) => a + b, 0);
  return new Float32Array(xs.map((x) => x / s));
};

function randomDist(rng: Rng, n: number): Float32Array {
  return dist(Array.from({ length: n }, () => 0.2 + rng.next()));
}

/** Target p and draft q pairs; every p bin with mass expects well over 5 hits at N, as the chi-square test needs. */
function pairs(): Record<string, { p: Float32Array; q: Float32Array; asymmetric: boolean }> {
  const rng = createRng(77);
  const same = randomDist(rng, 12);
  // Realistic: both from toProbs with the same params, the draft's logits a noisy copy of the target's, so top-k
  // leaves each with tokens the other filtered out.
  const target = new Float32Array(16).map((_, i) => Math.sin(i * 1.7) * 1.5);
  const draft = target.map((x) => x + (rng.next() - 0.5) * 2);
  const params = { temperature: 0.9, topP: 1, topK: 12, minP: 0, repetitionPenalty: 1 };
  return {
    'q has mass where p has none': { p: dist([3, 2, 2, 1, 1, 1, 0, 0]), q: dist([1, 1, 1, 1, 1, 1, 1, 1]), asymmetric: true },
    'p has mass where q has none': { p: dist(Array(10).fill(1)), q: dist([6, 5, 4, 3, 2, 0, 0, 0, 0, 0]), asymmetric: true },
    'p equals q': { p: same, q: Float32Array.from(same), asymmetric: false },
    'p and q very different': {
      p: dist([60, 20, 10, 5, 2, 1, 1, 1]),
      q: dist([1, 1, 1, 2, 5, 10, 20, 60]),
      asymmetric: true,
    },
    'disjoint supports': { p: dist([4, 3, 2, 1, 0, 0, 0, 0]), q: dist([0, 0, 0, 0, 1, 2, 3, 4]), asymmetric: true },
    'toProbs draft vs target, 16 tokens': { p: toProbs(target, params, null), q: toProbs(draft, params, null), asymmetric: true },
  };
}

/** Runs the speculative step N times: x ~ q, then verify; the output is x if accepted, else the replacement. */
function simulate(verify: Verifier, p: Float32Array, q: Float32Array, seed: number): { fit: GoodnessOfFit; acceptRate: number } {
  const rng = createRng(seed);
  const scratch = new Float32Array(p.length);
  const counts = new Array<number>(p.length).fill(0);
  let accepted = 0;
  for (let i = 0; i < N; i++) {
    const x = sampleFrom(q, rng);
    const v = verify(p, q, x, rng, scratch);
    if (v.accepted) accepted++;
    counts[v.accepted ? x : v.token]!++;
  }
  return { fit: chiSquareGoodnessOfFit(counts, p), acceptRate: accepted / N };
}

describe('speculative verification reproduces the target distribution', () => {
  const cases = Object.entries(pairs());

  it.each(cases)('%s', (_name, { p, q }) => {
    for (const x of p) if (x > 0) expect(x * N).toBeGreaterThan(50);
    const { fit, acceptRate } = simulate(verifyToken, p, q, 1234);
    expect(fit.impossible).toBe(0); // never a token outside p's support
    expect(fit.pValue).toBeGreaterThan(ALPHA);
    // The acceptance rate is Σ min(p, q) (Leviathan's α); check it within 5 binomial standard deviations.
    const alpha = p.reduce((a, pi, i) => a + Math.min(pi, q[i]!), 0);
    expect(Math.abs(acceptRate - alpha)).toBeLessThan(5 * Math.sqrt((alpha * (1 - alpha)) / N) + 1e-9);
  });

  it('has teeth: resampling from p instead of the residual fails the same check', () => {
    const fromP = verifyTokenWith((p, _q, rng) => sampleFrom(p, rng));
    const results = cases
      .filter(([, c]) => c.asymmetric)
      .map(([name, { p, q }]) => ({ name, pValue: simulate(fromP, p, q, 1234).fit.pValue }));
    expect(
      results.some((r) => r.pValue < ALPHA),
      JSON.stringify(results),
    ).toBe(true);
    expect(results.find((r) => r.name === 'p and q very different')!.pValue).toBeLessThan(1e-6);
  });
});

describe('verifyToken: individual decisions', () => {
  const stub = (...us: number[]): Rng & { calls: number } => {
    const r = { calls: 0, next: () => us[Math.min(r.calls++, us.length - 1)]! };
    return r;
  };
  const LAST_DRAW = 1 - 2 ** -53;

  it('always accepts when p[x] >= q[x], even at the largest possible draw', () => {
    const p = dist([5, 3, 2]);
    expect(verifyToken(p, dist([1, 3, 6]), 0, stub(LAST_DRAW))).toEqual({ accepted: true });
    expect(verifyToken(p, Float32Array.from(p), 1, stub(LAST_DRAW))).toEqual({ accepted: true });
  });

  it('accepts with probability p[x]/q[x] otherwise', () => {
    const p = dist([1, 3]); // p[0] = 0.25
    const q = dist([1, 1]); // q[0] = 0.5 → accept iff u < 0.5
    expect(verifyToken(p, q, 0, stub(0.49)).accepted).toBe(true);
    const r = verifyToken(p, q, 0, stub(0.5, 0));
    expect(r).toEqual({ accepted: false, token: 1 });
  });

  it('never accepts a token the target gives no mass, and replaces it from the residual', () => {
    const p = dist([0, 1, 1, 0]);
    const q = dist([1, 1, 1, 1]);
    const rng = createRng(3);
    for (let i = 0; i < 200; i++) {
      const v = verifyToken(p, q, 0, rng);
      expect(v.accepted).toBe(false);
      if (!v.accepted) expect([1, 2]).toContain(v.token);
    }
  });

  it('q[x] = 0 (a buggy draft) is accepted iff p[x] > 0', () => {
    expect(verifyToken(dist([1, 1]), dist([0, 1]), 0, stub(LAST_DRAW)).accepted).toBe(true);
    expect(verifyToken(dist([0, 1]), dist([0, 1]), 0, stub(0)).accepted).toBe(false);
  });

  it('uses one draw per decision and writes the residual into the scratch buffer', () => {
    const rng = stub(0.9, 0.5);
    const scratch = new Float32Array(3);
    const v = verifyToken(dist([1, 1, 2]), dist([2, 1, 1]), 0, rng, scratch); // p[0]/q[0] = 0.5 → reject
    expect(v).toEqual({ accepted: false, token: 2 });
    expect(Array.from(scratch)).toEqual([0, 0, 0.25]);
    expect(rng.calls).toBe(2); // acceptance draw + residual draw
    const accepting = stub(0);
    verifyToken(dist([1, 1]), dist([1, 1]), 0, accepting);
    expect(accepting.calls).toBe(1);
  });

  it('residual with no mass falls back to p', () => {
    const p = dist([1, 2, 0, 1]);
    const rng = createRng(8);
    for (let i = 0; i < 100; i++) expect([0, 1, 3]).toContain(sampleResidual(p, Float32Array.from(p), rng));
    // Inputs that are not distributions (p <= q everywhere) still yield a token in p's support.
    const v = verifyToken(new Float32Array([0.2, 0.2, 0]), new Float32Array([0.5, 0.5, 0]), 0, stub(0.9, 0.99));
    expect(v).toEqual({ accepted: false, token: 1 });
  });

  it('rejects out-of-range draft tokens', () => {
    expect(() => verifyToken(dist([1, 1]), dist([1, 1]), 2, stub(0))).toThrow(RangeError);
    expect(() => verifyToken(dist([1, 1]), dist([1, 1]), -1, stub(0))).toThrow(RangeError);
  });
});
