import type { Mode } from '../types.ts';
import { emptyStepResult as emptyStep, type SourceCode, type StepResult } from '../ipc/messages.ts';
import { TokenChooser } from './chooser.ts';
import { verifyDrafts } from './verify.ts';

/** What the step logic needs from a model: a growing cache and one forward pass over new tokens. */
export interface Cache {
  length: number;
  truncate(n: number): void;
}
export interface ForwardModel<C extends Cache = Cache> {
  newCache(): C;
  /**
   * Logits rows × vocab for `ids` run on top of `cache` (which grows by ids.length): all ids.length rows, or at
   * least the last `keep` when keep > 0 (a model may return more; read them from the end).
   */
  forward(cache: C, ids: readonly number[], keep?: number): Promise<Float32Array>;
  readonly vocab: number;
}

export interface Models<C extends Cache = Cache> {
  target: ForwardModel<C>;
  draft: ForwardModel<C> | null;
}

/**
 * One stream's decoding state inside the worker, and the three kinds of step it can take.
 *
 * Invariant between steps: every cache holds all of `tokens` except the last one (whose logits the next pass
 * computes), or less while the prompt is still being prefilled. A speculative round feeds the target the last
 * token plus k proposals, keeps the agreeing prefix, and rolls back the rest by truncation.
 */
export class StreamState<C extends Cache = Cache> {
  readonly tokens: number[];
  private readonly targetCache: C | null;
  private readonly draftCache: C | null;
  private readonly chooser: TokenChooser;
  private readonly qRows: Float32Array[] = [];
  private prefilled = false;

  constructor(
    private readonly models: Models<C>,
    promptIds: readonly number[],
    readonly mode: Mode,
    sampling: ConstructorParameters<typeof TokenChooser>[0],
    private readonly eos: ReadonlySet<number>,
    private readonly prefillChunk: number,
  ) {
    if (promptIds.length === 0) throw new Error('empty prompt');
    if (mode !== 'target' && !models.draft) throw new Error(`mode ${mode} needs a draft model`);
    this.tokens = [...promptIds];
    this.targetCache = mode === 'draft' ? null : models.target.newCache();
    this.draftCache = mode === 'target' ? null : models.draft!.newCache();
    this.chooser = new TokenChooser(sampling, models.target.vocab, promptIds.length);
  }

  /** One unit of work: a prefill chunk while the prompt is not cached yet, else one decoding step of ≥ 1 token. */
  async step(k: number, maxNew: number): Promise<StepResult> {
    const r = emptyStep();
    if (await this.prefillStep(r)) return r;
    if (this.mode === 'draft') await this.draftOnlyStep(r);
    else await this.round(Math.max(0, Math.min(k, maxNew - 1)), r);
    return r;
  }

  /** Runs one chunk of the prompt (all but its last token) through each model that still lacks it. Only the
   *  prompt is prefilled: after a round the draft may trail by a token or two, which the next proposal feeds. */
  private async prefillStep(r: StepResult): Promise<boolean> {
    if (this.prefilled) return false;
    const goal = this.tokens.length - 1;
    let ran = false;
    for (const [cache, model, isDraft] of [
      [this.targetCache, this.models.target, false],
      [this.draftCache, this.models.draft, true],
    ] as const) {
      if (!cache || !model || cache.length >= goal) continue;
      const chunk = this.tokens.slice(cache.length, Math.min(goal, cache.length + this.prefillChunk));
      const t0 = performance.now();
      await model.forward(cache, chunk, 1); // its logits are not used: keep the fewest the graph allows
      const ms = performance.now() - t0;
      if (isDraft) {
        r.draftMs += ms;
        r.draftCalls++;
      } else {
        r.targetMs += ms;
        r.targetTokens += chunk.length;
      }
      ran = true;
    }
    r.prefill = ran;
    this.prefilled = !ran;
    return ran;
  }

  private async draftOnlyStep(r: StepResult): Promise<void> {
    const draft = this.models.draft!,
      cache = this.draftCache!;
    const t0 = performance.now();
    const logits = await draft.forward(cache, this.tokens.slice(cache.length), 1);
    r.draftMs = performance.now() - t0;
    r.draftCalls = 1;
    this.emit(r, [this.chooser.choose(lastRow(logits, draft.vocab), this.tokens)], [0]);
  }

  /** Draft k proposals, verify them with one target pass, keep the agreeing prefix plus one target token. */
  private async round(k: number, r: StepResult): Promise<void> {
    const n = this.tokens.length;
    const target = this.models.target,
      tCache = this.targetCache!;
    const drafts = k > 0 ? await this.propose(k, r) : [];
    const t0 = performance.now();
    const logits = await target.forward(tCache, [this.tokens[n - 1]!, ...drafts]);
    r.targetMs = performance.now() - t0;
    r.targetTokens = drafts.length + 1;

    const V = target.vocab;
    const v = verifyDrafts(this.chooser, (j) => row(logits, V, j), drafts, this.qRows, this.tokens, this.eos);
    const accepted = v.accepted;
    r.proposed = drafts.length;
    r.accepted = accepted;
    tCache.truncate(n + accepted);
    if (this.draftCache) this.draftCache.truncate(Math.min(this.draftCache.length, n + accepted));
    this.emit(r, v.tokens, v.sources);
  }

  private async propose(k: number, r: StepResult): Promise<number[]> {
    const draft = this.models.draft!,
      cache = this.draftCache!;
    const V = draft.vocab;
    const drafts: number[] = [];
    const history = this.tokens;
    const n = history.length;
    let feed = history.slice(cache.length);
    const t0 = performance.now();
    for (let j = 0; j < k; j++) {
      const logits = await draft.forward(cache, feed, 1);
      r.draftCalls++;
      const last = lastRow(logits, V);
      const d = this.chooser.greedy
        ? this.chooser.choose(last, history)
        : this.chooser.propose(last, history, (this.qRows[j] ??= new Float32Array(V)));
      drafts.push(d);
      history.push(d);
      if (this.eos.has(d)) break; // nothing after EOS can be accepted
      feed = [d];
    }
    history.length = n;
    r.draftMs = performance.now() - t0;
    return drafts;
  }

  /** Append tokens up to (not including) the first EOS. */
  private emit(r: StepResult, tokens: number[], sources: SourceCode[]): void {
    for (let i = 0; i < tokens.length; i++) {
      if (this.eos.has(tokens[i]!)) {
        r.eos = true;
        break;
      }
      r.tokens.push(tokens[i]!);
      r.sources.push(sources[i]!);
      this.tokens.push(tokens[i]!);
    }
    // A stream that ended keeps its caches until close; nothing else to do.
  }
}

function row(logits: Float32Array, V: number, j: number): Float32Array {
  return logits.subarray(j * V, (j + 1) * V);
}
function lastRow(logits: Float32Array, V: number): Float32Array {
  return logits.subarray(logits.length - V);
}
