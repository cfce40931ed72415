/*
 * Pearson's chi-square goodness-of-fit test, self-contained so the sampling tests need no stats dependency.
 * The survival function of χ²(df) is the regularized upper incomplete gamma Q(df/2, x/2), computed as in
 * Numerical Recipes §6.2: the power series for P when x < a + 1, Lentz's continued fraction for Q otherwise.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(z) for z > 0 (Lanczos, g = 7; ~15 significant digits). */
export function lnGamma(z: number): number {
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  z -= 1;
  let x = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) x += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

const EPS = 1e-15;
const TINY = 1e-300;
const MAX_ITER = 10_000;

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a). */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new RangeError(`gammaQ(${a}, ${x})`);
  if (x === 0) return 1;
  const logPrefix = a * Math.log(x) - x - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < MAX_ITER; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPS) break;
    }
    return 1 - sum * Math.exp(logPrefix);
  }
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(logPrefix) * h;
}

/** P(χ²(df) >= x). */
export function chiSquareSurvival(x: number, df: number): number {
  return gammaQ(df / 2, x / 2);
}

export interface GoodnessOfFit {
  statistic: number;
  df: number;
  pValue: number;
  /** Observations that fell in bins of expected probability 0 (excluded from the statistic). */
  impossible: number;
}

/** Observed counts against expected probabilities (normalised here); bins with probability 0 are left out. */
export function chiSquareGoodnessOfFit(counts: ArrayLike<number>, probs: ArrayLike<number>): GoodnessOfFit {
  if (counts.length !== probs.length) throw new RangeError('counts and probs differ in length');
  let n = 0;
  let mass = 0;
  for (let i = 0; i < counts.length; i++) {
    n += counts[i]!;
    mass += probs[i]!;
  }
  let statistic = 0;
  let bins = 0;
  let impossible = 0;
  for (let i = 0; i < counts.length; i++) {
    const p = probs[i]! / mass;
    if (p > 0) {
      const expected = n * p;
      statistic += (counts[i]! - expected) ** 2 / expected;
      bins++;
    } else impossible += counts[i]!;
  }
  const df = bins - 1;
  return { statistic, df, pValue: df > 0 ? chiSquareSurvival(statistic, df) : 1, impossible };
}
