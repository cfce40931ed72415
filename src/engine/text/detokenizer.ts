/**
 * Incremental detokenising for one stream, with the prefix/read-offset technique of vLLM and TGI: the new tokens
 * are decoded together with a short window of the tokens before them, and the new text is the difference in
 * length. The window keeps context-dependent decoding right (SentencePiece drops the leading space of the first
 * token only) while the cost per token stays independent of the stream's length.
 *
 * The window is `win`: `win[0, read)` is context whose text (`prefixLen` characters) was already emitted (or is
 * prompt), `win[read, …)` are tokens whose text is not all final yet. After a push whose decoded window ends in a
 * complete character, the window slides (vLLM's `prefix_offset = read_offset; read_offset = len`), so it normally
 * holds the tokens of the last emission plus the new one.
 *
 * Held back: a trailing run of U+FFFD, which is what a non-fatal UTF-8 decoder (ByteLevel, ByteFallback) makes of
 * a multi-byte character whose remaining bytes are in tokens not generated yet. The text before that run is final
 * and is emitted at once; the run follows when a later token ends the text with something else, or at `flush()`.
 * A U+FFFD that is genuinely in the text (invalid bytes, or the character itself) is thus emitted one token late.
 *
 * Assumes `decode` is prefix-stable apart from that trailing run: decoding more tokens never rewrites text already
 * decoded (true for ByteLevel and Metaspace decoders; not for `clean_up_tokenization_spaces`, which the project's
 * tokenizers leave off).
 */
export class IncrementalDetokenizer {
  /** Tokens of the prompt used as initial context (vLLM uses 5). */
  static readonly PROMPT_CONTEXT = 5;

  private readonly decodeFn: (ids: number[]) => string;
  private win: number[];
  private read: number;
  private prefixLen: number;
  /** Characters after `prefixLen` already emitted while the window's end was still an incomplete character. */
  private emitted = 0;

  constructor(decode: (ids: number[]) => string, promptIds: readonly number[] = []) {
    this.decodeFn = decode;
    // The context must end on a complete character: if the prompt's last tokens hold half of one, drop them, so
    // the generated tokens decode as they would on their own (the invariant is decode(generated ids)).
    const ctx = promptIds.slice(-IncrementalDetokenizer.PROMPT_CONTEXT);
    let text = this.decode(ctx);
    while (ctx.length > 0 && text.endsWith('\uFFFD')) {
      ctx.pop();
      text = this.decode(ctx);
    }
    this.win = ctx;
    this.read = ctx.length;
    this.prefixLen = text.length;
  }

  /** Adds tokens; `perToken[i]` is the text that became final with token i ('' while a character is incomplete). */
  push(ids: readonly number[]): { delta: string; perToken: string[] } {
    const perToken = new Array<string>(ids.length);
    let delta = '';
    for (let i = 0; i < ids.length; i++) {
      const t = this.pushOne(ids[i]!);
      perToken[i] = t;
      delta += t;
    }
    return { delta, perToken };
  }

  /** Adds one token and returns the text it made final. */
  pushOne(id: number): string {
    const win = this.win;
    win.push(id);
    const full = this.decode(win);
    let end = full.length;
    while (end > 0 && full.charCodeAt(end - 1) === 0xfffd) end--;
    const from = this.prefixLen + this.emitted;
    const out = end > from ? full.slice(from, end) : '';
    if (end < full.length) {
      // Ends in an incomplete character: keep the window (it must restart the character's bytes later).
      this.emitted += out.length;
    } else if (full.length > this.prefixLen) {
      // Everything is final: slide, keeping the tokens since the last slide as the next context.
      this.win = win.slice(this.read);
      this.read = this.win.length;
      this.prefixLen = this.decode(this.win).length;
      this.emitted = 0;
    } else {
      // The tokens since `read` produce no text (skipped special tokens, e.g. a run of EOS with ignoreEos): drop
      // them, so they neither grow the window nor become the only context (which would cost a SentencePiece space).
      win.length = this.read;
      this.emitted = 0;
    }
    return out;
  }

  /** Whatever is still held back when the stream ends (U+FFFD if it ended mid-character). */
  flush(): string {
    if (this.win.length === this.read) return '';
    const full = this.decode(this.win);
    const from = this.prefixLen + this.emitted;
    this.emitted = Math.max(0, full.length - this.prefixLen);
    return full.length > from ? full.slice(from) : '';
  }

  private decode(ids: number[]): string {
    return ids.length > 0 ? this.decodeFn(ids) : ''; // transformers.js throws on an empty list
  }
}
