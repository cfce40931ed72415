import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../../src/engine/text/detokenizer.ts';
import { StopMatcher } from '../../../src/engine/text/stop.ts';
import { StreamText } from '../../../src/engine/text/output.ts';
import { tokenizerPath } from '../../helpers/tokenizer-path.ts';

let tok: PreTrainedTokenizer;
let decode: (ids: number[]) => string;
beforeAll(async () => {
  env.allowRemoteModels = false;
  env.useFSCache = false;
  tok = await AutoTokenizer.from_pretrained(tokenizerPath());
  decode = (ids) => tok.decode(ids, { skip_special_tokens: true });
});

const TEXTS = [
  'Once upon a time, there was a little girl named Lily. She liked to play outside.',
  'Café crème, naïve façade — “quotes” and ‘single’ ones.',
  '你好世界, 日本語のテキスト and 한국어.',
  'Emoji 🙂👍🏽🎉 mixed with text 🐶 and a flag 🇫🇷.',
  '\n\n  spaces   and\ttabs\n',
];

function chunks<T>(xs: T[], seed: number): T[][] {
  const out: T[][] = [];
  let i = 0, s = seed;
  while (i < xs.length) { s = (s * 1103515245 + 12345) >>> 0; const n = 1 + (s % 4); out.push(xs.slice(i, i + n)); i += n; }
  return out;
}

describe('IncrementalDetokenizer', () => {
  for (const text of TEXTS) {
    it(`deltas never end mid-character and join to decode(all): ${JSON.stringify(text.slice(0, 24))}`, () => {
      const prompt = tok.encode('Prompt: ');
      const ids = tok.encode(text, { add_special_tokens: false });
      const d = new IncrementalDetokenizer(decode, prompt);
      const deltas = ids.map((id) => d.push(id));
      for (const x of deltas) expect(x.includes('\uFFFD')).toBe(false);
      expect(deltas.join('') + d.flush()).toBe(decode(ids));
    });
  }

  it('holds back an incomplete UTF-8 sequence and releases it with the completing byte', () => {
    // A fake byte-level vocabulary: each id is one byte of "h你" (e4 bd a0).
    const bytes = [0x68, 0xe4, 0xbd, 0xa0];
    const fake = (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids.map((i) => bytes[i]!)));
    const d = new IncrementalDetokenizer(fake);
    expect([0, 1, 2, 3].map((i) => d.push(i))).toEqual(['h', '', '', '你']);
  });

  it('flush returns a trailing incomplete character as U+FFFD', () => {
    const bytes = [0x68, 0xe4, 0xbd];
    const fake = (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids.map((i) => bytes[i]!)));
    const d = new IncrementalDetokenizer(fake);
    expect(d.push(0) + d.push(1) + d.push(2)).toBe('h');
    expect(d.flush()).toBe('\uFFFD');
  });
});

describe('StopMatcher', () => {
  it('is a pass-through without stop strings', () => {
    expect(new StopMatcher([]).push('abc')).toEqual({ emit: 'abc', stopped: false });
  });
  it('matches across pushes and never emits the stop string', () => {
    const m = new StopMatcher(['THE END']);
    const parts = ['and they lived happily. TH', 'E E', 'ND and more'].map((p) => m.push(p));
    expect(parts.map((p) => p.emit).join('')).toBe('and they lived happily. ');
    expect(parts.at(-1)!.stopped).toBe(true);
  });
  it('releases held-back text that turned out not to be a stop', () => {
    const m = new StopMatcher(['\n\n']);
    expect(m.push('a\n')).toEqual({ emit: 'a', stopped: false });
    expect(m.push('b')).toEqual({ emit: '\nb', stopped: false });
    expect(m.push('c\n').emit + m.flush()).toBe('c\n');
  });
  it('stops at the earliest of several stop strings, one a prefix of another', () => {
    const m = new StopMatcher(['cat', 'cats']);
    expect(m.push('the ca')).toEqual({ emit: 'the ', stopped: false });
    expect(m.push('ts')).toEqual({ emit: '', stopped: true });
  });
  it('stops at the very start', () => {
    expect(new StopMatcher(['Once']).push('Once upon')).toEqual({ emit: '', stopped: true });
  });
});

describe('StreamText', () => {
  it('reports how many tokens reached the stop string and clips their text', () => {
    const text = 'Lily saw a dog. The dog was big. Lily was happy.';
    const ids = tok.encode(text, { add_special_tokens: false });
    const s = new StreamText({ decode, stop: ['was big'] });
    const r = s.push(ids);
    expect(r.stopped).toBe(true);
    expect(r.text).toBe('Lily saw a dog. The dog ');
    expect(r.perToken.length).toBe(r.tokensUsed);
    expect(r.perToken.join('')).toBe(r.text);
    expect(decode(ids.slice(0, r.tokensUsed))).toContain('was big');
    expect(decode(ids.slice(0, r.tokensUsed - 1))).not.toContain('was big');
  });

  for (const [i, text] of TEXTS.entries()) {
    it(`random step sizes join to decode(all) (${i})`, () => {
      const ids = tok.encode(text, { add_special_tokens: false });
      const s = new StreamText({ decode, stop: ['zzz'] });
      let out = '';
      for (const c of chunks(ids, i + 1)) {
        const r = s.push(c);
        expect(r.text.includes('\uFFFD')).toBe(false);
        expect(r.perToken.join('')).toBe(r.text);
        out += r.text;
      }
      expect(out + s.finish()).toBe(decode(ids));
    });
  }
});
