/** Request bodies the scenarios send: short story prompts, fixed lengths (ignore_eos), greedy (the server's default). */
import type { GenParams } from './ws.ts';

export const PROMPTS = [
  'Once upon a time, there was a little girl named Lily.',
  'Tom and his dog went to the park.',
  'The sun was shining and the birds were singing.',
  'One day, a big bear found a red ball in the forest.',
  'Sara wanted to bake a cake for her mom.',
  'There was a small boat on a blue lake.',
  'Ben had a new toy car. He loved to',
  'The cat climbed up the tall tree and',
] as const;

export const prompt = (i: number): string => PROMPTS[i % PROMPTS.length]!;

/** A fixed-length generation: exactly maxTokens tokens, whatever the model would do at end-of-sequence. */
export function fixed(i: number, maxTokens: number, extra: Record<string, unknown> = {}): GenParams {
  return { prompt: prompt(i), max_tokens: maxTokens, ignore_eos: true, ...extra };
}

/** Deterministic PRNG (mulberry32) so that fuzz inputs and disconnect points repeat run to run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
