/**
 * soak: many short generations back to back (WebSocket, HTTP JSON and SSE in turn, 8 at a time), with the
 * server's RSS and heap sampled from /metrics throughout.
 * Bars: no error (every generation ends with finish_reason length and all its tokens); RSS growth from the end of
 * the warm-up to the end of the run < 10 %.
 */
import { completion } from '../lib/http.ts';
import { pollMetrics, scrape } from '../lib/metrics.ts';
import { fixed, sleep } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario } from '../lib/result.ts';
import { Dist } from '../../src/lib/stats.ts';
import { type StreamResult, WsConn } from '../lib/ws.ts';

const RSS_GROWTH = 0.1;
const MiB = 2 ** 20;

function plan(quick: boolean) {
  return quick
    ? { generations: 300, warmup: 60, concurrency: 8, tokens: 8, sampleMs: 250 }
    : { generations: 10_000, warmup: 1_000, concurrency: 8, tokens: 8, sampleMs: 2_000 };
}

const TRANSPORTS = ['ws', 'ws', 'http', 'sse'] as const;

export const soak: Scenario = {
  name: 'soak',
  summary: `many short generations: no error, RSS growth after warm-up < ${RSS_GROWTH * 100} %`,
  serverFlags: () => ['--recent-streams', '100'],
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    const p = plan(quick);
    let next = 0;
    let finished = 0;
    const failures: StreamResult[] = [];
    const e2e = new Dist();
    const byTransport: Record<string, number> = {};
    let baseline: { rss: number; heap: number; at: number } | null = null;
    let baselinePromise: Promise<void> | null = null;
    const samples: { t: number; gens: number; rss: number; heap: number; majorGcs: number }[] = [];
    const t0 = performance.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await scrape(server.url);
        samples.push({ t: (s.at - t0) / 1000, gens: finished, rss: s.rss / MiB, heap: s.heapUsed / MiB, majorGcs: s.majorGcs });
        await sleep(p.sampleMs);
      }
    })();

    const worker = async (w: number) => {
      let conn: WsConn | null = null;
      while (next < p.generations) {
        const i = next++;
        const transport = TRANSPORTS[i % TRANSPORTS.length]!;
        let r: StreamResult;
        if (transport === 'ws') {
          if (!conn || !conn.isOpen) conn = await WsConn.open(server.wsUrl);
          r = await conn.generate(`soak-${i}`, fixed(i, p.tokens), { timeoutMs: 60_000 });
        } else {
          r = await completion(
            server.url,
            {
              ...fixed(i, p.tokens),
              stream: transport === 'sse',
              stream_options: transport === 'sse' ? { include_usage: true } : undefined,
            },
            { id: `w${w}`, timeoutMs: 60_000 },
          );
        }
        byTransport[transport] = (byTransport[transport] ?? 0) + 1;
        if (r.status !== 'done' || r.finishReason !== 'length' || r.tokens !== p.tokens) failures.push(r);
        if (r.e2eMs !== null) e2e.record(r.e2eMs);
        finished++;
        if (finished === p.warmup && !baselinePromise) {
          baselinePromise = scrape(server.url).then((s) => {
            baseline = { rss: s.rss, heap: s.heapUsed, at: (s.at - t0) / 1000 };
          });
        }
        if (finished % Math.max(1, Math.floor(p.generations / 10)) === 0)
          log(`${finished}/${p.generations} generations, ${failures.length} failed`);
      }
      await conn?.close();
    };
    await Promise.all(Array.from({ length: p.concurrency }, (_, w) => worker(w)));
    const wallS = (performance.now() - t0) / 1000;
    await baselinePromise;
    await pollMetrics(server.url, (s) => s.running === 0 && s.waiting === 0, 5_000, 50);
    await sleep(1_000);
    const end = await scrape(server.url);
    sampling = false;
    await sampler;
    samples.push({ t: (end.at - t0) / 1000, gens: finished, rss: end.rss / MiB, heap: end.heapUsed / MiB, majorGcs: end.majorGcs });
    const base = baseline as { rss: number; heap: number; at: number } | null;
    const growth = base ? (end.rss - base.rss) / base.rss : Infinity;
    log(
      `${finished} generations in ${wallS.toFixed(1)} s; RSS ${base ? (base.rss / MiB).toFixed(1) : '?'} → ${(end.rss / MiB).toFixed(1)} MiB (${(growth * 100).toFixed(1)} %)`,
    );

    const failureKinds: Record<string, number> = {};
    for (const r of failures) {
      const k = `${r.transport}: ${r.status} ${r.finishReason ?? r.errorCode ?? ''} (${r.tokens} tokens)`;
      failureKinds[k] = (failureKinds[k] ?? 0) + 1;
    }
    return {
      bars: [
        bar('generations completed', finished, '==', p.generations),
        bar('generations with an error (not done / length / all tokens)', failures.length, '==', 0),
        bar(
          'RSS growth from the end of the warm-up to the end',
          growth * 100,
          '<',
          RSS_GROWTH * 100,
          '%',
          base ? `${(base.rss / MiB).toFixed(1)} → ${(end.rss / MiB).toFixed(1)} MiB (process_resident_memory_bytes)` : 'no baseline',
        ),
      ],
      figures: {
        generations: finished,
        warmup: p.warmup,
        concurrency: p.concurrency,
        max_tokens: p.tokens,
        by_transport: byTransport,
        wall_s: wallS,
        generations_per_s: finished / wallS,
        tokens_per_s: (finished * p.tokens) / wallS,
        e2e_ms: e2e.summary(),
        rss_baseline_mib: base ? base.rss / MiB : null,
        rss_end_mib: end.rss / MiB,
        rss_growth_pct: growth * 100,
        heap_baseline_mib: base ? base.heap / MiB : null,
        heap_end_mib: end.heapUsed / MiB,
        failures: failureKinds,
        major_gcs: end.majorGcs - (samples[0]?.majorGcs ?? 0),
      },
      tables: [
        {
          title: 'Soak',
          rows: [
            {
              generations: finished,
              'gen/s': finished / wallS,
              'tok/s': (finished * p.tokens) / wallS,
              'e2e p50': e2e.at(50),
              'e2e p99': e2e.at(99),
              'RSS after warm-up MiB': base ? base.rss / MiB : 0,
              'RSS end MiB': end.rss / MiB,
              'growth %': growth * 100,
              errors: failures.length,
            },
          ],
        },
      ],
      charts: [
        {
          kind: 'line',
          title: 'Server memory over the soak (/metrics)',
          xLabel: 'generations completed',
          yLabel: 'MiB',
          x: 'linear',
          series: [
            { name: 'RSS', points: samples.map((s) => [s.gens, s.rss]) },
            { name: 'JS heap used', points: samples.map((s) => [s.gens, s.heap]) },
            ...(base
              ? [
                  {
                    name: 'warm-up RSS + 10 %',
                    points: [
                      [p.warmup, (base.rss * 1.1) / MiB],
                      [finished, (base.rss * 1.1) / MiB],
                    ] as [number, number][],
                  },
                ]
              : []),
          ],
        },
      ],
      notes: [
        `${p.generations} generations of max_tokens ${p.tokens} (ignore_eos), ${p.concurrency} at a time, transports in turn ${TRANSPORTS.join(', ')}; ` +
          `the RSS baseline is read when the first ${p.warmup} have finished, the end value 1 s after the last.`,
        `V8 ran ${end.majorGcs - (samples[0]?.majorGcs ?? 0)} mark-compact (major) collections during the run: between them the JS heap (and so RSS) also holds ` +
          'garbage not yet collected, so a rising heap line without major collections is not by itself a leak.',
        ...Object.entries(failureKinds).map(([k, v]) => `failed: ${k} ×${v}`),
      ],
    };
  },
};
