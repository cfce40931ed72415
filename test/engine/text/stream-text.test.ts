import { describe, expect, it } from 'vitest';
import { StreamText, type PushResult } from '../../../src/engine/text/output.ts';
import { chunked, rng, settled, TEXTS, useTokenizer } from './util.ts';

const { tokenizer, decode, encode } = useTokenizer();

/** Runs a stream as the engine does: pushes steps until a stop, then finish() if it did not stop. */
function stream(s: StreamText, steps: number[][]) {
  let text = '',
    used = 0;
  const results: PushResult[] = [];
  for (const step of steps) {
    const r = s.push(step);
    results.push(r);
    expect(r.perToken).toHaveLength(r.tokensUsed);
    expect(r.perToken.join('')).toBe(r.text);
    expect(r.text.includes('\uFFFD')).toBe(false);
    expect(r.tokensUsed).toBe(r.stopped ? r.tokensUsed : step.length);
    text += r.text;
    used += r.tokensUsed;
    if (r.stopped) return { text, used, stopped: true, tail: '', results };
  }
  const tail = s.finish();
  return { text: text + tail, used, stopped: false, tail, results };
}

describe('StreamText', () => {
  it('stops on a stop string spanning tokens: tokensUsed reaches it, the text before it is exact', () => {
    const ids = encode('Lily saw a dog. The dog was big. Lily was happy.');
    const s = new StreamText({ decode, stop: ['dog was'], promptIds: tokenizer().encode('Story: ') });
    const r = s.push(ids);
    expect(r.stopped).toBe(true);
    expect(r.text).toBe('Lily saw a dog. The ');
    expect(r.perToken).toHaveLength(r.tokensUsed);
    expect(r.perToken.join('')).toBe(r.text);
    expect(decode(ids.slice(0, r.tokensUsed))).toContain('dog was');
    expect(decode(ids.slice(0, r.tokensUsed - 1))).not.toContain('dog was');
    expect(r.perToken.at(-1)).toBe(''); // the stop string is never emitted
  });

  it('reports tokensUsed relative to the step in which the stop completes', () => {
    const ids = encode('Lily saw a dog. The dog was big. Lily was happy.');
    const full = new StreamText({ decode, stop: ['was big'] }).push(ids);
    for (let seed = 0; seed < 8; seed++) {
      const steps = chunked(ids, rng(seed), 5);
      const r = stream(new StreamText({ decode, stop: ['was big'] }), steps);
      expect(r).toMatchObject({ stopped: true, text: 'Lily saw a dog. The dog ', used: full.tokensUsed });
    }
  });

  it('cuts inside a token: text before the stop string in the same token is emitted', () => {
    const ids = encode('Lily was happy.');
    const r = new StreamText({ decode, stop: ['ppy'] }).push(ids);
    expect(r).toMatchObject({ stopped: true, text: 'Lily was ha' });
    expect(decode(ids.slice(0, r.tokensUsed))).toContain('ppy');
    expect(decode(ids.slice(0, r.tokensUsed - 1))).not.toContain('ppy');
  });

  it('stops at the very start', () => {
    const ids = encode('Once upon a time');
    for (const stop of ['Once', 'On', 'Once upon']) {
      const r = new StreamText({ decode, stop: [stop] }).push(ids);
      expect(r.stopped).toBe(true);
      expect(r.text).toBe('');
      expect(r.perToken).toEqual(Array(r.tokensUsed).fill(''));
      expect(decode(ids.slice(0, r.tokensUsed)).startsWith(stop)).toBe(true);
      expect(r.tokensUsed === 1 || !decode(ids.slice(0, r.tokensUsed - 1)).startsWith(stop)).toBe(true);
    }
  });

  it('with two stop strings, one a prefix of the other, stops at the first to complete', () => {
    const ids = encode('Lily said: "The end." The end of it all.');
    const r = new StreamText({ decode, stop: ['The end of', 'The end'] }).push(ids);
    expect(r).toMatchObject({ stopped: true, text: 'Lily said: "' });
  });

  it('stops on a multi-byte stop string whose bytes are split over tokens', () => {
    const ids = encode('你好世界');
    const r = new StreamText({ decode, stop: ['世'] }).push(ids);
    expect(r).toMatchObject({ stopped: true, text: '你好', tokensUsed: encode('你好世').length });
    expect(r.perToken.filter((t) => t !== '')).toEqual(['你', '好']);
  });

  it('finish releases the held-back text when no stop string completes', () => {
    const ids = encode('Lily was happy. The');
    const s = new StreamText({ decode, stop: ['The end', '\n\n'] });
    const r = s.push(ids);
    expect(r).toMatchObject({ stopped: false, text: 'Lily was happy. ', tokensUsed: ids.length });
    expect(s.finish()).toBe('The');
  });

  it('finish returns a character left incomplete as U+FFFD, like decode(all)', () => {
    const ids = encode('ok 你').slice(0, -1);
    const s = new StreamText({ decode, stop: [] });
    expect(s.push(ids).text).toBe('ok ');
    const tail = s.finish();
    expect(tail).toBe(decode(ids).slice(3));
    expect(tail).toMatch(/\uFFFD$/);
  });

  it('without stop strings has no holdback: perToken is the detokenizer output', () => {
    const ids = encode('The end. The end.');
    const r = new StreamText({ decode, stop: [] }).push(ids);
    expect(r.perToken).toEqual(ids.map((id) => decode([id])));
  });

  it('ignores pushes after a stop', () => {
    const s = new StreamText({ decode, stop: ['.'] });
    expect(s.push(encode('Hi. Bye.'))).toMatchObject({ stopped: true, text: 'Hi' });
    expect(s.push(encode('more'))).toEqual({ text: '', perToken: [], stopped: true, tokensUsed: 0 });
    expect(s.finish()).toBe('');
  });

  for (const [n, text] of TEXTS.entries()) {
    it(`random step sizes join to decode(all) (text ${n})`, () => {
      const ids = encode(text);
      for (let seed = 0; seed < 4; seed++) {
        const r = stream(new StreamText({ decode, stop: seed % 2 ? ['zzz', 'qq'] : [], promptIds: [1] }), chunked(ids, rng(seed + 10)));
        expect(r.stopped).toBe(false);
        expect(r.text).toBe(decode(ids));
        expect(r.used).toBe(ids.length);
      }
    });
  }

  it('agrees with a reference on random stop strings and steps', () => {
    const rand = rng(5);
    for (let trial = 0; trial < 150; trial++) {
      const text = TEXTS[rand(TEXTS.length)]!;
      const ids = encode(text);
      const stops = Array.from({ length: 1 + rand(3) }, () => {
        const a = rand(text.length),
          b = Math.min(text.length, a + 1 + rand(6));
        return rand(5) === 0 ? 'not in there' : text.slice(a, b);
      }).filter((s) => !/[\uD800-\uDBFF]$|^[\uDC00-\uDFFF]/.test(s)); // whole characters only
      // Reference: the first token after which the settled text contains a stop string, cut at the earliest one.
      let expected = { text: decode(ids), used: ids.length, stopped: false };
      for (let j = 1; j <= ids.length; j++) {
        const sofar = settled(decode(ids.slice(0, j)));
        const hits = stops.map((s) => sofar.indexOf(s)).filter((i) => i >= 0);
        if (hits.length) {
          expected = { text: sofar.slice(0, Math.min(...hits)), used: j, stopped: true };
          break;
        }
      }
      const r = stream(new StreamText({ decode, stop: stops }), chunked(ids, rand, 6));
      expect({ text: r.text, used: r.used, stopped: r.stopped }).toEqual(expected);
    }
  });
});
