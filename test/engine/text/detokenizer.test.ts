import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../../src/engine/text/detokenizer.ts';
import { byteDecoder, chunked, rng, settled, TEXTS, useTokenizer } from './util.ts';

const { tokenizer, decode, encode } = useTokenizer();

/** Pushes `ids` in `chunks`, checking after each push that the text so far is decode(so far) less a trailing
 *  U+FFFD run (as eager as possible, never an incomplete character), then returns all deltas and the flush. */
function run(d: IncrementalDetokenizer, chunks: number[][], dec: (ids: number[]) => string) {
  const deltas: string[] = [];
  const seen: number[] = [];
  let out = '';
  for (const c of chunks) {
    const { delta, perToken } = d.push(c);
    expect(perToken).toHaveLength(c.length);
    expect(perToken.join('')).toBe(delta);
    expect(delta.endsWith('\uFFFD')).toBe(false);
    seen.push(...c);
    out += delta;
    expect(out).toBe(settled(dec(seen)));
    deltas.push(delta);
  }
  return { deltas, flush: d.flush(), out };
}

describe('IncrementalDetokenizer with the project tokenizer', () => {
  it('splits multi-byte characters across tokens (so the tests below exercise the holdback)', () => {
    for (const s of ['你好世界', '🙂👍🏽', 'é']) {
      expect(encode(s).some((id) => decode([id]).includes('\uFFFD'))).toBe(true);
    }
  });

  for (const [n, text] of TEXTS.entries()) {
    it(`one token at a time: no U+FFFD, deltas join to decode(all) (text ${n})`, () => {
      const ids = encode(text);
      const d = new IncrementalDetokenizer(decode, tokenizer().encode('Prompt: '));
      const { deltas, flush, out } = run(
        d,
        ids.map((id) => [id]),
        decode,
      );
      for (const x of deltas) expect(x.includes('\uFFFD')).toBe(false);
      expect(flush).toBe('');
      expect(out).toBe(text);
      expect(out + flush).toBe(decode(ids));
    });

    it(`random chunk sizes (text ${n})`, () => {
      const ids = encode(text);
      for (let seed = 1; seed <= 5; seed++) {
        const d = new IncrementalDetokenizer(decode, seed % 2 ? [] : encode('A long prompt with some context, '));
        const { deltas, flush } = run(d, chunked(ids, rng(seed)), decode);
        for (const x of deltas) expect(x.includes('\uFFFD')).toBe(false);
        expect(deltas.join('') + flush).toBe(text);
      }
    });
  }

  it('perToken is empty while a character is incomplete and carries the whole character when it completes', () => {
    const ids = encode('a你');
    const d = new IncrementalDetokenizer(decode);
    const { perToken } = d.push(ids);
    expect(perToken).toEqual(['a', ...ids.slice(2).map(() => ''), '你']);
  });

  it('random token ids (invalid byte sequences, special tokens): deltas + flush === decode(all)', () => {
    const rand = rng(42);
    for (let trial = 0; trial < 60; trial++) {
      // Mostly single-byte tokens (ids < 260) so that multi-byte sequences form, broken ones included.
      const pick = () => (rand(4) === 0 ? rand(8192) : rand(260));
      const prompt = Array.from({ length: rand(8) }, pick);
      const ids = Array.from({ length: 1 + rand(60) }, pick);
      const d = new IncrementalDetokenizer(decode, prompt);
      const { deltas, flush } = run(d, chunked(ids, rand), decode);
      expect(deltas.join('') + flush).toBe(decode(ids));
    }
  });

  it('decodes a bounded window, whatever the stream length (skipped EOS runs included)', () => {
    const windows: number[] = [];
    const counting = (ids: number[]) => {
      expect(ids.length).toBeGreaterThan(0);
      windows.push(ids.length);
      return decode(ids);
    };
    const eos = tokenizer().eos_token_id!;
    const base = encode(TEXTS.join(' '));
    const ids: number[] = [];
    while (ids.length < 4000) ids.push(...base, ...(ids.length % 3 === 0 ? Array(50).fill(eos) : []));
    const d = new IncrementalDetokenizer(counting, encode('Prompt'));
    let out = '';
    for (const c of chunked(ids, rng(7), 6)) out += d.push(c).delta;
    expect(out + d.flush()).toBe(decode(ids));
    // Context (the tokens of the last emission) plus the tokens of one incomplete character, plus the new one.
    expect(Math.max(...windows)).toBeLessThanOrEqual(12);
    expect(windows.length).toBeLessThanOrEqual(2 * ids.length + 2); // at most two decodes per token
  });
});

describe('IncrementalDetokenizer UTF-8 edge cases (fake byte-level vocabulary)', () => {
  // id → bytes
  const V = [
    [0x68], // 0 'h'
    [0xe4],
    [0xbd],
    [0xa0], // 1-3: 你 byte by byte
    [0xf0],
    [0x9f],
    [0x99],
    [0x82], // 4-7: 🙂 byte by byte
    [0x63, 0x61, 0x66, 0xc3], // 8: 'caf' + first byte of é
    [0xa9], // 9: second byte of é
    [0x80], // 10: a stray continuation byte (genuinely invalid)
    [0xef, 0xbf, 0xbd], // 11: the character U+FFFD itself
    [], // 12: a skipped special token
    [0x20, 0x61], // 13: ' a'
  ];
  const dec = byteDecoder(V);
  const all = (ids: number[], prompt: number[] = []) => {
    const d = new IncrementalDetokenizer(dec, prompt);
    const per = ids.map((id) => d.push([id]).delta);
    return { per, flush: d.flush() };
  };

  it('holds back an incomplete 3-byte character and releases it with its last byte', () => {
    expect(all([0, 1, 2, 3])).toEqual({ per: ['h', '', '', '你'], flush: '' });
  });

  it('holds back a 4-byte emoji split over 4 tokens', () => {
    expect(all([4, 5, 6, 7, 13])).toEqual({ per: ['', '', '', '🙂', ' a'], flush: '' });
  });

  it('flush returns a character left incomplete at the end as U+FFFD', () => {
    const r = all([0, 1, 2]);
    expect(r).toEqual({ per: ['h', '', ''], flush: '\uFFFD' });
    expect(r.per.join('') + r.flush).toBe(dec([0, 1, 2]));
    expect(all([4, 5])).toEqual({ per: ['', ''], flush: '\uFFFD' });
  });

  it('emits the complete text of a token at once, holding back only the incomplete character', () => {
    expect(all([8, 9, 13])).toEqual({ per: ['caf', 'é', ' a'], flush: '' });
  });

  it('emits a genuine U+FFFD (invalid bytes, or the character itself) once the text continues', () => {
    expect(all([0, 10, 13])).toEqual({ per: ['h', '', '\uFFFD a'], flush: '' });
    expect(all([11, 0])).toEqual({ per: ['', '\uFFFDh'], flush: '' });
    expect(all([0, 11])).toEqual({ per: ['h', ''], flush: '\uFFFD' });
    // A character broken off by an invalid byte: U+FFFD for it, then the rest.
    const r = all([1, 2, 0, 1, 2, 3]);
    expect(r.per.join('') + r.flush).toBe(dec([1, 2, 0, 1, 2, 3]));
    expect(r.per).toEqual(['', '', '\uFFFDh', '', '', '你']);
  });

  it('a skipped token inside a character changes nothing', () => {
    expect(all([1, 12, 2, 12, 3])).toEqual({ per: ['', '', '', '', '你'], flush: '' });
  });

  it('a prompt ending mid-character is not used to complete the generated bytes', () => {
    const r = all([2, 3, 13], [0, 1]);
    expect(r.per.join('') + r.flush).toBe(dec([2, 3, 13]));
    expect(r.per).toEqual(['', '', '\uFFFD\uFFFD a']);
  });

  it('matches decode(all) on random byte streams', () => {
    const rand = rng(3);
    for (let trial = 0; trial < 300; trial++) {
      const ids = Array.from({ length: 1 + rand(30) }, () => rand(V.length));
      const prompt = Array.from({ length: rand(4) }, () => rand(V.length));
      const d = new IncrementalDetokenizer(dec, prompt);
      const { deltas, flush } = run(d, chunked(ids, rand), dec);
      expect(deltas.join('') + flush).toBe(dec(ids));
    }
  });
});

describe('IncrementalDetokenizer with a context-dependent decoder (SentencePiece-like)', () => {
  // Metaspace: '▁' is a space, and the first token of a decode loses its leading space; id 0 is a skipped EOS.
  const V = ['', '▁Hello', '▁world', ',', '▁how', '▁are', '▁you', '?', 'Q', ':'];
  const dec = (ids: number[]) =>
    ids
      .map((i) => V[i]!)
      .join('')
      .replaceAll('▁', ' ')
      .replace(/^ /, '');

  it('uses the prompt as context, so the first generated token keeps its leading space', () => {
    const prompt = [8, 9];
    const d = new IncrementalDetokenizer(dec, prompt);
    const gen = [1, 2, 3, 4];
    expect(d.push(gen).perToken).toEqual([' Hello', ' world', ',', ' how']);
    expect(dec([...prompt, ...gen])).toBe(dec(prompt) + ' Hello world, how');
  });

  it('without a prompt, matches decode(generated)', () => {
    const d = new IncrementalDetokenizer(dec);
    expect(d.push([1, 2, 7]).delta + d.flush()).toBe(dec([1, 2, 7]));
  });

  it('keeps spaces across skipped tokens and window slides', () => {
    const ids = [1, 0, 0, 2, 3, 0, 4, 5, 0, 0, 0, 6, 7];
    for (let seed = 0; seed < 10; seed++) {
      const d = new IncrementalDetokenizer(dec, [8]);
      let out = '';
      for (const c of chunked(ids, rng(seed), 4)) out += d.push(c).delta;
      expect(out + d.flush()).toBe(' Hello world, how are you?');
    }
  });
});
