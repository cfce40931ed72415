import { randomBytes } from 'node:crypto';
import { Tokenizer } from '@huggingface/tokenizers';
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import type { GrammarVocabulary } from './grammar/spec.ts';
import { configureHub } from './model/decoder.ts';
import { EngineError, type GenerateRequest } from './types.ts';

type Message = Extract<GenerateRequest['input'], { messages: unknown }>['messages'][number];

/** What transformers.js keeps of the files it built a tokenizer from (not in its typings). */
interface TokenizerSources {
  _tokenizerJSON: {
    added_tokens?: { id: number; content: string; special?: boolean }[];
    model?: { type?: string; vocab?: Record<string, number> | [string, number][] };
    decoder?: TokenizerDecoder | null;
  } & Record<string, unknown>;
  _tokenizerConfig: Record<string, unknown>;
}

interface TokenizerDecoder {
  type: string;
  decoders?: TokenizerDecoder[];
}

export interface EncodeOptions {
  addSpecialTokens?: boolean;
  addGenerationPrompt?: boolean;
}

/**
 * Text in, token ids out (and back), on the main thread: encoding a prompt takes microseconds, and keeping the
 * tokenizer here lets the worker deal in ids only.
 *
 * Message content is text, never control: only the chat template emits control tokens. The template is rendered
 * once with the real contents and once with an unguessable placeholder per message; the placeholders cut the
 * rendering into template text (tokenized with special tokens, as the template means them) and contents
 * (tokenized by a twin tokenizer that knows no special tokens, so `<|im_end|>` in a message is just characters).
 * A raw `prompt` keeps parsing special tokens, as vLLM does: whoever writes raw prompts writes the whole sequence.
 */
export class PromptCodec {
  /** The tokenizer without its special added tokens: special-token text becomes ordinary text. */
  private readonly plain: Tokenizer;
  /** Special tokens' texts, to notice content that spells one. */
  private readonly specialTexts: string[];

  private constructor(readonly tokenizer: PreTrainedTokenizer) {
    const src = tokenizer as unknown as TokenizerSources;
    const added = src._tokenizerJSON.added_tokens ?? [];
    this.specialTexts = added.filter((t) => t.special).map((t) => t.content);
    this.plain = new Tokenizer({ ...src._tokenizerJSON, added_tokens: added.filter((t) => !t.special) }, src._tokenizerConfig);
  }

  static async load(path: string, hub: Parameters<typeof configureHub>[0] = {}): Promise<PromptCodec> {
    configureHub(hub);
    return new PromptCodec(await AutoTokenizer.from_pretrained(path));
  }

  get hasChatTemplate(): boolean {
    return Boolean((this.tokenizer as unknown as { chat_template?: unknown }).chat_template);
  }

  /**
   * Ids of a prompt as the engine runs it. `addSpecialTokens` (raw prompts: the tokenizer's BOS and the like) and
   * `addGenerationPrompt` (chat: the template's opening of the assistant turn) default to on, as generation uses them.
   */
  encode(input: GenerateRequest['input'], opts: EncodeOptions = {}): number[] {
    if ('prompt' in input) return this.tokenizer.encode(input.prompt, { add_special_tokens: opts.addSpecialTokens ?? true });
    if (!this.hasChatTemplate)
      throw new EngineError('invalid_request', 'this model has no chat template: send `prompt` instead of `messages`');
    return this.encodeChat(input.messages, opts.addGenerationPrompt ?? true);
  }

  /** Ids of `text` as plain text: special-token spellings are characters like any other. */
  encodePlain(text: string): number[] {
    return text === '' ? [] : this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  private render(messages: readonly Message[], addGenerationPrompt: boolean): string {
    return this.tokenizer.apply_chat_template(messages as Message[], {
      tokenize: false,
      add_generation_prompt: addGenerationPrompt,
    }) as string;
  }

  private encodeChat(messages: readonly Message[], addGenerationPrompt: boolean): number[] {
    const rendered = this.render(messages, addGenerationPrompt);
    let nonce = randomBytes(12).toString('hex');
    while (messages.some((m) => m.content.includes(nonce))) nonce = randomBytes(12).toString('hex');
    const marker = (i: number) => `\u{E000}${nonce}:${i}\u{E001}`;
    const marked = this.render(
      messages.map((m, i) => ({ ...m, content: marker(i) })),
      addGenerationPrompt,
    );
    // split() with a capture group alternates template text (even indices) and message numbers (odd).
    const parts = marked.split(new RegExp(`\u{E000}${nonce}:(\\d+)\u{E001}`, 'u'));
    const contentOf = (part: string) => messages[Number(part)]?.content;
    const rebuilt = parts.map((p, i) => (i % 2 === 0 ? p : (contentOf(p) ?? '\u{FFFD}'))).join('');
    if (rebuilt !== rendered) {
      // The template rewrites content (filters such as trim or upper), so the placeholders cannot be mapped back.
      // Plain content is safe to tokenize whole; special-token text in it cannot be kept as text, so refuse it.
      if (messages.some((m) => this.specialTexts.some((t) => m.content.includes(t)))) {
        throw new EngineError(
          'invalid_request',
          "message content contains a special token's text, and this model's chat " +
            'template rewrites content, so it cannot be kept as plain text; remove it or send a raw `prompt`',
          { param: 'messages' },
        );
      }
      return this.tokenizer.encode(rendered, { add_special_tokens: false });
    }
    const ids: number[] = [];
    parts.forEach((p, i) => {
      if (i % 2 === 0) {
        if (p !== '') ids.push(...this.tokenizer.encode(p, { add_special_tokens: false }));
      } else {
        ids.push(...this.encodePlain(contentOf(p)!));
      }
    });
    return ids;
  }

  /**
   * Each id's token as tokenizer.json spells it (byte-level BPE keeps its byte-to-character mapping, which XGrammar
   * undoes itself), special tokens as "" (so no grammar ever lets one through as text), and the decoder family
   * XGrammar needs to read them: byte-level (GPT-2, Llama 3, Qwen2, SmolLM2, the bundled pair), byte fallback
   * (Llama 2, Mistral: `<0x0A>` pieces) or raw.
   */
  grammarVocabulary(): GrammarVocabulary {
    const json = (this.tokenizer as unknown as TokenizerSources)._tokenizerJSON;
    const tokens: string[] = [];
    const vocab = json.model?.vocab ?? {};
    const pairs = Array.isArray(vocab) ? vocab.map(([t], i) => [t, i] as const) : Object.entries(vocab);
    for (const [t, id] of pairs) tokens[id] = t;
    for (const a of json.added_tokens ?? []) tokens[a.id] = a.special ? '' : a.content;
    for (let i = 0; i < tokens.length; i++) tokens[i] ??= '';
    const kinds = (d: TokenizerDecoder | null | undefined): string[] => (d ? [d.type, ...(d.decoders ?? []).flatMap(kinds)] : []);
    const decoders = kinds(json.decoder);
    const type = decoders.includes('ByteLevel') ? 'byte_level' : decoders.includes('ByteFallback') ? 'byte_fallback' : 'raw';
    return { tokens, type, prependSpace: type === 'byte_fallback' && decoders.includes('Strip') };
  }

  decode = (ids: number[]): string => this.tokenizer.decode(ids, { skip_special_tokens: true });

  /** Text of ids with their special tokens spelled out (vLLM's /detokenize), so ids → text → ids is lossless. */
  decodeAll(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: false });
  }

  /** Draft and target must share one vocabulary, id for id, or the draft's proposals mean nothing to the target. */
  sameVocabulary(other: PromptCodec): boolean {
    const a = this.tokenizer.get_vocab() as Map<string, number> | Record<string, number>;
    const b = other.tokenizer.get_vocab() as Map<string, number> | Record<string, number>;
    const entries = (v: Map<string, number> | Record<string, number>) => (v instanceof Map ? [...v.entries()] : Object.entries(v));
    const ea = entries(a),
      mb = new Map(entries(b));
    return ea.length === mb.size && ea.every(([tok, id]) => mb.get(tok) === id);
  }
}
