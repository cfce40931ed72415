import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineHolder } from '../../src/server/index.ts';
import { FakeEngine } from '../helpers/fake-engine.ts';
import { type Harness, startServer, until, WsClient } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/** Reads an SSE response to the end; returns the parsed data payloads ('[DONE]' kept as a string). */
async function readSse(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => {
      const data = e.slice('data: '.length);
      return data === '[DONE]' ? data : JSON.parse(data);
    });
}

describe('graceful shutdown', () => {
  it('drain mid-stream gives every open stream a final frame, then closes sockets with 1001', async () => {
    h = await startServer({ fake: { stepMs: 10 }, config: { maxCompletionTokens: 5000 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'long1', prompt: 'a', max_tokens: 5000 });
    ws.send({ type: 'generate', id: 'long2', messages: [{ role: 'user', content: 'b' }], max_tokens: 5000 });
    ws.send({ type: 'generate', id: 'short', prompt: 'c', max_tokens: 3, k: 0 });
    const post = (body: object) =>
      fetch(`${h.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'd', max_tokens: 5000, ...body }) });
    const sse = post({ stream: true });
    const json = post({});
    await until(() => h.engine.stats().running === 5, 5000, 'five running streams');
    await ws.waitFor((f) => f.type === 'token' && f.id === 'long2');

    const shutdown = h.server.shutdown(150);
    await until(() => h.server.ctx.lifecycle.shuttingDown);
    ws.send({ type: 'generate', id: 'late', prompt: 'too late' });
    expect(await ws.final('late')).toMatchObject({ type: 'error', code: 'shutting_down' });
    const refused = await fetch(`${h.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' }).catch((e: unknown) => e);
    if (refused instanceof Response) expect(refused.status).toBe(503); // or the listener is already closed
    await shutdown;

    expect((await ws.done('short')).finish_reason).toBe('length'); // finished within the grace period
    expect((await ws.done('long1')).finish_reason).toBe('shutdown');
    expect((await ws.done('long2')).finish_reason).toBe('shutdown');
    expect(await ws.closed).toBe(1001);

    const events = await readSse(await sse);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.at(-2)).toMatchObject({ choices: [{ finish_reason: 'shutdown' }], specd: { mode: 'speculative' } });
    const body = await (await json).json();
    expect(body).toMatchObject({ object: 'text_completion', choices: [{ finish_reason: 'shutdown' }] });
    expect(h.engine.stats()).toEqual({ running: 0, queued: 0 });
    expect(h.recorder.recent().filter((r) => r.finish_reason === 'shutdown')).toHaveLength(4);
  });

  it('a queued request is refused with shutting_down when the drain starts', async () => {
    h = await startServer({ fake: { maxRunning: 1, stepMs: 5 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'run', prompt: 'a', max_tokens: 500 });
    ws.send({ type: 'generate', id: 'wait', prompt: 'b', max_tokens: 5 });
    await until(() => h.engine.stats().queued === 1);
    await h.server.shutdown(20);
    expect(await ws.final('wait')).toMatchObject({ type: 'error', code: 'shutting_down' });
    expect((await ws.done('run')).finish_reason).toBe('shutdown');
  });

  it('a client that stopped reading cannot hang the drain: its connection is cut after grace + flush', async () => {
    h = await startServer({ fake: { stepMs: 2 }, config: { wsBufferedLimitBytes: 10 }, flushMs: 100 });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'stuck', prompt: 'a', max_tokens: 500 });
    await ws.waitFor((f) => f.type === 'token');
    const session = [...h.server.ws.sessions][0]!;
    // the server-side socket reports a full send buffer from now on, as with a client that stopped reading
    Object.defineProperty((session as unknown as { ws: object }).ws, 'bufferedAmount', { get: () => 1e9 });
    const t0 = Date.now();
    await h.server.shutdown(50);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await ws.closed).toBe(1006);
    expect(h.engine.stats().running).toBe(0);
    expect(h.recorder.recent()[0]?.finish_reason).toMatch(/^(shutdown|cancelled)$/);
  });

  it('refuses WebSocket upgrades once shutting down', async () => {
    h = await startServer({ fake: { stepMs: 5 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'x', prompt: 'a', max_tokens: 500 });
    await ws.waitFor((f) => f.type === 'start');
    const shutdown = h.server.shutdown(200);
    await until(() => h.server.ctx.lifecycle.shuttingDown);
    await expect(WsClient.open(h.wsUrl)).rejects.toThrow();
    await shutdown;
  });

  it('with an engine still loading, /ready is 503 and the late engine is closed after shutdown', async () => {
    const holder = new EngineHolder();
    h = await startServer({ engine: holder });
    expect((await fetch(`${h.url}/ready`)).status).toBe(503);
    expect((await fetch(`${h.url}/v1/models`)).status).toBe(503);
    const gen = await fetch(`${h.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' });
    expect(gen.status).toBe(503);
    expect(await gen.json()).toMatchObject({ error: { code: 'not_ready' } });
    const engine = new FakeEngine();
    await holder.set(engine);
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
    await h.close();
    expect(await fetch(`${h.url}/health`).catch(() => null)).toBeNull();
    const late = new EngineHolder();
    await late.drain(0);
    const lateEngine = new FakeEngine();
    await late.set(lateEngine);
    expect(lateEngine.ready).toBe(false); // closed on arrival
  });
});

describe('API key', () => {
  it('HTTP: 401 OpenAI-shaped without or with a wrong key; health, ready and metrics stay open', async () => {
    h = await startServer({ config: { apiKey: 'sekret' } });
    const none = await fetch(`${h.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(await none.json()).toMatchObject({ error: { type: 'authentication_error', code: 'unauthorized' } });
    const wrong = await fetch(`${h.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope' },
      body: '{"prompt":"x"}',
    });
    expect(wrong.status).toBe(401);
    const bad = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(bad.completions.create({ model: 'm', prompt: 'x' })).rejects.toMatchObject({ status: 401 });
    const good = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    expect((await good.completions.create({ model: 'm', prompt: 'x', max_tokens: 2 })).choices[0]!.text).toBe(' Once upon');
    for (const path of ['/health', '/ready', '/metrics']) expect((await fetch(`${h.url}${path}`)).status).toBe(200);
  });

  it('WebSocket: closes with 1008 on a wrong key; accepts the header or ?api_key=', async () => {
    h = await startServer({ config: { apiKey: 'sekret' } });
    const anon = await WsClient.open(h.wsUrl);
    expect(await anon.closed).toBe(1008);
    const wrong = await WsClient.open(`${h.wsUrl}?api_key=nope`);
    expect(await wrong.closed).toBe(1008);
    const byQuery = await WsClient.open(`${h.wsUrl}?api_key=sekret`);
    byQuery.send({ type: 'generate', id: 'q', prompt: 'x', max_tokens: 2 });
    expect((await byQuery.done('q')).usage.completion_tokens).toBe(2);
    const byHeader = await WsClient.open(h.wsUrl, { headers: { authorization: 'Bearer sekret' } });
    byHeader.send({ type: 'generate', id: 'h', prompt: 'x', max_tokens: 2 });
    expect((await byHeader.done('h')).usage.completion_tokens).toBe(2);
    await byQuery.close();
    await byHeader.close();
  });
});
