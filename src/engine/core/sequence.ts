import type { GrammarConstraint } from '../grammar/constraint.ts';
import { emptyStepResult as emptyResult, type SourceCode, type StepResult, type ToWorker } from '../ipc/messages.ts';
import { Acceptance } from '../scheduler/adaptive-k.ts';
import { tokenLogprob } from '../sampling/logprobs.ts';
import { TokenChooser } from '../speculation/chooser.ts';
import type { Mode } from '../types.ts';

export type OpenMessage = Extract<ToWorker, { type: 'open' }>;

/**
 * One stream inside the core: its tokens, sampler and acceptance record, and where its caches are. Invariant between
 * iterations: the target cache holds every token but the last (whose logits the next verify pass computes); the
 * draft cache may trail by more, and the next draft pass feeds what it lacks.
 */
export class Sequence {
  readonly sid: number;
  readonly mode: Mode;
  readonly tokens: number[];
  readonly promptLength: number;
  readonly chooser: TokenChooser;
  readonly acceptance: Acceptance;
  readonly eos: ReadonlySet<number>;
  readonly k: number | 'auto';
  readonly allowanceMs: number;
  /** Top alternatives to report with each token's log-probability; null when the request asked for none. */
  readonly logprobs: number | null;
  /** Seeded and sampled: decodes only once its draft is ready (see OpenMessage.pinned). */
  readonly pinned: boolean;
  /** Its output grammar's state (constrained streams; set before the stream is admitted). */
  grammar: GrammarConstraint | null = null;
  /** Completion tokens it may still make. */
  left: number;
  /** Draft distributions of the current round's proposals (sampling only). */
  readonly qRows: Float32Array[] = [];
  /** The current round's proposals. */
  drafts: number[] = [];
  /** Proposals wanted this round; drafting stops early at an EOS proposal. */
  roundK = 0;
  /** Has a draft cache in the running draft batch (spec streams join it after their draft prefill). */
  draftReady = false;
  /** Has its first token (its target prefill, or the draft's in draft mode, is done). */
  started = false;
  done = false;
  closed = false;
  /** Result being built for this iteration (sent and reset after each pass group). */
  out: StepResult;

  constructor(msg: OpenMessage, vocab: number, eos: ReadonlySet<number>, alphaPrior: number) {
    this.sid = msg.sid;
    this.mode = msg.mode;
    this.tokens = [...msg.promptIds];
    this.promptLength = msg.promptIds.length;
    this.chooser = new TokenChooser(msg.sampling, vocab, msg.promptIds.length);
    this.acceptance = new Acceptance(alphaPrior);
    // A grammar's end is the stream's end, ignore_eos or not: after it, the grammar allows nothing else.
    this.eos = msg.ignoreEos && !msg.grammar ? new Set() : eos;
    this.k = msg.k;
    this.allowanceMs = msg.allowanceMs;
    this.logprobs = msg.logprobs;
    this.pinned = msg.pinned ?? false;
    this.left = msg.maxNew;
    this.out = emptyResult(this.sid);
  }

  /**
   * Appends tokens up to (not including) the first EOS; ends the stream on EOS or when it is out of tokens.
   * `row(i)` is the logits row token i was chosen from (the pass's own buffer, read at once), for logprobs.
   */
  emit(tokens: readonly number[], sources: readonly SourceCode[], row?: (i: number) => Float32Array): void {
    for (let i = 0; i < tokens.length && this.left > 0; i++) {
      if (this.eos.has(tokens[i]!)) {
        this.out.eos = true;
        break;
      }
      this.out.tokens.push(tokens[i]!);
      this.out.sources.push(sources[i]!);
      if (this.logprobs !== null) {
        if (!row) throw new Error('emit: logprobs asked for but no logits row given');
        (this.out.logprobs ??= []).push(tokenLogprob(row(i), tokens[i]!, this.logprobs));
      }
      this.tokens.push(tokens[i]!);
      this.left--;
    }
    if (this.out.eos || this.left <= 0) this.done = this.out.done = true;
  }

  /** A logits row as this stream chooses from it at position j of its round: masked by its grammar, if any. */
  masked(row: Float32Array, j: number): Float32Array {
    return this.grammar ? this.grammar.row(row, j) : row;
  }

  /** Sits out this iteration's verify pass: a pinned stream whose draft is still prefilling. */
  get waiting(): boolean {
    return this.pinned && this.mode === 'speculative' && !this.draftReady;
  }

  /** Takes this iteration's result (null if nothing happened to the stream) and starts a fresh one. */
  takeResult(): StepResult | null {
    const r = this.out;
    this.out = emptyResult(this.sid);
    const touched = r.done || r.tokens.length > 0 || r.targetTokens > 0 || r.draftCalls > 0;
    return touched ? r : null;
  }
}
