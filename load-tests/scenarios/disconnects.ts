/**
 * disconnects: a storm of streams whose clients vanish mid-stream — WebSocket close, WebSocket terminate (no close
 * frame: the TCP connection just drops) and HTTP SSE abort, in turn. Most vanish after their first few token
 * frames; every tenth vanishes right after sending (while it may still be queued).
 *
 * Bars: specd_num_requests_running (and _waiting) back to 0 within 2 s of the last vanish, read from /metrics;
 * process_resident_memory_bytes within 10 % of its pre-storm level (read after a warm-up storm, so the baseline
 * already includes what the first streams allocate); the server still serves a normal request afterwards.
 */
import { completion } from '../lib/http.ts';
import { pollMetrics, scrape } from '../lib/metrics.ts';
import { fixed, rng, sleep } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario } from '../lib/result.ts';
import { Dist } from '../../src/lib/stats.ts';
import { type StreamResult, WsConn } from '../lib/ws.ts';

const GAUGE_ZERO_MS = 2_000;
const RSS_TOLERANCE = 0.1;
const KINDS = ['ws-close', 'ws-terminate', 'http-abort'] as const;
type Kind = (typeof KINDS)[number];

function plan(quick: boolean) {
  return quick
    ? { streams: 60, concurrency: 20, warmup: 15, tokens: 256, rssSettleMs: 3_000 }
    : { streams: 500, concurrency: 50, warmup: 60, tokens: 256, rssSettleMs: 10_000 };
}

interface Vanished {
  kind: Kind;
  early: boolean;
  result: StreamResult;
  /** Token frames / chunks received before vanishing. */
  frames: number;
  at: number;
}

/** One client: starts a long stream and vanishes after `after` token frames (0: right after sending). */
async function oneClient(url: string, wsUrl: string, kind: Kind, after: number, i: number, tokens: number): Promise<Vanished> {
  const params = fixed(i, tokens);
  if (kind === 'http-abort') {
    let frames = 0;
    let at = 0;
    const early = new AbortController();
    const pending = completion(
      url,
      { ...params, stream: true },
      {
        id: `d${i}`,
        signal: early.signal,
        onEvent: (ev, _r, abort) => {
          if (ev.text === '') return;
          frames++;
          if (frames === after) {
            at = performance.now();
            abort();
          }
        },
      },
    );
    if (after === 0) {
      // Vanish before any answer: abort the request just after it left.
      await sleep(1);
      at = performance.now();
      early.abort();
    }
    const result = await pending;
    return { kind, early: after === 0, result, frames, at: at || performance.now() };
  }
  const conn = await WsConn.open(wsUrl);
  let frames = 0;
  let at = 0;
  const how = kind === 'ws-close' ? 'close' : 'terminate';
  const done = conn.generate(`d${i}`, params, {
    timeoutMs: 120_000,
    onFrame: (f) => {
      if (f.type !== 'token') return;
      frames++;
      if (frames === after) {
        at = performance.now();
        conn.vanish(how);
      }
    },
  });
  if (after === 0) {
    at = performance.now();
    conn.vanish(how);
  }
  const result = await done;
  return { kind, early: after === 0, result, frames, at };
}

export const disconnects: Scenario = {
  name: 'disconnects',
  summary: `storm of streams whose clients vanish (close, terminate, HTTP abort): running gauge 0 within ${GAUGE_ZERO_MS / 1000} s, RSS within ${RSS_TOLERANCE * 100} % of pre-storm`,
  serverFlags: (quick) => ['--max-queue', String(plan(quick).streams + 16), '--recent-streams', '100'],
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    const p = plan(quick);
    const random = rng(42);
    const storm = async (n: number, offset: number) => {
      const out: Vanished[] = [];
      let next = 0;
      const worker = async () => {
        while (next < n) {
          const i = next++;
          const kind = KINDS[i % KINDS.length]!;
          const after = i % 10 === 9 ? 0 : 1 + Math.floor(random() * 3);
          out.push(await oneClient(server.url, server.wsUrl, kind, after, offset + i, p.tokens));
        }
      };
      await Promise.all(Array.from({ length: Math.min(p.concurrency, n) }, worker));
      return out;
    };
    const zero = (s: { running: number; waiting: number }) => s.running === 0 && s.waiting === 0;

    // Warm-up storm (not measured), then the baseline.
    await storm(p.warmup, 0);
    await pollMetrics(server.url, zero, 10_000, 50);
    await sleep(500);
    const before = await scrape(server.url);
    const rssBefore = before.rss;
    log(`pre-storm RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB`);

    // The storm, with the gauges sampled throughout.
    const gauge: [number, number][] = [];
    const rss: [number, number][] = [];
    let sampling = true;
    const t0 = performance.now();
    const sampler = (async () => {
      while (sampling) {
        const s = await scrape(server.url);
        gauge.push([(s.at - t0) / 1000, s.running]);
        rss.push([(s.at - t0) / 1000, s.rss / 2 ** 20]);
        await sleep(quick ? 100 : 250);
      }
    })();
    const results = await storm(p.streams, 1_000_000);
    const lastVanish = Math.max(...results.map((v) => v.at));
    const settle = await pollMetrics(server.url, zero, GAUGE_ZERO_MS + 3_000, 25);
    const zeroMs = settle.ok ? settle.scrape.at - lastVanish : Infinity;
    // RSS: allowed up to rssSettleMs to come back (the allocator returns memory lazily).
    const rssPoll = await pollMetrics(server.url, (s) => s.rss <= rssBefore * (1 + RSS_TOLERANCE), p.rssSettleMs, 250);
    sampling = false;
    await sampler;
    for (const sc of [...settle.samples, ...rssPoll.samples]) {
      gauge.push([(sc.at - t0) / 1000, sc.running]);
      rss.push([(sc.at - t0) / 1000, sc.rss / 2 ** 20]);
    }
    gauge.sort((a, b) => a[0] - b[0]);
    rss.sort((a, b) => a[0] - b[0]);
    const rssAfter = rssPoll.scrape.rss;
    const rssChange = (rssAfter - rssBefore) / rssBefore;
    log(
      `storm of ${results.length}: gauges 0 after ${zeroMs.toFixed(0)} ms; RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB (${(rssChange * 100).toFixed(1)} %)`,
    );

    // What the clients saw: none of them should have received a final frame (they left first), unless a stream
    // was so short it finished; and the server must still serve a normal request.
    const byKind = Object.fromEntries(KINDS.map((k) => [k, results.filter((v) => v.kind === k).length]));
    const finishedAnyway = results.filter((v) => v.result.status === 'done').length;
    const refused = results.filter((v) => v.result.status === 'error');
    const midStream = results.filter((v) => !v.early && v.frames > 0).length;
    const after = await completion(server.url, fixed(0, 8));
    const afterOk = after.status === 'done' && after.finishReason === 'length' && after.tokens === 8;
    const counters = await scrape(server.url);
    const cancelled =
      counters.sum('specd_requests_total', { finish_reason: 'cancelled' }) -
      before.sum('specd_requests_total', { finish_reason: 'cancelled' });
    const vanishToFrames = new Dist().recordAll(results.filter((v) => !v.early).map((v) => v.frames));

    return {
      bars: [
        bar('streams in the storm', results.length, '==', p.streams),
        bar('… of which vanished mid-stream (after ≥ 1 token)', midStream, '>=', Math.floor(p.streams * 0.8)),
        bar('streams refused (error frame / non-2xx) instead of admitted', refused.length, '==', 0),
        bar(
          'running + waiting gauges back to 0 after the last client vanished',
          zeroMs,
          '<=',
          GAUGE_ZERO_MS,
          'ms',
          'polled from /metrics every 25 ms',
        ),
        bar(
          'RSS after the storm vs before',
          rssChange * 100,
          '<=',
          RSS_TOLERANCE * 100,
          '%',
          `${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB (process_resident_memory_bytes, within ${p.rssSettleMs / 1000} s)`,
        ),
        bar('a normal request after the storm completes', afterOk ? 1 : 0, '==', 1),
      ],
      figures: {
        streams: results.length,
        by_kind: byKind,
        early: results.filter((v) => v.early).length,
        mid_stream: midStream,
        finished_before_vanishing: finishedAnyway,
        concurrency: p.concurrency,
        max_tokens: p.tokens,
        gauges_zero_ms: Math.round(zeroMs),
        rss_before_mib: rssBefore / 2 ** 20,
        rss_after_mib: rssAfter / 2 ** 20,
        rss_change_pct: rssChange * 100,
        rss_settle_ms: Math.round(rssPoll.elapsedMs),
        server_cancelled_streams: cancelled,
        frames_before_vanishing: vanishToFrames.summary(),
      },
      tables: [
        {
          title: 'Disconnect storm',
          rows: KINDS.map((k) => {
            const vs = results.filter((v) => v.kind === k);
            return {
              kind: k,
              streams: vs.length,
              'vanished early': vs.filter((v) => v.early).length,
              'mid-stream': vs.filter((v) => !v.early && v.frames > 0).length,
              'finished first': vs.filter((v) => v.result.status === 'done').length,
              refused: vs.filter((v) => v.result.status === 'error').length,
            };
          }),
        },
      ],
      charts: [
        {
          kind: 'line',
          title: 'Running streams during and after the storm (/metrics)',
          xLabel: 's since storm start',
          yLabel: 'streams',
          x: 'linear',
          series: [{ name: 'specd_num_requests_running', points: gauge }],
        },
        {
          kind: 'line',
          title: 'Server RSS during and after the storm',
          xLabel: 's since storm start',
          yLabel: 'MiB',
          x: 'linear',
          series: [
            { name: 'process_resident_memory_bytes', points: rss },
            {
              name: 'pre-storm + 10 %',
              points: rss.length
                ? [
                    [0, (rssBefore * 1.1) / 2 ** 20],
                    [rss[rss.length - 1]![0], (rssBefore * 1.1) / 2 ** 20],
                  ]
                : [],
            },
          ],
        },
      ],
      notes: [
        `${p.streams} streams of max_tokens ${p.tokens} (ignore_eos), ${p.concurrency} clients at a time, kinds in turn: ${KINDS.join(', ')}; ` +
          `every tenth vanishes right after sending, the others after 1–3 token frames. Warm-up storm of ${p.warmup} before the RSS baseline.`,
        `the server counted ${cancelled} streams as cancelled (specd_requests_total{finish_reason="cancelled"}); streams cancelled while queued are counted there too.`,
      ],
    };
  },
};
