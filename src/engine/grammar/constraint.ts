import type { XgMatcher } from './xgrammar.ts';

/**
 * One stream's grammar state in the engine core, kept in step with its speculative rounds. Within a round,
 * position j is the stream's committed tokens plus the round's first j proposals: `prepare(j)` takes the grammar's
 * token mask there (before draft pass j, and before the verify pass for the bonus position), `row(·, j)` applies
 * it to a draft or target logits row, and `propose` moves the matcher past a proposal. The draft's row j and the
 * target's verify row j get the same mask, so speculative output is the constrained target's, and a proposal is
 * always one the grammar allows (a forbidden one is never drafted, so it never costs a rejection). `settle` rolls
 * the rejected proposals back and accepts the target's own token.
 */
export class GrammarConstraint {
  private readonly masks: Int32Array[] = [];
  private proposed = 0;
  private readonly scratch: Float32Array;

  constructor(
    private readonly matcher: XgMatcher,
    vocab: number,
  ) {
    this.scratch = new Float32Array(vocab);
  }

  /** Takes the mask at position j of this round, if not taken yet (the matcher must be there). */
  async prepare(j: number): Promise<void> {
    // After the stop token (a proposal can be one) there is no next position: nothing will ask for its row.
    if (j < this.masks.length || this.matcher.isTerminated()) return;
    if (j !== this.masks.length || j !== this.proposed) throw new Error(`grammar: mask ${j} asked for at position ${this.proposed}`);
    this.masks.push(await this.matcher.getNextTokenBitmask());
  }

  /** `raw` with every token the grammar forbids at position j set to −∞ (a copy: `raw` stays for logprobs). */
  row(raw: Float32Array, j: number): Float32Array {
    const mask = this.masks[j];
    if (!mask) throw new Error(`grammar: no mask prepared for position ${j}`);
    const out = this.scratch.length === raw.length ? this.scratch : new Float32Array(raw.length);
    out.set(raw);
    const V = raw.length;
    for (let w = 0; w < mask.length; w++) {
      const bits = mask[w]!;
      if (bits === -1) continue;
      for (let b = 0, id = w * 32; b < 32 && id < V; b++, id++) if ((bits & (1 << b)) === 0) out[id] = -Infinity;
    }
    return out;
  }

  /** Moves past this round's next proposal. */
  propose(token: number): void {
    if (!this.matcher.acceptToken(token)) throw new Error(`grammar: proposal ${token} is not allowed here`);
    this.proposed++;
  }

  /**
   * Ends the round: `tokens` are what the round emits, its first `accepted` being proposals. The rest of the
   * proposals are rolled back and the target's token (correction or bonus) is accepted.
   */
  settle(accepted: number, tokens: readonly number[]): void {
    if (this.proposed > accepted) this.matcher.rollBack(this.proposed - accepted);
    for (let i = accepted; i < tokens.length; i++) {
      if (!this.matcher.acceptToken(tokens[i]!)) throw new Error(`grammar: token ${tokens[i]} is not allowed here`);
    }
    this.masks.length = 0;
    this.proposed = 0;
  }

  dispose(): void {
    this.matcher.dispose();
  }
}
