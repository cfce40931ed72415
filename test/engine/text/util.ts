import { beforeAll } from 'vitest';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { tokenizerPath } from '../../helpers/tokenizer-path.ts';

/** The project's byte-level BPE tokenizer, loaded from disk only. */
export async function loadTokenizer(): Promise<PreTrainedTokenizer> {
  env.allowRemoteModels = false;
  env.useFSCache = false;
  return AutoTokenizer.from_pretrained(tokenizerPath());
}

/** What the engine passes as `decode`. */
export function decoderOf(tok: PreTrainedTokenizer): (ids: number[]) => string {
  return (ids) => tok.decode(ids, { skip_special_tokens: true });
}

/** Deterministic PRNG (mulberry32): integers in [0, n). */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Splits `xs` into consecutive chunks of 1..max items. */
export function chunked<T>(xs: readonly T[], rand: (n: number) => number, max = 5): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length;) {
    const n = 1 + rand(max);
    out.push(xs.slice(i, i + n));
    i += n;
  }
  return out;
}

/** A byte-level fake: id i is the byte sequence `vocab[i]`, decoded with a non-fatal TextDecoder like ByteLevel. */
export function byteDecoder(vocab: readonly (readonly number[])[]): (ids: number[]) => string {
  const td = new TextDecoder('utf-8', { fatal: false });
  return (ids) => td.decode(Uint8Array.from(ids.flatMap((i) => [...vocab[i]!])));
}

/** Text without its trailing run of U+FFFD: what may be emitted for a prefix of the stream. */
export function settled(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0xfffd) end--;
  return s.slice(0, end);
}

export const TEXTS = [
  'Once upon a time, there was a little girl named Lily. She liked to play outside.',
  'Café crème, naïve façade — “quotes” and ‘single’ ones. Ærøskøbing, Straße, Ελληνικά, русский.',
  '你好世界, 日本語のテキスト and 한국어.',
  'Emoji 🙂👍🏽🎉 mixed with text 🐶 and a flag 🇫🇷, a family 👨‍👩‍👧 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢.',
  '\n\n  spaces   and\ttabs\n',
  'mixed: a😀b你c\u00e9d\u0301e 👍🏽!',
];

/** The bundled tokenizer for a test file, loaded once before its tests (call at the top level). `encode` adds no
 *  special tokens; `decode` is the engine's decoder of ids to text. */
export function useTokenizer() {
  let tok: PreTrainedTokenizer | undefined;
  let dec: ((ids: number[]) => string) | undefined;
  beforeAll(async () => {
    tok = await loadTokenizer();
    dec = decoderOf(tok);
  });
  return {
    tokenizer: () => tok!,
    decode: (ids: number[]) => dec!(ids),
    encode: (text: string): number[] => tok!.encode(text, { add_special_tokens: false }),
  };
}
