/**
 * cluster: `npm run cluster -- --replicas 3` (nginx in front) driven through the front door at concurrency 16,
 * WebSocket, SSE and JSON in turn (one connection per request, as independent clients would), in three phases:
 *   1. steady: 0 errors, and every replica serves ≥ 20 % of the requests (from each replica's /metrics);
 *   2. crash: `kill -9` of one replica during load: requests it was streaming end (none hangs), requests started
 *      ≥ 1 s after the kill all succeed, and the replacement the cluster starts rejoins and takes traffic;
 *   3. rolling restart: SIGTERM to each replica in turn (each drains, exits and is started again) while load runs:
 *      0 failed requests, every stream complete.
 */
import { completion } from '../lib/http.ts';
import { type ClusterHandle, isCluster, startCluster } from '../lib/cluster.ts';
import { scrape } from '../lib/metrics.ts';
import { prompt, sleep } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario, skippedOutcome, type Table } from '../lib/result.ts';
import { newResult, type StreamResult, WsConn } from '../lib/ws.ts';
import { findNginx, NGINX_MISSING } from '../../scripts/cluster/nginx-config.ts';

const REPLICAS = 3;
const CONCURRENCY = 16;
/** A request that has not ended by then counts as hung. */
const REQUEST_TIMEOUT_MS = 60_000;

function plan(quick: boolean) {
  return quick
    ? { steadyRequests: 96, tokens: 12, crashLoadMs: 6_000, rollingPause: 500 }
    : { steadyRequests: 480, tokens: 32, crashLoadMs: 15_000, rollingPause: 2_000 };
}

interface Sent extends StreamResult {
  startedAt: number;
  endedAt: number;
}

/** One request through the front door; transports rotate with i. */
async function request(front: ClusterHandle, i: number, tokens: number): Promise<Sent> {
  const startedAt = performance.now();
  const body = { prompt: prompt(i), max_tokens: tokens, ignore_eos: true };
  let r: StreamResult;
  if (i % 3 === 0) {
    r = await wsRequest(front, `c-${i}`, body);
    // A socket accepted just before its replica began to drain refuses the generation with a retryable error
    // (nothing was generated): a client retries it on a new connection, which nginx sends to a live replica.
    if (r.status === 'error' && RETRYABLE.has(r.errorCode ?? '')) r = await wsRequest(front, `c-${i}-retry`, body);
  } else {
    const stream = i % 3 === 1;
    r = await completion(
      front.url,
      { ...body, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) },
      { id: `c-${i}`, timeoutMs: REQUEST_TIMEOUT_MS },
    );
  }
  return { ...r, startedAt, endedAt: performance.now() };
}

const RETRYABLE = new Set(['shutting_down', 'not_ready']);

async function wsRequest(front: ClusterHandle, id: string, body: Record<string, unknown>): Promise<StreamResult> {
  try {
    const conn = await WsConn.open(front.wsUrl);
    const r = await conn.generate(id, body, { timeoutMs: REQUEST_TIMEOUT_MS });
    await conn.close();
    return r;
  } catch (e) {
    return { ...failedConnect(id, performance.now()), errorMessage: e instanceof Error ? e.message : String(e) };
  }
}

function failedConnect(id: string, at: number): StreamResult {
  return { ...newResult(id, 'ws', at), status: 'closed', errorCode: 'connect' };
}

const complete = (r: StreamResult, tokens: number) => r.status === 'done' && r.finishReason === 'length' && r.tokens === tokens;

/** Closed-loop load at CONCURRENCY until `until()` says stop (or `count` requests were sent). */
async function load(front: ClusterHandle, tokens: number, opts: { count?: number; until?: () => boolean }): Promise<Sent[]> {
  const out: Sent[] = [];
  let next = 0;
  const worker = async () => {
    while ((opts.count === undefined || next < opts.count) && !(opts.until?.() ?? false)) out.push(await request(front, next++, tokens));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

/** Requests each replica finished so far (its own /metrics; null while it is down). */
async function servedBy(front: ClusterHandle): Promise<(number | null)[]> {
  return Promise.all(
    front.replicas.map((r) =>
      scrape(r.url).then(
        (s) => s.sum('specd_requests_total'),
        () => null,
      ),
    ),
  );
}

const failures = (rs: readonly Sent[], tokens: number) => rs.filter((r) => !complete(r, tokens));
/** A bar that no request of `rs` failed, naming the kinds of failure when some did. */
const noFailures = (name: string, rs: readonly Sent[], tokens: number) => {
  const failed = failures(rs, tokens);
  return bar(name, failed.length, '==', 0, '', describe(failed));
};
const describe = (rs: readonly Sent[]) =>
  [...new Set(rs.map((r) => `${r.transport}: ${r.status} ${r.errorCode ?? ''} ${r.httpStatus ?? ''}`.trim()))].slice(0, 5).join('; ');

export const cluster: Scenario = {
  name: 'cluster',
  summary: `npm run cluster with ${REPLICAS} replicas behind nginx: balance, a replica crash, a rolling restart`,
  serverFlags: () => [],
  async start({ models, extraFlags }) {
    return startCluster({ models, replicas: REPLICAS, flags: ['--max-running', '16', '--max-queue', '64', ...extraFlags] });
  },
  async run(ctx): Promise<Outcome> {
    if (!findNginx()) return skippedOutcome(NGINX_MISSING);
    if (!isCluster(ctx.server)) return skippedOutcome('cluster starts its own replicas and nginx (not --url)');
    const front = ctx.server;
    const { log, quick } = ctx;
    const p = plan(quick);
    const bars = [];
    const tables: Table[] = [];

    // 1. Steady: balance across replicas.
    const before = await servedBy(front);
    const steady = await load(front, p.tokens, { count: p.steadyRequests });
    const after = await servedBy(front);
    const shares = after.map((a, i) => ((a ?? 0) - (before[i] ?? 0)) / steady.length);
    log(
      `steady: ${steady.length} requests, ${failures(steady, p.tokens).length} failed, shares ${shares.map((s) => s.toFixed(2)).join(' / ')}`,
    );
    bars.push(noFailures('steady: failed or incomplete requests', steady, p.tokens));
    bars.push(bar('steady: smallest share of requests served by one replica', Math.min(...shares) * 100, '>=', 20, '%'));
    tables.push({
      title: 'Requests per replica (steady phase)',
      rows: shares.map((s, i) => ({ replica: i, share_percent: Math.round(s * 1000) / 10 })),
    });

    // 2. Crash: kill -9 of replica 0 during load, then its replacement must take traffic.
    const victim = front.replicas[0]!;
    let killedAt = Infinity;
    let stop = false;
    const crashLoad = load(front, p.tokens, { until: () => stop });
    await sleep(1_000);
    process.kill(victim.pid, 'SIGKILL');
    killedAt = performance.now();
    log(`crash: killed replica 0 (pid ${victim.pid})`);
    const restarted = await front.waitForEvent((e) => e.event === 'replica-started' && e.index === 0 && e.at > killedAt, 120_000);
    log(`crash: replica 0 back after ${Math.round(restarted.at - killedAt)} ms (pid ${restarted.pid})`);
    const servedAtRejoin = (await servedBy(front))[0] ?? 0;
    const rejoinDeadline = performance.now() + Math.max(p.crashLoadMs, 20_000);
    let servedAfterRejoin = 0;
    while (performance.now() < rejoinDeadline) {
      await sleep(500);
      servedAfterRejoin = ((await servedBy(front))[0] ?? 0) - servedAtRejoin;
      if (servedAfterRejoin >= 3 && performance.now() - killedAt > p.crashLoadMs) break;
    }
    stop = true;
    const crash = await crashLoad;
    const late = crash.filter((r) => r.startedAt >= killedAt + 1_000);
    const atKill = crash.filter((r) => r.startedAt < killedAt && r.endedAt > killedAt);
    const hung = crash.filter((r) => r.status === 'timeout');
    log(
      `crash: ${crash.length} requests, ${atKill.length} in flight at the kill (${failures(atKill, p.tokens).length} ended in error), ${late.length} started ≥ 1 s after it (${failures(late, p.tokens).length} failed)`,
    );
    bars.push(bar('crash: requests that hung (no end within their timeout)', hung.length, '==', 0));
    bars.push(noFailures('crash: failed requests among those started ≥ 1 s after the kill', late, p.tokens));
    bars.push(bar('crash: requests started ≥ 1 s after the kill', late.length, '>', 0));
    bars.push(bar('crash: requests served by the replacement after it rejoined', servedAfterRejoin, '>', 0));

    // 3. Rolling restart: SIGTERM each replica in turn while load runs.
    stop = false;
    const rollingLoad = load(front, p.tokens, { until: () => stop });
    for (let i = 0; i < REPLICAS; i++) {
      await sleep(p.rollingPause);
      const r = front.replicas[i]!;
      const sentAt = performance.now();
      process.kill(r.pid, 'SIGTERM');
      const back = await front.waitForEvent((e) => e.event === 'replica-started' && e.index === i && e.at > sentAt, 120_000);
      log(`rolling: replica ${i} drained and back after ${Math.round(back.at - sentAt)} ms`);
    }
    await sleep(p.rollingPause);
    stop = true;
    const rolling = await rollingLoad;
    log(`rolling: ${rolling.length} requests, ${failures(rolling, p.tokens).length} failed or incomplete`);
    bars.push(noFailures('rolling restart: failed or incomplete requests', rolling, p.tokens));
    bars.push(bar('rolling restart: requests during the restarts', rolling.length, '>', 0));

    return {
      bars,
      figures: {
        replicas: REPLICAS,
        concurrency: CONCURRENCY,
        steady: { requests: steady.length, shares },
        crash: {
          requests: crash.length,
          inFlightAtKill: atKill.length,
          failedAtKill: failures(atKill, p.tokens).length,
          late: late.length,
          rejoinMs: restarted.at - killedAt,
        },
        rolling: { requests: rolling.length },
      },
      tables,
      charts: [],
      notes: [
        'One connection per request through nginx; a request in flight on the killed replica may fail (its stream had started), every later one must not.',
      ],
    };
  },
};
