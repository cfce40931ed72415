import type { Rng } from './rng.ts';
import { sampleFrom } from './sample.ts';

/*
 * The verification step of speculative sampling (Leviathan et al. 2023, Alg. 1; Chen et al. 2023): a draft token
 * x ~ q is kept with probability min(1, p[x]/q[x]); otherwise a replacement is drawn from norm(max(0, p − q)). Kept
 * plus replaced tokens are then distributed exactly as p, which is why speculative decoding loses nothing: P(out = i)
 * = min(p_i, q_i) + (1 − Σ_j min(p_j, q_j)) · max(0, p_i − q_i) / Σ_j max(0, p_j − q_j) = p_i.
 */

export type Verdict = { readonly accepted: true } | { readonly accepted: false; readonly token: number };

/** Draws the replacement token after a rejection. A parameter so tests can prove the check catches a wrong one. */
export type ResidualSampler = (p: Float32Array, q: Float32Array, rng: Rng, scratch?: Float32Array) => number;

export type Verifier = (p: Float32Array, q: Float32Array, x: number, rng: Rng, residualScratch?: Float32Array) => Verdict;

const ACCEPTED: Verdict = Object.freeze({ accepted: true });

/**
 * Samples from norm(max(0, p − q)), written into `scratch` (allocated if absent). A rejection implies p[x] < q[x] and
 * hence some mass where p exceeds q, so the residual can only come out empty through rounding or inputs that are not
 * distributions; p itself is then the only sensible answer, and it is what the exact algorithm converges to as
 * p → q. Outside that fallback the residual is 0 at the rejected x, so the replacement differs from x.
 */
export const sampleResidual: ResidualSampler = (p, q, rng, scratch) => {
  const n = p.length;
  if (q.length !== n) throw new RangeError(`residual: p has ${n} entries, q ${q.length}`);
  const r = scratch ?? new Float32Array(n);
  if (r.length !== n) throw new RangeError(`residual: scratch has ${r.length} entries, need ${n}`);
  let mass = 0;
  for (let i = 0; i < n; i++) {
    const d = p[i]! - q[i]!;
    r[i] = d > 0 ? d : 0;
    mass += r[i]!;
  }
  return mass > 0 ? sampleFrom(r, rng) : sampleFrom(p, rng);
};

/** The verifier with a given residual step; production code uses `verifyToken`. */
export function verifyTokenWith(residual: ResidualSampler): Verifier {
  return (p, q, x, rng, residualScratch) => {
    if (!(x >= 0 && x < p.length) || !Number.isInteger(x)) throw new RangeError(`draft token ${x} outside vocabulary of ${p.length}`);
    const px = p[x]!;
    const qx = q[x]!;
    // One draw on every call, accepted or not, so the stream's position never depends on the probabilities.
    const u = rng.next();
    // u < p/q without dividing. When p[x] >= q[x] acceptance is certain (and stated outright, because u · q[x] can
    // round up to q[x] = p[x]), unless p[x] is 0 too. q[x] = 0 means the draft proposed a token it gave no mass, a
    // draft bug; we then accept iff the target allows it (p[x] > 0), which keeps every output inside p's support.
    const accept = px >= qx ? px > 0 : u * qx < px;
    return accept ? ACCEPTED : { accepted: false, token: residual(p, q, rng, residualScratch) };
  };
}

/**
 * Accept the draft's token x (drawn from q) against the target distribution p, or name the token to emit instead.
 * p and q must come from the same toProbs transform (same params, same history); `residualScratch` (length of p)
 * avoids an allocation per rejection.
 */
export const verifyToken: Verifier = verifyTokenWith(sampleResidual);
