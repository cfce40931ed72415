import { IncrementalDetokenizer } from './detokenizer.ts';
import { StopMatcher } from './stop.ts';

export interface StreamTextOptions {
  decode: (ids: number[]) => string;
  stop: readonly string[];
  promptIds?: readonly number[];
}

export interface PushResult {
  /** The stream's new text (U+FFFD and stop-string holdback applied). */
  text: string;
  /** What each used token made final; joins to `text`. */
  perToken: string[];
  stopped: boolean;
  /** Tokens needed to reach the stop string when `stopped`, else all of them. */
  tokensUsed: number;
}

/** One stream's text output: incremental detokenising followed by stop-string matching. */
export class StreamText {
  private readonly detok: IncrementalDetokenizer;
  private readonly stop: StopMatcher;

  constructor(opts: StreamTextOptions) {
    this.detok = new IncrementalDetokenizer(opts.decode, opts.promptIds ?? []);
    this.stop = new StopMatcher(opts.stop);
  }

  push(ids: readonly number[]): PushResult {
    const perToken: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const { emit, stopped } = this.stop.push(this.detok.push(ids[i]!));
      perToken.push(emit);
      if (stopped) return { text: perToken.join(''), perToken, stopped: true, tokensUsed: i + 1 };
    }
    return { text: perToken.join(''), perToken, stopped: false, tokensUsed: ids.length };
  }

  /** Text still held back at the end of a stream that did not hit a stop string. */
  finish(): string {
    const { emit, stopped } = this.stop.push(this.detok.flush());
    return stopped ? emit : emit + this.stop.flush();
  }
}
