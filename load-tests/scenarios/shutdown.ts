/**
 * shutdown: SIGTERM while streams are open (all decoding: each has received a token). Half are WebSocket
 * generations spread over a few sockets, half HTTP SSE (completions and chat in turn).
 * Bars: every stream receives a final frame (WS `done`) / final chunk (SSE chunk with finish_reason, then
 * [DONE]); the process exits with code 0, within the grace period + 10 s.
 */
import { completion } from '../lib/http.ts';
import { sleep } from '../lib/requests.ts';
import { bar, type Outcome, type Scenario, skippedOutcome } from '../lib/result.ts';
import { prompt } from '../lib/requests.ts';
import { Dist } from '../../src/lib/stats.ts';
import { type StreamResult, WsConn } from '../lib/ws.ts';

const EXIT_SLACK_MS = 10_000;
const SOCKETS = 5;

function plan(quick: boolean) {
  return quick ? { streams: 20, graceMs: 300, tokens: 512 } : { streams: 50, graceMs: 1_000, tokens: 512 };
}

export const shutdown: Scenario = {
  name: 'shutdown',
  summary: 'SIGTERM with open streams: every stream gets a final frame / chunk, exit code 0',
  stopsServer: true,
  serverFlags: (quick) => {
    const p = plan(quick);
    return [
      '--max-running',
      String(p.streams),
      '--max-queue',
      '16',
      '--shutdown-grace-ms',
      String(p.graceMs),
      '--max-completion-tokens',
      String(p.tokens),
    ];
  },
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    if (!server.spawned) {
      return skippedOutcome('shutdown sends SIGTERM, so it needs a server the runner started (not --url)');
    }
    const p = plan(quick);
    const started = new Set<string>();
    const finalAt = new Map<string, number>();
    const sockets = await Promise.all(Array.from({ length: SOCKETS }, () => WsConn.open(server.wsUrl)));
    const pending: Promise<StreamResult & { sawDone?: boolean }>[] = [];
    const params = (i: number) => ({
      max_tokens: p.tokens,
      ignore_eos: true,
      ...(i % 4 === 3 ? { messages: [{ role: 'user', content: prompt(i) }] } : { prompt: prompt(i) }),
    });
    for (let i = 0; i < p.streams; i++) {
      const id = `sd-${i}`;
      if (i % 2 === 0) {
        const conn = sockets[(i / 2) % SOCKETS]!;
        pending.push(
          conn.generate(id, params(i), {
            timeoutMs: 120_000,
            onFrame: (f) => {
              if (f.type === 'token') started.add(id);
              if (f.type === 'done' || f.type === 'error') finalAt.set(id, performance.now());
            },
          }),
        );
      } else {
        const chat = i % 4 === 3;
        pending.push(
          completion(
            server.url,
            { ...params(i), stream: true },
            {
              id,
              path: chat ? '/v1/chat/completions' : '/v1/completions',
              timeoutMs: 120_000,
              onEvent: (ev) => {
                if (ev.text !== '') started.add(id);
                if (ev.finish) finalAt.set(id, performance.now());
              },
            },
          ),
        );
      }
    }
    // Wait until every stream is decoding (has a token), then SIGTERM.
    const deadline = performance.now() + 120_000;
    while (started.size < p.streams && performance.now() < deadline) await sleep(20);
    const openAtSignal = started.size;
    log(`${openAtSignal}/${p.streams} streams open; SIGTERM`);
    const tSig = performance.now();
    server.kill('SIGTERM');
    const results = await Promise.all(pending);
    const exit = await Promise.race([server.exited!, sleep(p.graceMs + EXIT_SLACK_MS + 5_000).then(() => null)]);
    await Promise.all(sockets.map((s) => s.close()));

    const finalOk = (r: StreamResult & { sawDone?: boolean }) =>
      r.transport === 'ws' ? r.status === 'done' && r.finishReason !== null : r.finishReason !== null && r.sawDone === true;
    const withFinal = results.filter(finalOk);
    const reasons: Record<string, number> = {};
    for (const r of results) {
      const k = `${r.transport}: ${finalOk(r) ? r.finishReason : `${r.status}${r.errorCode ? ` ${r.errorCode}` : ''}`}`;
      reasons[k] = (reasons[k] ?? 0) + 1;
    }
    const toFinal = new Dist();
    for (const r of results) {
      const at = finalAt.get(r.id || '') ?? null;
      if (at !== null && at >= tSig) toFinal.record(at - tSig);
    }
    const exitMs = exit ? exit.at - tSig : Infinity;
    log(`${withFinal.length}/${results.length} streams got a final frame; exit code ${exit?.code ?? 'none'} after ${exitMs.toFixed(0)} ms`);
    return {
      bars: [
        bar('streams decoding when SIGTERM was sent', openAtSignal, '==', p.streams),
        bar(
          'streams that received a final frame / chunk',
          withFinal.length,
          '==',
          p.streams,
          '',
          'WS: done frame; SSE: finish_reason chunk and [DONE]',
        ),
        bar('process exit code after SIGTERM', exit?.code ?? -1, '==', 0),
        bar(
          'SIGTERM → process exit',
          exitMs,
          '<=',
          p.graceMs + EXIT_SLACK_MS,
          'ms',
          `--shutdown-grace-ms ${p.graceMs} + ${EXIT_SLACK_MS / 1000} s`,
        ),
      ],
      figures: {
        streams: p.streams,
        grace_ms: p.graceMs,
        open_at_signal: openAtSignal,
        with_final: withFinal.length,
        outcomes: reasons,
        sigterm_to_final_ms: toFinal.summary(),
        sigterm_to_exit_ms: exitMs,
        exit_code: exit?.code ?? null,
        exit_signal: exit?.signal ?? null,
      },
      tables: [{ title: 'Streams at SIGTERM', rows: Object.entries(reasons).map(([k, v]) => ({ outcome: k, streams: v })) }],
      charts: [
        {
          kind: 'line',
          title: "SIGTERM → each stream's final frame",
          xLabel: 'percentile',
          yLabel: 'ms',
          x: 'percentile',
          series: [{ name: 'final frame / chunk', points: toFinal.curve() }],
        },
      ],
      notes: [
        `${p.streams} streams (max_tokens ${p.tokens}, ignore_eos; WebSocket over ${SOCKETS} sockets and HTTP SSE in turn), --shutdown-grace-ms ${p.graceMs}; ` +
          'streams still running when the grace period ends finish with finish_reason "shutdown".',
        ...(exit?.code === 0
          ? []
          : [`the server exited with code ${exit?.code ?? 'none'}, signal ${exit?.signal ?? 'none'}; its last output:\n${server.tail()}`]),
      ],
    };
  },
};
