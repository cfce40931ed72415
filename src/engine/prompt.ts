import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import { configureHub } from './model/decoder.ts';
import { EngineError, type GenerateRequest } from './types.ts';

/**
 * Text in, token ids out (and back), on the main thread: encoding a prompt takes microseconds, and keeping the
 * tokenizer here lets the worker deal in ids only.
 */
export class PromptCodec {
  private constructor(readonly tokenizer: PreTrainedTokenizer) {}

  static async load(path: string, hub: Parameters<typeof configureHub>[0] = {}): Promise<PromptCodec> {
    configureHub(hub);
    return new PromptCodec(await AutoTokenizer.from_pretrained(path));
  }

  get hasChatTemplate(): boolean {
    return Boolean((this.tokenizer as unknown as { chat_template?: unknown }).chat_template);
  }

  encode(input: GenerateRequest['input']): number[] {
    if ('prompt' in input) return this.tokenizer.encode(input.prompt);
    if (!this.hasChatTemplate) throw new EngineError('invalid_request', 'this model has no chat template: send `prompt` instead of `messages`');
    const text = this.tokenizer.apply_chat_template(input.messages, { tokenize: false, add_generation_prompt: true }) as string;
    return this.tokenizer.encode(text, { add_special_tokens: false });
  }

  decode = (ids: number[]): string => this.tokenizer.decode(ids, { skip_special_tokens: true });

  /** Draft and target must share one vocabulary, id for id, or the draft's proposals mean nothing to the target. */
  sameVocabulary(other: PromptCodec): boolean {
    const a = this.tokenizer.get_vocab() as Map<string, number> | Record<string, number>;
    const b = other.tokenizer.get_vocab() as Map<string, number> | Record<string, number>;
    const entries = (v: Map<string, number> | Record<string, number>) => (v instanceof Map ? [...v.entries()] : Object.entries(v));
    const ea = entries(a), mb = new Map(entries(b));
    return ea.length === mb.size && ea.every(([tok, id]) => mb.get(tok) === id);
  }
}
