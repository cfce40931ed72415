/** TokenChooser: how the speculative loop turns rows of logits into tokens and verdicts (greedy here; sampling in sampling/). */
import { describe, expect, it } from 'vitest';
import { TokenChooser } from '../../../src/engine/speculation/chooser.ts';
import { SAMPLING_DEFAULTS } from '../../../src/server/to-engine.ts';

const GREEDY = { ...SAMPLING_DEFAULTS, seed: 1 };

describe('TokenChooser, greedy', () => {
  const row = new Float32Array([0.1, 2, 2, -1]);

  it("keeps a draft token iff it is the target's argmax, and otherwise names the argmax (lowest index on ties)", () => {
    const c = new TokenChooser(GREEDY, row.length);
    expect(c.greedy).toBe(true);
    expect(c.verify(row, null, 1, [])).toEqual({ accepted: true });
    expect(c.verify(row, null, 2, [])).toEqual({ accepted: false, token: 1 });
    expect(c.verify(row, null, 0, [])).toEqual({ accepted: false, token: 1 });
    expect(c.choose(row, [])).toBe(1);
  });

  it('judges by the argmax after the repetition penalty, as choose() picks it', () => {
    const c = new TokenChooser({ ...GREEDY, repetitionPenalty: 2 }, row.length);
    // Token 1 was already generated: its logit 2 becomes 1, so 2 is the target's choice.
    expect(c.choose(row, [1])).toBe(2);
    expect(c.verify(row, null, 2, [1])).toEqual({ accepted: true });
    expect(c.verify(row, null, 1, [1])).toEqual({ accepted: false, token: 2 });
  });

  it('a sampling chooser needs the draft distribution to verify', () => {
    const c = new TokenChooser({ ...GREEDY, temperature: 1 }, row.length);
    expect(() => c.verify(row, null, 1, [])).toThrow(/draft distribution/);
  });
});
