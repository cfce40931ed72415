import type { SamplingParams } from '../types.ts';
import { argmax, createRng, reshapes, sampleFrom, toProbs, verifyToken, type Rng, type Verdict } from '../sampling/index.ts';

/**
 * Turns logits rows into tokens for one stream, identically for draft and target: the same transforms
 * (penalties, logit bias, temperature, top-k/p, min-p) shape q and p before the acceptance test, which is what
 * keeps speculative sampling exact. Greedy requests never build distributions: agreement is argmax equality.
 * `history` arguments are the stream's prompt and completion so far; the completion starts at `promptLength`.
 */
export class TokenChooser {
  readonly greedy: boolean;
  private readonly rng: Rng;
  private readonly penalised: boolean;
  private readonly scratch: Float32Array;
  private readonly residual: Float32Array;

  constructor(
    private readonly params: SamplingParams & { seed: number },
    vocab: number,
    private readonly promptLength = 0,
  ) {
    this.greedy = params.temperature === 0;
    this.penalised = reshapes(params);
    this.rng = createRng(params.seed);
    this.scratch = new Float32Array(vocab);
    this.residual = new Float32Array(vocab);
  }

  /** The distribution a sampled token is drawn from (into `out`). Only for non-greedy streams. */
  probs(row: Float32Array, history: readonly number[], out: Float32Array): Float32Array {
    return toProbs(row, this.params, this.penalised ? history : null, out, this.promptLength);
  }

  /** Next token from a logits row: argmax (after the penalties and bias, if any) or a sample. */
  choose(row: Float32Array, history: readonly number[]): number {
    if (this.greedy && !this.penalised) return argmax(row);
    return this.greedy ? argmax(this.probs(row, history, this.scratch)) : sampleFrom(this.probs(row, history, this.scratch), this.rng);
  }

  /** A sampled draft proposal; its distribution q stays in `q` for the acceptance test. */
  propose(row: Float32Array, history: readonly number[], q: Float32Array): number {
    return sampleFrom(this.probs(row, history, q), this.rng);
  }

  /**
   * Target-side test of draft token x, whose draft distribution was q (unused when greedy). Greedy: x stands iff it
   * is the target's own choice (its argmax, after the penalties and bias if any; lowest index on ties), which is
   * then the correction. The bonus token after k accepted proposals is a plain choose() on the next row.
   */
  verify(pRow: Float32Array, q: Float32Array | null, x: number, history: readonly number[]): Verdict {
    if (this.greedy) {
      const t = this.choose(pRow, history);
      return t === x ? { accepted: true } : { accepted: false, token: t };
    }
    if (!q) throw new Error('sampling verification needs the draft distribution');
    return verifyToken(this.probs(pRow, history, this.scratch), q, x, this.rng, this.residual);
  }
}
