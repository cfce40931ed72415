import type { EmittedToken, SpeculativeStats, Timings } from './types.ts';

/**
 * Per-stream bookkeeping of what the consumer saw (token timestamps, gaps) and what speculation did (rounds,
 * proposals, acceptances). Timestamps are taken when tokens are handed over, so they include detokenising and
 * stop-string holdback, not just model time.
 */
export class StreamStats {
  prefillMs = 0;
  ttftMs = -1;
  readonly decode = { draftMs: 0, draftPasses: 0, targetMs: 0, targetPasses: 0, targetTokens: 0 };
  readonly itlMs: number[] = [];
  private lastEmit = -1;
  drafts = 0;
  proposed = 0;
  accepted = 0;
  rejections = 0;
  kSum = 0;
  readonly acceptedPerPosition: number[] = [];

  constructor(
    readonly t0: number,
    readonly queueMs: number,
  ) {}

  now(): number {
    return performance.now() - this.t0;
  }

  passes(draftMs: number, draftPasses: number, targetMs: number, targetTokens: number): void {
    const d = this.decode;
    d.draftMs += draftMs;
    d.draftPasses += draftPasses;
    d.targetMs += targetMs;
    d.targetTokens += targetTokens;
    if (targetTokens > 0) d.targetPasses++;
  }

  round(proposed: number, accepted: number): void {
    if (proposed === 0) return;
    this.drafts++;
    this.proposed += proposed;
    this.accepted += accepted;
    this.kSum += proposed;
    if (accepted < proposed) this.rejections++;
    for (let i = 0; i < accepted; i++) this.acceptedPerPosition[i] = (this.acceptedPerPosition[i] ?? 0) + 1;
  }

  /** Stamps a step's tokens: the first carries the gap since the previous step, the rest arrive with it (gap 0). */
  stamp(tokens: Omit<EmittedToken, 'tMs'>[]): EmittedToken[] {
    const t = this.now();
    tokens.forEach((_, i) => {
      if (this.ttftMs < 0 && i === 0) this.ttftMs = t;
      else this.itlMs.push(i === 0 ? t - this.lastEmit : 0);
    });
    if (tokens.length > 0) this.lastEmit = t;
    return tokens.map((tok) => ({ ...tok, tMs: t }));
  }

  timings(): Timings {
    return {
      queueMs: this.queueMs,
      prefillMs: this.prefillMs,
      ttftMs: Math.max(0, this.ttftMs),
      itlMs: this.itlMs,
      e2eMs: this.now(),
      decode: { ...this.decode },
    };
  }

  speculative(): SpeculativeStats {
    return {
      drafts: this.drafts,
      proposed: this.proposed,
      accepted: this.accepted,
      acceptanceRate: this.proposed > 0 ? this.accepted / this.proposed : null,
      meanAcceptedLength: this.drafts > 0 ? 1 + this.accepted / this.drafts : null,
      meanK: this.drafts > 0 ? this.kSum / this.drafts : null,
      rejections: this.rejections,
      acceptedPerPosition: this.acceptedPerPosition,
    };
  }
}
