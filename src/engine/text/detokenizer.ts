/**
 * Incremental detokenising for one stream, with the prefix/read-offset technique of vLLM and TGI: each new token
 * is decoded together with a short window of the tokens before it, and the new text is the difference. The window
 * keeps tokenizer-dependent effects (SentencePiece's leading-space handling, byte-level merges) right, and keeps
 * the cost per token independent of the stream's length. Text ending in U+FFFD (an incomplete UTF-8 sequence)
 * is held back until the bytes that complete it arrive.
 */
export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  private readonly decode: (ids: number[]) => string;

  constructor(decode: (ids: number[]) => string, promptIds: readonly number[] = [], context = 4) {
    this.decode = (ids) => (ids.length > 0 ? decode(ids) : ''); // transformers.js throws on an empty list
    this.ids = promptIds.slice(-context);
    this.readOffset = this.ids.length;
  }

  /** The text that token `id` makes final ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    if (full.length <= prefix.length || full.endsWith('\uFFFD')) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }

  /** Whatever is still held back when the stream ends (may end in U+FFFD if it ended mid-character). */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }
}
