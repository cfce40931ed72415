import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Prometheus metric specd exports, defined in this one module on an injected Registry.
 * Names follow vLLM's (`vllm:*` → `specd_*`) so existing dashboards and PromQL carry over:
 *   acceptance rate        = rate(specd_spec_decode_num_accepted_tokens_total) / rate(specd_spec_decode_num_draft_tokens_total)
 *   mean acceptance length = 1 + rate(specd_spec_decode_num_accepted_tokens_total) / rate(specd_spec_decode_num_drafts_total)
 */

/** Token gaps are sub-millisecond to seconds: start at 0.5 ms (a speculative step's tokens land in the first bucket). */
export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10];
export const E2E_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];

/** What one finished stream contributes (plain numbers: this module knows nothing of the engine or the wire). */
export interface StreamObservation {
  mode: string;
  finishReason: string;
  /** False for a stream cancelled before it was admitted: only the request counter moves. */
  started: boolean;
  queueMs: number;
  /** null when no token was produced. */
  ttftMs: number | null;
  itlMs: readonly number[];
  e2eMs: number;
  promptTokens: number;
  completionTokens: number;
  drafts: number;
  proposed: number;
  accepted: number;
  acceptedPerPosition: readonly number[];
}

export interface QueueStats {
  running: number;
  queued: number;
}

export interface MetricsOptions {
  registry?: Registry;
  /** Read at scrape time for the running / waiting gauges. */
  stats: () => QueueStats;
  /** Read at scrape time: model worker restarts in this process (absent: 0). */
  workerRestarts?: () => number;
  /** Node process metrics (CPU, memory, event loop lag…); off in tests. */
  processMetrics?: boolean;
}

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(opts: MetricsOptions) {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });

  const ttft = new Histogram({
    name: 'specd_time_to_first_token_seconds',
    help: 'Submission to first token handed to the transport.',
    labelNames: ['mode'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const itl = new Histogram({
    name: 'specd_inter_token_latency_seconds',
    help: 'Gap before each token after the first, as the client saw it (tokens of one speculative step count ~0).',
    labelNames: ['mode'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const e2e = new Histogram({
    name: 'specd_e2e_request_latency_seconds',
    help: 'Submission to the end of the stream.',
    labelNames: ['mode'] as const,
    buckets: E2E_BUCKETS_S,
    registers,
  });
  const queue = new Histogram({
    name: 'specd_request_queue_time_seconds',
    help: 'Submission to admission.',
    labelNames: ['mode'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const drafts = new Counter({
    name: 'specd_spec_decode_num_drafts_total',
    help: 'Speculative rounds in which the draft proposed tokens.',
    registers,
  });
  const draftTokens = new Counter({ name: 'specd_spec_decode_num_draft_tokens_total', help: 'Draft tokens proposed.', registers });
  const acceptedTokens = new Counter({
    name: 'specd_spec_decode_num_accepted_tokens_total',
    help: 'Draft tokens accepted by the target.',
    registers,
  });
  const acceptedPerPos = new Counter({
    name: 'specd_spec_decode_num_accepted_tokens_per_pos_total',
    help: 'Draft tokens accepted, by position in the draft (0 = first).',
    labelNames: ['position'] as const,
    registers,
  });
  const requests = new Counter({
    name: 'specd_requests_total',
    help: 'Finished streams by mode and finish reason.',
    labelNames: ['mode', 'finish_reason'] as const,
    registers,
  });
  const generationTokens = new Counter({ name: 'specd_generation_tokens_total', help: 'Completion tokens generated.', registers });
  const promptTokens = new Counter({ name: 'specd_prompt_tokens_total', help: 'Prompt tokens of admitted streams.', registers });
  const errors = new Counter({
    name: 'specd_request_errors_total',
    help: 'Requests refused or failed, by error code.',
    labelNames: ['code'] as const,
    registers,
  });
  const routes = new Counter({
    name: 'specd_route_decisions_total',
    help: 'Modes chosen by the router for mode "auto" requests.',
    labelNames: ['mode'] as const,
    registers,
  });
  const budgetMissed = new Counter({
    name: 'specd_budget_missed_total',
    help: 'mode "auto" requests whose latency budget no mode was predicted to meet.',
    registers,
  });
  new Gauge({
    name: 'specd_num_requests_running',
    help: 'Streams decoding now.',
    registers,
    collect() {
      this.set(opts.stats().running);
    },
  });
  new Counter({
    name: 'specd_worker_restarts_total',
    help: 'Times the model worker died and was replaced without restarting the process.',
    registers,
    collect() {
      this.reset();
      this.inc(opts.workerRestarts?.() ?? 0);
    },
  });
  new Gauge({
    name: 'specd_num_requests_waiting',
    help: 'Streams waiting for a slot.',
    registers,
    collect() {
      this.set(opts.stats().queued);
    },
  });

  return {
    registry,
    observeStream(o: StreamObservation): void {
      requests.inc({ mode: o.mode, finish_reason: o.finishReason });
      if (!o.started) return;
      const mode = { mode: o.mode };
      queue.observe(mode, o.queueMs / 1000);
      e2e.observe(mode, o.e2eMs / 1000);
      if (o.ttftMs !== null) ttft.observe(mode, o.ttftMs / 1000);
      for (const gap of o.itlMs) itl.observe(mode, gap / 1000);
      promptTokens.inc(o.promptTokens);
      generationTokens.inc(o.completionTokens);
      if (o.drafts > 0) {
        drafts.inc(o.drafts);
        draftTokens.inc(o.proposed);
        acceptedTokens.inc(o.accepted);
        o.acceptedPerPosition.forEach((n, position) => {
          if (n > 0) acceptedPerPos.inc({ position: String(position) }, n);
        });
      }
    },
    /** One routing decision, counted when the routed stream starts. */
    observeRoute(mode: string, missed: boolean): void {
      routes.inc({ mode });
      if (missed) budgetMissed.inc();
    },
    countError(code: string): void {
      errors.inc({ code });
    },
    async render(): Promise<{ contentType: string; body: string }> {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
