import type { DoneEvent, Mode } from '../../engine/index.ts';
import type {
  ChatCompletionChunk,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionResponse,
  OpenAIFinishReason,
  SpecdExtra,
  Usage,
} from '../../protocol/index.ts';
import { wireStats } from '../stream-summary.ts';

/** Builds OpenAI response and chunk objects for one stream (`chat.completion[.chunk]` or `text_completion`). */
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

  usage(done: DoneEvent): Usage {
    return wireStats(done).usage;
  }

  response(done: DoneEvent, mode: Mode, seed: number | null): CompletionResponse | ChatCompletionResponse {
    const head = { id: this.id, created: this.created, model: this.model };
    const tail = { usage: this.usage(done), specd: this.specd(done, mode, seed) };
    const finish_reason: OpenAIFinishReason = done.finishReason;
    if (this.kind === 'chat') {
      return {
        id: head.id,
        object: 'chat.completion',
        created: head.created,
        model: head.model,
        choices: [{ index: 0, message: { role: 'assistant', content: done.text }, finish_reason, logprobs: null }],
        ...tail,
      };
    }
    return {
      id: head.id,
      object: 'text_completion',
      created: head.created,
      model: head.model,
      choices: [{ index: 0, text: done.text, finish_reason, logprobs: null }],
      ...tail,
    };
  }

  /** The chat stream's opening chunk carrying the assistant role (OpenAI sends it before any content). */
  roleChunk(): ChatCompletionChunk {
    return this.chatChunk({ role: 'assistant', content: '' }, null);
  }

  /** A content chunk for one engine step's text delta. */
  textChunk(text: string): CompletionChunk | ChatCompletionChunk {
    return this.kind === 'chat' ? this.chatChunk({ content: text }, null) : this.completionChunk(text, null);
  }

  /** The chunk with finish_reason, carrying the `specd` figures. */
  finishChunk(done: DoneEvent, mode: Mode, seed: number | null): CompletionChunk | ChatCompletionChunk {
    const chunk = this.kind === 'chat' ? this.chatChunk({}, done.finishReason) : this.completionChunk('', done.finishReason);
    return { ...chunk, specd: this.specd(done, mode, seed) };
  }

  /** `stream_options.include_usage`: the last chunk, with no choices and the usage. */
  usageChunk(done: DoneEvent): CompletionChunk | ChatCompletionChunk {
    const usage = this.usage(done);
    return this.kind === 'chat'
      ? { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, choices: [], usage }
      : { id: this.id, object: 'text_completion', created: this.created, model: this.model, choices: [], usage };
  }

  private chatChunk(delta: ChatCompletionChunk['choices'][number]['delta'], finish: OpenAIFinishReason | null): ChatCompletionChunk {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      ...(this.includeUsage ? { usage: null } : {}),
    };
  }

  private completionChunk(text: string, finish: OpenAIFinishReason | null): CompletionChunk {
    return {
      id: this.id,
      object: 'text_completion',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
      ...(this.includeUsage ? { usage: null } : {}),
    };
  }
}
