/**
 * overload: a server with a small capacity (--max-running R, --max-queue Q; capacity C = R + Q) is offered 10 × C
 * concurrent clients, half on WebSocket and half on HTTP SSE. Each client sends, and on a refusal waits a short
 * back-off and sends again, so 10 × C requests are outstanding all the time.
 *
 * "Unloaded" is the same server running exactly R streams (every decoding slot busy, nobody waiting, nobody
 * refused): the engine interleaves running streams round-robin, so ITL depends on how many streams run, and only
 * a baseline at the same R isolates what the excess traffic costs the admitted streams. It is measured before and
 * after the overload and pooled. ITL is the client's (WebSocket gaps); the server's records of the same streams
 * (/v1/streams/recent, WS and SSE) are reported alongside.
 *
 * Bars: rejections are 429 / `overloaded` with p99 latency < 50 ms; every admitted stream completes; admitted
 * streams' p99 ITL ≤ 2 × the unloaded p99; no other error.
 */
import { completion } from '../lib/http.ts';
import { fetchRecent, matchRecords } from '../lib/recent.ts';
import { fixed, rng, sleep } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario, skippedOutcome, timingBar } from '../lib/result.ts';
import { Dist } from '../../src/lib/stats.ts';
import { runWsGenerator, type StreamResult, WsConn } from '../lib/ws.ts';

const OVERLOAD_FACTOR = 10;
const REJECT_P99_MS = 50;
const ITL_RATIO = 2;

/** backoffMs: a refused client waits a back-off drawn uniformly from this range before it sends again (the
 *  server's Retry-After is 1 s; these clients are 3–10× more eager, so the excess stays at 10× capacity). */
function plan(quick: boolean): {
  maxRunning: number;
  maxQueue: number;
  tokens: number;
  baselineGens: number;
  warmupMs: number;
  durationMs: number;
  minAdmitted: number;
  deadlineMs: number;
  backoffMs: [number, number];
} {
  return quick
    ? {
        maxRunning: 2,
        maxQueue: 1,
        tokens: 32,
        baselineGens: 12,
        warmupMs: 500,
        durationMs: 3_000,
        minAdmitted: 12,
        deadlineMs: 20_000,
        backoffMs: [100, 300],
      }
    : {
        maxRunning: 4,
        maxQueue: 4,
        tokens: 64,
        baselineGens: 100,
        warmupMs: 5_000,
        durationMs: 60_000,
        minAdmitted: 200,
        deadlineMs: 600_000,
        backoffMs: [50, 150],
      };
}

export const overload: Scenario = {
  name: 'overload',
  summary: `10× capacity: refusals are 429/overloaded with p99 < ${REJECT_P99_MS} ms, admitted streams complete with p99 ITL ≤ ${ITL_RATIO}× unloaded`,
  serverFlags: (quick) => {
    const p = plan(quick);
    return ['--max-running', String(p.maxRunning), '--max-queue', String(p.maxQueue), '--recent-streams', '5000'];
  },
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    const p = plan(quick);
    if (!server.spawned) {
      const r = ctx.options['max-running'];
      const q = ctx.options['max-queue'];
      if (!r || !q) {
        return skippedOutcome("with --url, overload needs the server's --max-running and --max-queue (pass the same flags to the runner)");
      }
      p.maxRunning = Number(r);
      p.maxQueue = Number(q);
    }
    const capacity = p.maxRunning + p.maxQueue;
    const clients = OVERLOAD_FACTOR * capacity;

    // Unloaded: exactly R streams at a time, before and after the overload (pooled, so that a drift in the
    // machine's background load during the run does not favour either phase).
    const baseResults: StreamResult[] = [];
    const baseItl = new Dist();
    const baseItlServer = new Dist();
    let baseMatched = 0;
    const unloaded = async (phase: string) => {
      const { results } = await runWsGenerator({
        wsUrl: server.wsUrl,
        sockets: p.maxRunning,
        perSocket: 1,
        total: p.baselineGens,
        idPrefix: `base-${phase}-`,
        params: (i) => fixed(i, p.tokens),
        deadlineMs: p.deadlineMs,
      });
      baseResults.push(...results);
      for (const r of results) baseItl.recordAll(r.gapsMs);
      const records = matchRecords(results, await fetchRecent(server.url, p.baselineGens));
      for (const rec of records.values()) baseItlServer.recordAll(rec.itl_ms_series);
      baseMatched += records.size;
      log(`unloaded ${phase} (${p.maxRunning} streams): ${results.length} streams, ITL p99 so far ${baseItl.at(99)} ms`);
    };
    await unloaded('before');

    // Overload: 10 × C closed-loop clients, started over the first back-off window (not one synchronised burst).
    // The first warmupMs are not measured (JIT of the refusal paths); streams admitted then must still complete.
    const admitted: StreamResult[] = [];
    const rejected: StreamResult[] = [];
    const other: StreamResult[] = [];
    let stop = false;
    const t0 = performance.now();
    const measureFrom = t0 + p.warmupMs;
    const measured = (r: StreamResult) => r.sentAt >= measureFrom;
    const classify = (r: StreamResult) => {
      if (r.status === 'error' && r.errorCode === 'overloaded' && (r.transport === 'ws' || r.httpStatus === 429)) rejected.push(r);
      else if (r.admitMs !== null) admitted.push(r);
      else other.push(r);
      const now = performance.now();
      const enough = now - measureFrom >= p.durationMs && admitted.filter(measured).length >= p.minAdmitted;
      if (enough || now - t0 > p.deadlineMs) stop = true;
    };
    let seq = 0;
    const random = rng(7);
    const backoff = () => sleep(p.backoffMs[0] + random() * (p.backoffMs[1] - p.backoffMs[0]));
    const wsClient = async (k: number) => {
      const conn = await WsConn.open(server.wsUrl);
      await sleep(random() * p.backoffMs[1]);
      while (!stop) {
        const r = await conn.generate(`ov-${k}-${seq++}`, fixed(seq, p.tokens), { timeoutMs: 120_000 });
        classify(r);
        if (r.status === 'error') await backoff();
        if (!conn.isOpen) break;
      }
      await conn.close();
    };
    const httpClient = async (k: number) => {
      await sleep(random() * p.backoffMs[1]);
      while (!stop) {
        const r = await completion(
          server.url,
          { ...fixed(seq++, p.tokens), stream: true, stream_options: { include_usage: true } },
          { id: `h${k}` },
        );
        classify(r);
        if (r.status === 'error') await backoff();
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, k) => (k % 2 === 0 ? wsClient(k) : httpClient(k))));
    const wallMs = performance.now() - measureFrom;
    const loadedRecords = matchRecords(admitted.filter(measured), await fetchRecent(server.url, admitted.length + 10));
    await unloaded('after');
    const baseBad = baseResults.filter((r) => r.status !== 'done' || r.tokens !== p.tokens).length;

    const rejectMs = new Dist();
    for (const r of rejected) if (measured(r)) rejectMs.record(r.rejectMs!);
    const loadedItl = new Dist();
    const loadedTtft = new Dist();
    let incomplete = 0;
    for (const r of admitted) {
      if (r.transport === 'ws' && measured(r)) loadedItl.recordAll(r.gapsMs);
      if (r.ttftMs !== null && measured(r)) loadedTtft.record(r.ttftMs);
      if (
        r.status !== 'done' ||
        r.finishReason !== 'length' ||
        r.tokens !== p.tokens ||
        (r.transport === 'sse' && !(r as { sawDone?: boolean }).sawDone)
      )
        incomplete++;
    }
    const loadedItlServer = new Dist();
    for (const rec of loadedRecords.values()) loadedItlServer.recordAll(rec.itl_ms_series);
    log(
      `server-side ITL p99: unloaded ${baseItlServer.at(99)} ms (${baseMatched} streams), overloaded ${loadedItlServer.at(99)} ms (${loadedRecords.size} streams)`,
    );
    const missingRetryAfter = rejected.filter((r) => r.transport === 'sse' && !r.retryAfter).length;
    const ratio = baseItl.at(99) > 0 ? loadedItl.at(99) / baseItl.at(99) : Infinity;
    log(
      `overload (${clients} clients for capacity ${capacity}): ${admitted.length} admitted, ${rejected.length} refused ` +
        `(p99 ${rejectMs.at(99)} ms), ${other.length} other; admitted ITL p99 ${loadedItl.at(99)} ms = ${ratio.toFixed(2)}× unloaded`,
    );

    const otherCodes: Record<string, number> = {};
    for (const r of other) {
      const k = `${r.transport}:${r.errorCode ?? r.status}${r.httpStatus ? `/${r.httpStatus}` : ''}`;
      otherCodes[k] = (otherCodes[k] ?? 0) + 1;
    }
    return {
      bars: [
        bar('requests refused with 429 / overloaded', rejected.length, '>', 0, '', 'the offered load really exceeded capacity'),
        timingBar('p99 latency of a refusal (client-side, send → 429 headers / error frame)', rejectMs.at(99), '<', REJECT_P99_MS, 'ms'),
        bar('HTTP 429 without Retry-After', missingRetryAfter, '==', 0),
        bar('admitted streams that did not complete (done/length, all tokens)', incomplete + baseBad, '==', 0),
        bar('admitted WebSocket streams measured', admitted.filter((r) => r.transport === 'ws' && measured(r)).length, '>', 0),
        timingBar(
          `admitted p99 ITL ÷ unloaded p99 ITL (${p.maxRunning} streams running in both)`,
          ratio,
          '<=',
          ITL_RATIO,
          '×',
          `unloaded p99 ${baseItl.at(99)} ms, under overload ${loadedItl.at(99)} ms (WebSocket client-side gaps)`,
        ),
        bar('other errors (neither admitted nor refused with overloaded)', other.length, '==', 0),
      ],
      figures: {
        max_running: p.maxRunning,
        max_queue: p.maxQueue,
        capacity,
        clients,
        max_tokens: p.tokens,
        backoff_ms: p.backoffMs,
        wall_ms: Math.round(wallMs),
        admitted: admitted.length,
        refused: rejected.length,
        other: otherCodes,
        refusals_per_s: rejectMs.count / (wallMs / 1000),
        warmup_ms: p.warmupMs,
        reject_ms: rejectMs.summary(),
        unloaded_itl_ms: baseItl.summary(),
        loaded_itl_ms: loadedItl.summary(),
        unloaded_itl_server_ms: baseItlServer.summary(),
        loaded_itl_server_ms: loadedItlServer.summary(),
        itl_p99_ratio_server: baseItlServer.at(99) > 0 ? loadedItlServer.at(99) / baseItlServer.at(99) : null,
        loaded_ttft_ms: loadedTtft.summary(),
        itl_p99_ratio: ratio,
      },
      tables: [
        {
          title: 'Overload',
          rows: [
            {
              phase: `unloaded (${p.maxRunning} streams)`,
              streams: baseResults.length,
              refused: 0,
              'ITL p50': baseItl.at(50),
              'ITL p90': baseItl.at(90),
              'ITL p99': baseItl.at(99),
              'server ITL p99': baseItlServer.at(99),
              'refusal p50': '',
              'refusal p99': '',
            },
            {
              phase: `${clients} clients (10× capacity ${capacity})`,
              streams: admitted.length,
              refused: rejected.length,
              'ITL p50': loadedItl.at(50),
              'ITL p90': loadedItl.at(90),
              'ITL p99': loadedItl.at(99),
              'server ITL p99': loadedItlServer.at(99),
              'refusal p50': rejectMs.at(50),
              'refusal p99': rejectMs.at(99),
            },
          ],
        },
      ],
      charts: [
        {
          kind: 'line',
          title: 'Refusal latency distribution (client-side)',
          xLabel: 'percentile',
          yLabel: 'ms',
          x: 'percentile',
          series: [{ name: '429 / overloaded', points: rejectMs.curve() }],
        },
        {
          kind: 'line',
          title: 'Inter-token gaps of admitted streams: unloaded vs 10× capacity',
          xLabel: 'percentile',
          yLabel: 'ms',
          x: 'percentile',
          series: [
            { name: 'unloaded (client)', points: baseItl.curve() },
            { name: 'overloaded (client)', points: loadedItl.curve() },
            { name: 'unloaded (server)', points: baseItlServer.curve() },
            { name: 'overloaded (server)', points: loadedItlServer.curve() },
          ],
        },
        {
          kind: 'bar',
          title: 'Outcomes under overload',
          yLabel: 'requests',
          categories: ['admitted', 'refused (429/overloaded)', 'other'],
          series: [{ name: 'requests', values: [admitted.length, rejected.length, other.length] }],
          yLog: true,
        },
      ],
      notes: [
        `capacity = --max-running ${p.maxRunning} + --max-queue ${p.maxQueue}; ${clients} closed-loop clients (half WebSocket, half HTTP SSE), ` +
          `a back-off drawn uniformly from ${p.backoffMs[0]}–${p.backoffMs[1]} ms after a refusal ` +
          `(the server's Retry-After is 1 s); max_tokens ${p.tokens} with ignore_eos; ` +
          `the first ${p.warmupMs} ms are not measured (their streams must still complete).`,
        ...Object.entries(otherCodes).map(([k, v]) => `other outcome ${k}: ${v}`),
      ],
    };
  },
};
