import type { DoneEvent, EmittedToken, Mode } from '../../engine/index.ts';
import type {
  ChatLogprobs,
  CompletionLogprobs,
  ChatCompletionChunk,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionResponse,
  OpenAIFinishReason,
  SpecdExtra,
  Usage,
} from '../../protocol/index.ts';
import { wireStats } from '../stream-summary.ts';

type Logprobs = ChatLogprobs | CompletionLogprobs;

/** One finished choice of a non-streamed response. */
export interface Choice {
  done: DoneEvent;
  logprobs: Logprobs | null;
}
const utf8 = (text: string) => [...Buffer.from(text, 'utf8')];

/**
 * A stream's token log-probabilities in OpenAI's shapes, gathered as tokens arrive and handed out with the chunk
 * (or response) whose text they belong to: chat's `content` entries, or completions' parallel arrays.
 */
export class LogprobsCollector {
  private pending: EmittedToken[] = [];
  /** Characters of completion text before the pending tokens (completions' text_offset). */
  private offset = 0;

  constructor(readonly kind: 'chat' | 'completion') {}

  add(tokens: readonly EmittedToken[]): void {
    for (const t of tokens) if (t.logprobs) this.pending.push(t);
  }

  /** The pending tokens' logprobs (null when there are none) and a fresh start. */
  take(): Logprobs | null {
    if (this.pending.length === 0) return null;
    const tokens = this.pending;
    this.pending = [];
    if (this.kind === 'chat') {
      return {
        content: tokens.map((t) => ({
          token: t.logprobs!.text,
          logprob: t.logprobs!.logprob,
          bytes: utf8(t.logprobs!.text),
          top_logprobs: t.logprobs!.top.map((e) => ({ token: e.text, logprob: e.logprob, bytes: utf8(e.text) })),
        })),
        refusal: null,
      };
    }
    const text_offset: number[] = [];
    for (const t of tokens) {
      text_offset.push(this.offset);
      this.offset += t.text.length;
    }
    const anyTop = tokens.some((t) => t.logprobs!.top.length > 0);
    return {
      tokens: tokens.map((t) => t.logprobs!.text),
      token_logprobs: tokens.map((t) => t.logprobs!.logprob),
      top_logprobs: anyTop ? tokens.map((t) => Object.fromEntries(t.logprobs!.top.map((e) => [e.text, e.logprob]))) : null,
      text_offset,
    };
  }
}

/** Builds OpenAI response and chunk objects for one request (`chat.completion[.chunk]` or `text_completion`). */
export class OpenAIFormatter {
  constructor(
    readonly kind: 'chat' | 'completion',
    readonly id: string,
    readonly created: number,
    readonly model: string,
    readonly includeUsage: boolean,
  ) {}

  specd(done: DoneEvent, mode: Mode, seed: number | null): SpecdExtra {
    const { timings, speculative, route } = wireStats(done);
    return { mode, seed, timings, speculative, ...(route ? { route } : {}), ...(done.error ? { error: done.error } : {}) };
  }

  /** OpenAI's usage over all choices: the prompt counted once, the completions summed. */
  usage(dones: readonly DoneEvent[]): Usage {
    const prompt = wireStats(dones[0]!).usage.prompt_tokens;
    const completion = dones.reduce((n, d) => n + wireStats(d).usage.completion_tokens, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  /**
   * The whole response, one choice per stream (index = position). `specd` carries the first choice's figures;
   * each streamed finish chunk carries its own choice's.
   */
  response(choices: readonly Choice[], mode: Mode, seed: number | null): CompletionResponse | ChatCompletionResponse {
    const head = { id: this.id, created: this.created, model: this.model };
    const tail = { usage: this.usage(choices.map((c) => c.done)), specd: this.specd(choices[0]!.done, mode, seed) };
    if (this.kind === 'chat') {
      return {
        ...head,
        object: 'chat.completion',
        choices: choices.map(({ done, logprobs }, index) => ({
          index,
          message: { role: 'assistant' as const, content: done.text },
          finish_reason: done.finishReason,
          logprobs: logprobs as ChatLogprobs | null,
        })),
        ...tail,
      };
    }
    return {
      ...head,
      object: 'text_completion',
      choices: choices.map(({ done, logprobs }, index) => ({
        index,
        text: done.text,
        finish_reason: done.finishReason,
        logprobs: logprobs as CompletionLogprobs | null,
      })),
      ...tail,
    };
  }

  /** A chat choice's opening chunk carrying the assistant role (OpenAI sends it before any content). */
  roleChunk(index = 0): ChatCompletionChunk {
    return this.chatChunk({ role: 'assistant', content: '' }, null, null, index);
  }

  /** A content chunk for one engine step's text delta (with the logprobs of the tokens it completes). */
  textChunk(text: string, logprobs: Logprobs | null = null, index = 0): CompletionChunk | ChatCompletionChunk {
    return this.kind === 'chat'
      ? this.chatChunk({ content: text }, null, logprobs, index)
      : this.completionChunk(text, null, logprobs, index);
  }

  /** A choice's chunk with finish_reason and its `specd` figures (and logprobs of tokens that added no text). */
  finishChunk(
    done: DoneEvent,
    mode: Mode,
    seed: number | null,
    logprobs: Logprobs | null = null,
    index = 0,
  ): CompletionChunk | ChatCompletionChunk {
    const chunk =
      this.kind === 'chat'
        ? this.chatChunk({}, done.finishReason, logprobs, index)
        : this.completionChunk('', done.finishReason, logprobs, index);
    return { ...chunk, specd: this.specd(done, mode, seed) };
  }

  /** `stream_options.include_usage`: the last chunk, with no choices and the usage of all of them. */
  usageChunk(dones: readonly DoneEvent[]): CompletionChunk | ChatCompletionChunk {
    const usage = this.usage(dones);
    return this.kind === 'chat'
      ? { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage }
      : { id: this.id, object: 'text_completion', created: this.created, model: this.model, choices: [], usage };
  }

  private chatChunk(
    delta: ChatCompletionChunk['choices'][number]['delta'],
    finish: OpenAIFinishReason | null,
    logprobs: Logprobs | null,
    index: number,
  ): ChatCompletionChunk {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index, delta, finish_reason: finish, logprobs: logprobs as ChatLogprobs | null }],
      ...(this.includeUsage ? { usage: null } : {}),
    };
  }

  private completionChunk(text: string, finish: OpenAIFinishReason | null, logprobs: Logprobs | null, index: number): CompletionChunk {
    return {
      id: this.id,
      object: 'text_completion',
      created: this.created,
      model: this.model,
      choices: [{ index, text, finish_reason: finish, logprobs: logprobs as CompletionLogprobs | null }],
      ...(this.includeUsage ? { usage: null } : {}),
    };
  }
}
