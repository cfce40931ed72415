/**
 * Log-probabilities of a logits row as reported to clients (OpenAI's `logprobs`): the model's raw distribution,
 * log_softmax of the logits before any sampling transform (vLLM's default `raw_logprobs`), so a reported value is
 * the model's own and does not depend on the request's temperature, penalties or bias.
 */

/** [token id, log-probability]. */
export type IdLogprob = [number, number];

export interface TokenLogprob {
  /** Log-probability of the token that was emitted. */
  lp: number;
  /** The row's `n` most likely tokens, most likely first (ties: lower id first); empty for n = 0. */
  top: IdLogprob[];
}

/** The emitted token's log-probability and the row's top `n`, in one pass over the row plus a small selection. */
export function tokenLogprob(row: Float32Array, id: number, n: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i]! - max);
  const logZ = max + Math.log(z);
  const top: IdLogprob[] = [];
  if (n > 0) {
    // Insertion into a sorted list of at most n: n ≤ 20 against an 8k–150k row, so no heap is worth it.
    for (let i = 0; i < row.length; i++) {
      const x = row[i]!;
      if (top.length === n && x <= top[n - 1]![1]) continue;
      let at = top.length;
      while (at > 0 && top[at - 1]![1] < x) at--;
      top.splice(at, 0, [i, x]);
      if (top.length > n) top.pop();
    }
    for (const t of top) t[1] -= logZ;
  }
  return { lp: row[id]! - logZ, top };
}
