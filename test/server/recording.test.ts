import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, metricValue, startServer, WsClient } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('recording', () => {
  it('appends one JSON line per finished stream and keeps the last N for /v1/streams/recent', async () => {
    const logPath = join(mkdtempSync(join(tmpdir(), 'specd-')), 'streams.jsonl');
    h = await startServer({ config: { streamLogPath: logPath, recentStreams: 2 } });
    const ws = await WsClient.open(h.wsUrl);
    for (const id of ['a', 'b', 'c']) {
      ws.send({ type: 'generate', id, prompt: 'go', max_tokens: 6, seed: 9 });
      await ws.done(id);
    }
    const recent = (await (await fetch(`${h.url}/v1/streams/recent`)).json()) as { capacity: number; data: Record<string, unknown>[] };
    expect(recent.capacity).toBe(2);
    expect(recent.data.map((r) => r['client_id'])).toEqual(['c', 'b']);
    await ws.close();
    await h.close(); // flushes the log
    const lines = readFileSync(logPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['client_id'])).toEqual(['a', 'b', 'c']);
    expect(lines[0]).toMatchObject({
      transport: 'ws',
      endpoint: '/v1/stream',
      mode: 'speculative',
      seed: 9,
      model: 'fake-target',
      finish_reason: 'length',
      usage: { completion_tokens: 6 },
      timings: { itl_ms: { p50: 0 } },
      speculative: { proposed: 8 },
      drafts: 2,
    });
    expect(lines[0]!['itl_ms_series']).toHaveLength(5);
  });

  it('an engine failure mid-stream ends with done(error) carrying the error, counted in metrics', async () => {
    h = await startServer({ fake: { failAfterTokens: 3, tokensPerStep: [1] } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'f', prompt: 'go', max_tokens: 10 });
    const done = await ws.done('f');
    expect(done).toMatchObject({ finish_reason: 'error', error: { code: 'internal' }, usage: { completion_tokens: 3 } });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metricValue(metrics, 'specd_request_errors_total{code="internal"}')).toBe(1);
    expect(metricValue(metrics, 'specd_requests_total{mode="speculative",finish_reason="error"}')).toBe(1);
    await ws.close();
  });

  it('heartbeat terminates a socket that stops answering pings and keeps live ones', async () => {
    h = await startServer({ config: { wsHeartbeatMs: 40 } });
    const live = await WsClient.open(h.wsUrl);
    const dead = await WsClient.open(h.wsUrl, { autoPong: false });
    expect(await dead.closed).toBe(1006); // terminated without a close frame
    expect(live.closeCode).toBeNull();
    live.send({ type: 'generate', id: 'ok', prompt: 'go', max_tokens: 2 });
    await live.done('ok');
    await live.close();
  });
});
