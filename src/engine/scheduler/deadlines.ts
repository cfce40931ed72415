/**
 * Step deadlines: the worker runs the queued step with the earliest deadline first (EDF), so a stream with a tight
 * per-token budget is stepped as often as its budget needs while relaxed streams absorb the wait. Each stream keeps
 * a virtual clock that advances by its per-token allowance × the tokens a step is expected to make; a step's
 * deadline is the clock after it. When every stream has the same allowance this is round-robin by tokens; a
 * stream that fell behind keeps its early deadlines and catches up first.
 */

import type { ToWorker } from '../ipc/messages.ts';

/**
 * Per-token allowance of a stream without an ITL budget: best effort. Between such streams only the ratio matters
 * (equal allowances take turns by tokens). Next to budgeted streams they yield, but never more than this per token
 * times the worker's load, so they are never starved; and their demand, which the router cannot steer (they are
 * always served by the target), stays small enough not to push budgeted streams that are already running over
 * their budgets when a burst of them arrives.
 */
export const UNBUDGETED_ITL_MS = 200;

/** Wall-clock milliseconds that mean the same instant in every thread (performance.now() is per thread). */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export class StreamClock {
  private vt: number;
  /** Tokens each step in flight was charged for at dispatch, oldest first. */
  private readonly charged: number[] = [];

  /**
   * `stepMs` and `tokensPerStep` start as predicted for the stream's mode, so it counts from the moment it starts.
   * `startAt`: the earliest clock among the running streams. While the worker has time to spare, every clock runs
   * ahead of real time; a newcomer starting at "now" would hold the earliest deadlines until it caught up, and
   * every stream already running would stall meanwhile.
   */
  constructor(
    readonly allowanceMs: number,
    private stepMs: number,
    private tokensPerStep: number,
    startAt = epochMs(),
  ) {
    this.vt = Math.max(startAt, epochMs());
  }

  /** The deadline of this stream's latest queued step. */
  get virtualTime(): number {
    return this.vt;
  }

  /** The deadline of the next step, which is expected to make `tokens` tokens. */
  nextDeadline(tokens: number): number {
    const charge = Math.max(1, tokens);
    this.charged.push(charge);
    this.vt = Math.max(this.vt, epochMs()) + this.allowanceMs * charge;
    return this.vt;
  }

  /** Records a finished step (in dispatch order): its worker time and the tokens it made. The clock is corrected
   *  from the tokens the step was charged for to those it made, so a speculative stream whose drafts are accepted
   *  less than expected is not charged for tokens it never got (and a prefill chunk, which makes none, is free). */
  observe(wallMs: number, tokens: number): void {
    const charged = this.charged.shift();
    if (charged !== undefined) this.vt += this.allowanceMs * (tokens - charged);
    this.stepMs += 0.2 * (wallMs - this.stepMs);
    this.tokensPerStep += 0.2 * (Math.max(1, tokens) - this.tokensPerStep);
  }

  /** Share of the worker's time this stream needs to keep its allowance. */
  demand(): number {
    return this.stepMs / (this.allowanceMs * this.tokensPerStep);
  }
}

/** The worker's pick from its inbox: opens and closes first, in arrival order (they are cheap and order the streams'
 *  lives); then the step with the earliest deadline. A stream's own steps carry increasing deadlines, so they still
 *  run in order. Removes the pick from `inbox`. */
export function takeNext(inbox: ToWorker[]): ToWorker {
  let i = inbox.findIndex((m) => m.type !== 'step');
  if (i < 0) {
    i = 0;
    for (let j = 1; j < inbox.length; j++) if (deadline(inbox[j]!) < deadline(inbox[i]!)) i = j;
  }
  return inbox.splice(i, 1)[0]!;
}

const deadline = (m: ToWorker) => (m.type === 'step' ? m.deadline : -Infinity);
