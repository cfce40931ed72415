/**
 * Greedy output of two configurations compared token by token, as bench:q8 and bench:graph report it: how many
 * tokens are equal up to each prompt's first parting, and at each parting the reference's top-1 minus top-2
 * log-probability there (a near-tie when it is small: kernels that sum in another order may part there).
 */
import type { EmittedToken, Engine, GenerateRequest } from '../../src/engine/index.ts';
import { round } from '../../src/lib/stats.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

export interface Partings {
  equal: number;
  total: number;
  partings: { prompt: number; at: number; margin: number }[];
}

/** `maxTokens` greedy tokens of `prompt` (ignoring EOS), each with its top-2 log-probabilities. */
export async function greedyTokens(
  engine: Engine,
  prompt: string,
  mode: GenerateRequest['mode'],
  maxTokens: number,
): Promise<EmittedToken[]> {
  const out: EmittedToken[] = [];
  for await (const ev of engine.generate({
    input: { prompt },
    maxTokens,
    sampling: SAMPLING_DEFAULTS,
    stop: [],
    mode,
    k: mode === 'target' ? 0 : 'auto',
    ignoreEos: true,
    logprobs: 2,
  }))
    if (ev.type === 'tokens') out.push(...ev.tokens);
  return out;
}

/** `pairs[i]`: prompt i's tokens under the reference and under the other configuration. */
export function partingsOf(pairs: readonly (readonly [EmittedToken[], EmittedToken[]])[]): Partings {
  const result: Partings = { equal: 0, total: 0, partings: [] };
  pairs.forEach(([ref, other], prompt) => {
    const at = ref.findIndex((x, j) => other[j]?.id !== x.id);
    result.total += ref.length;
    result.equal += at < 0 ? ref.length : at;
    if (at >= 0) {
      const top = ref[at]!.logprobs!.top;
      result.partings.push({ prompt, at, margin: round(top[0]!.logprob - (top[1]?.logprob ?? -Infinity), 5) });
    }
  });
  return result;
}
