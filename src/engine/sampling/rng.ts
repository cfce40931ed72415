import { randomBytes } from 'node:crypto';

/** The only thing sampling needs from a random source; tests substitute stubs. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
}

/*
 * "Same request + same seed → same tokens" is part of the API, so the generator is spelled out here rather than
 * borrowed (Math.random cannot be seeded, and a dependency could change its stream under us).
 *
 * xoshiro128** (Blackman & Vigna 2018): needs only 32-bit integer ops, which is all JS bit arithmetic gives us
 * without BigInt; 128-bit state, period 2^128 − 1, passes BigCrush. sfc32 would do as well; xoshiro wins on having
 * a published reference implementation to check against.
 *
 * Its state must not be all zero and nearby seeds (0, 1, 2, … are what users type) must give unrelated streams, so
 * the state is filled from a splitmix32-style counter run through a bijective avalanche finaliser (hash-prospector
 * constants), the seeding the xoshiro authors recommend (with splitmix64 there).
 */

const GOLDEN = 0x9e3779b9;

/** Avalanche finaliser: a bijection on uint32 in which every input bit flips about half the output bits. */
function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** The i-th output (from 1) of a splitmix32 stream started at `s`. */
function splitmix32(s: number, i: number): number {
  return mix32((s + Math.imul(GOLDEN, i)) | 0);
}

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

class Xoshiro128StarStar implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(lo: number, hi: number) {
    // Seeds below 2^32 (every seed randomSeed draws) use the plain splitmix32 stream of `lo`; a high word, only
    // present for larger or negative user seeds, is folded in through a second, differently started stream so
    // that distinct safe-integer seeds still get distinct states.
    const words = [1, 2, 3, 4].map((i) => (splitmix32(lo, i) ^ (hi === 0 ? 0 : splitmix32(~hi, i))) >>> 0);
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    // mix32 is a bijection, so an all-zero state is possible in principle; it is the one state xoshiro cannot leave.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  next(): number {
    // 53 random bits (two outputs, as genrand_res53 does) rather than 32: with a 152k vocabulary, tokens of
    // probability ~1e-10 exist, and a 2^-32 grid would visibly quantise their chances.
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A deterministic generator for `seed`, which may be any safe integer (negative ones included: the API passes user
 * seeds through). Non-integers are rejected rather than truncated, so 1.5 and 1 cannot silently share a stream.
 */
export function createRng(seed: number): Rng & { nextUint32(): number } {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  // Two's-complement split into 32-bit words: unique per safe integer, and hi = 0 for every uint32 seed.
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
  return new Xoshiro128StarStar(lo, hi);
}

/** A fresh uint32 seed for requests that gave none; from the OS CSPRNG so concurrent streams never collide by clock. */
export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}
