/**
 * The speculative round on fake models whose logits depend on the whole cached sequence: a wrong rollback, an
 * off-by-one in the cache invariant or a mis-ordered acceptance changes every later token, so equality with
 * target-only decoding is a strong check. The draft agrees with the target only part of the time.
 */
import { describe, expect, it } from 'vitest';
import { StreamState, type Cache, type ForwardModel } from '../../../src/engine/speculation/stream-state.ts';
import { SAMPLING_DEFAULTS } from '../../../src/server/to-engine.ts';

const V = 40;

class SeqCache implements Cache {
  readonly seq: number[] = [];
  get length() {
    return this.seq.length;
  }
  truncate(n: number) {
    this.seq.length = Math.min(this.seq.length, n);
  }
}

function hash(xs: readonly number[], salt: number): number {
  let h = 2166136261 ^ salt;
  for (const x of xs) h = Math.imul(h ^ x, 16777619);
  return h >>> 0;
}

/** Logits for the next token after `context`; `noise` > 0 makes a draft that disagrees now and then. */
function fakeModel(salt: number, noise: number): ForwardModel<SeqCache> & { calls: number } {
  return {
    vocab: V,
    calls: 0,
    newCache: () => new SeqCache(),
    async forward(cache, ids) {
      this.calls++;
      const out = new Float32Array(ids.length * V);
      ids.forEach((id, i) => {
        cache.seq.push(id);
        const h = hash(cache.seq, 0);
        const n = hash(cache.seq, salt);
        for (let v = 0; v < V; v++) {
          const base = ((Math.imul(h, v + 1) >>> 0) % 1000) / 100;
          const jitter = ((Math.imul(n, v + 7) >>> 0) % 1000) / 1000;
          out[i * V + v] = base + noise * jitter;
        }
      });
      return out;
    },
  };
}

const GREEDY = { ...SAMPLING_DEFAULTS, seed: 1 };

async function decode(state: StreamState<SeqCache>, k: number, n: number) {
  const out: number[] = [];
  let proposed = 0,
    accepted = 0;
  while (out.length < n) {
    const r = await state.step(k, n - out.length);
    out.push(...r.tokens);
    proposed += r.proposed;
    accepted += r.accepted;
    if (r.eos) break;
  }
  return { out, proposed, accepted };
}

describe('StreamState speculative round', () => {
  const prompts = [[1], [1, 5, 9], Array.from({ length: 50 }, (_, i) => (i * 7) % V)];
  for (const prompt of prompts) {
    for (const k of [1, 2, 3, 5, 8]) {
      it(`greedy output equals target-only decoding (prompt ${prompt.length} tokens, k=${k})`, async () => {
        const target = fakeModel(1, 0),
          draft = fakeModel(2, 4);
        const ref = await decode(new StreamState({ target, draft }, prompt, 'target', GREEDY, new Set(), 16), 0, 60);
        const spec = await decode(new StreamState({ target, draft }, prompt, 'speculative', GREEDY, new Set(), 16), k, 60);
        expect(spec.out).toEqual(ref.out);
        expect(spec.proposed).toBeGreaterThan(0);
        expect(spec.accepted).toBeGreaterThan(0);
        expect(spec.accepted).toBeLessThan(spec.proposed); // the draft really disagrees sometimes
      });
    }
  }

  it('a perfect draft has every proposal accepted and ends each round with a bonus token', async () => {
    const m = fakeModel(1, 0);
    const s = new StreamState({ target: m, draft: fakeModel(1, 0) }, [1, 2], 'speculative', GREEDY, new Set(), 16);
    await s.step(4, 100); // prefill
    const r = await s.step(4, 100);
    expect(r.proposed).toBe(4);
    expect(r.accepted).toBe(4);
    expect(r.sources).toEqual([0, 0, 0, 0, 2]);
  });

  it('never produces more than maxNew tokens and shrinks k to fit', async () => {
    const s = new StreamState({ target: fakeModel(1, 0), draft: fakeModel(1, 0) }, [3], 'speculative', GREEDY, new Set(), 16);
    const r = await s.step(8, 3);
    expect(r.tokens.length).toBeLessThanOrEqual(3);
    expect(r.proposed).toBe(2);
  });

  it('stops at an end-of-sequence token and leaves it out', async () => {
    const target = fakeModel(1, 0);
    const ref = await decode(new StreamState({ target, draft: null }, [1], 'target', GREEDY, new Set(), 16), 0, 30);
    const eos = ref.out[10]!;
    const firstEos = ref.out.indexOf(eos);
    const spec = await decode(new StreamState({ target, draft: fakeModel(2, 4) }, [1], 'speculative', GREEDY, new Set([eos]), 16), 4, 30);
    expect(spec.out).toEqual(ref.out.slice(0, firstEos));
  });

  it('prefills a long prompt in chunks before the first token', async () => {
    const target = fakeModel(1, 0);
    const s = new StreamState(
      { target, draft: fakeModel(2, 4) },
      Array.from({ length: 40 }, (_, i) => i % V),
      'speculative',
      GREEDY,
      new Set(),
      16,
    );
    const steps = [];
    for (let i = 0; i < 4; i++) steps.push(await s.step(2, 10));
    expect(steps.map((r) => r.prefill)).toEqual([true, true, true, false]); // 39 cached prompt tokens in chunks of 16
    expect(steps[3]!.tokens.length).toBeGreaterThan(0);
  });

  it('draft mode samples from the draft alone', async () => {
    const target = fakeModel(1, 0),
      draft = fakeModel(2, 4);
    const viaDraft = await decode(new StreamState({ target: draft, draft: null }, [1, 2], 'target', GREEDY, new Set(), 16), 0, 20);
    const r = await decode(new StreamState({ target, draft }, [1, 2], 'draft', GREEDY, new Set(), 16), 0, 20);
    expect(r.out).toEqual(viaDraft.out);
    expect(target.calls).toBe(0);
  });
});
