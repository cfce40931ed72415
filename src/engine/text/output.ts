import { IncrementalDetokenizer } from './detokenizer.ts';
import { StopMatcher } from './stop.ts';

export interface StreamTextOptions {
  /** ids → text, e.g. `ids => tokenizer.decode(ids, { skip_special_tokens: true })`. Never called with []. */
  decode: (ids: number[]) => string;
  stop: readonly string[];
  /** The prompt's ids: its last tokens are the decoding context of the first generated ones. */
  promptIds?: readonly number[];
}

export interface PushResult {
  /** The stream's new text (incomplete-character and stop-string holdback applied). */
  text: string;
  /** What each used token made final (length `tokensUsed`); joins to `text`. */
  perToken: string[];
  /** A stop string was reached: the stream ends; its text and anything after it are never emitted. */
  stopped: boolean;
  /** When `stopped`, how many of the pushed ids it took to reach the stop string (the rest are discarded);
   *  otherwise all of them. */
  tokensUsed: number;
}

/** One stream's text output: incremental detokenising, then stop-string matching. */
export class StreamText {
  private readonly detok: IncrementalDetokenizer;
  private readonly stop: StopMatcher;

  constructor(opts: StreamTextOptions) {
    this.detok = new IncrementalDetokenizer(opts.decode, opts.promptIds ?? []);
    this.stop = new StopMatcher(opts.stop);
  }

  get stopped(): boolean {
    return this.stop.stopped;
  }

  push(ids: readonly number[]): PushResult {
    if (this.stop.stopped) return { text: '', perToken: [], stopped: true, tokensUsed: 0 };
    const perToken: string[] = [];
    let text = '';
    for (let i = 0; i < ids.length; i++) {
      const { emit, stopped } = this.stop.push(this.detok.pushOne(ids[i]!));
      perToken.push(emit);
      text += emit;
      if (stopped) return { text, perToken, stopped: true, tokensUsed: i + 1 };
    }
    return { text, perToken, stopped: false, tokensUsed: ids.length };
  }

  /** Text still held back at the end of the stream (a stop string completed by it is cut off as usual). */
  finish(): string {
    if (this.stop.stopped) return '';
    const { emit, stopped } = this.stop.push(this.detok.flush());
    return stopped ? emit : emit + this.stop.flush();
  }
}
