/**
 * Hostile input against the server (fake engine): nesting far past the cap, prototype and duplicated keys, lone
 * surrogates, numbers past every limit; exceptions injected into the frame handler and into a stream's event
 * handling; connection and per-socket caps. Each answer is structured, the socket stays open, and other streams
 * are not disturbed.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deepText } from '../../load-tests/lib/hostile.ts';
import { MAX_JSON_DEPTH, type ServerFrame } from '../../src/protocol/index.ts';
import { OpenAIFormatter } from '../../src/server/http/openai-format.ts';
import { WsSession } from '../../src/server/ws/session.ts';
import { type Harness, metricValue, startServer, until, WsClient } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

const BIG = 8 * 1024 * 1024;
const internalErrors = async (hh: Harness) =>
  metricValue(await (await fetch(`${hh.url}/metrics`)).text(), 'specd_request_errors_total{code="internal"}') ?? 0;

/**
 * Values spliced into frames and bodies as JSON text. `refuse`: the input must be refused; otherwise it may be
 * served (a lone surrogate is text, an unknown extra field is ignored) but must never fail.
 */
const HOSTILE: { label: string; text: () => string; refuse: boolean }[] = [
  ...[5_000, 100_000, 1_000_000].flatMap((d) => [
    { label: `arrays nested ${d} deep`, text: () => deepText(d, 'array', '"x"'), refuse: true },
    { label: `objects nested ${d} deep`, text: () => deepText(d, 'object', '"x"'), refuse: true },
    { label: `${d} unclosed brackets`, text: () => deepText(d, 'unclosed'), refuse: true },
  ]),
  {
    label: `arrays nested ${MAX_JSON_DEPTH + 1} deep (just past the cap)`,
    text: () => deepText(MAX_JSON_DEPTH + 1, 'array', '"x"'),
    refuse: true,
  },
  { label: 'a 200,000-element array', text: () => `[${Array.from({ length: 200_000 }, () => '1').join(',')}]`, refuse: false },
  { label: '__proto__ key', text: () => '{"__proto__": {"polluted": true}}', refuse: false },
  { label: 'constructor.prototype keys', text: () => '{"constructor": {"prototype": {"polluted": true}}}', refuse: false },
  { label: 'lone surrogates', text: () => '"\\ud800 and \\udfff"', refuse: false },
  { label: 'control characters', text: () => '"\\u0000\\u001b[31m\\u2028"', refuse: false },
  { label: '1e400 (Infinity as a double)', text: () => '1e400', refuse: false },
];

describe('hostile JSON', () => {
  it('WebSocket: every hostile frame gets an error frame, the socket stays open, and another stream on it completes', async () => {
    h = await startServer({ config: { wsMaxFrameBytes: BIG, maxBodyBytes: BIG }, fake: { stepMs: 2 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'bystander', prompt: 'Once upon a time', max_tokens: 20, ignore_eos: true });
    await ws.waitFor((f) => f.type === 'start' && f.id === 'bystander');
    let n = 0;
    for (const { label, text, refuse } of HOSTILE) {
      for (const field of ['prompt', 'extra', 'messages']) {
        const id = `bad${n++}`;
        const before = ws.frames.length;
        ws.send(`{"type":"generate","id":"${id}","${field}":${text()},"max_tokens":2}`);
        // The answer: this id's final frame, or an id-less error (a frame that could not be parsed has no id).
        const isAnswer = (f: ServerFrame) =>
          (f.type === 'error' && f.id === undefined) || ('id' in f && f.id === id && (f.type === 'done' || f.type === 'error'));
        await until(() => ws.frames.slice(before).some(isAnswer), 5000, label);
        const final = ws.frames.slice(before).find(isAnswer);
        const what = `${label} as ${field}: ${JSON.stringify(final)?.slice(0, 200)}`;
        expect(final, what).toBeDefined();
        if (final!.type === 'error') expect(['invalid_json', 'invalid_request'], what).toContain(final!.code);
        else expect(refuse, what).toBe(false);
        expect(ws.closeCode, label).toBeNull();
      }
    }
    // Prototype keys did not pollute anything.
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const done = await ws.done('bystander');
    expect(done.finish_reason).toBe('length');
    expect(done.usage.completion_tokens).toBe(20);
    ws.send({ type: 'generate', id: 'after', prompt: 'Once upon a time', max_tokens: 3 });
    expect((await ws.done('after')).usage.completion_tokens).toBe(3);
    expect(ws.invalid).toEqual([]);
    expect(await internalErrors(h)).toBe(0);
    await ws.close();
  });

  it('the depth error names the limit', async () => {
    h = await startServer();
    const ws = await WsClient.open(h.wsUrl);
    ws.send(deepText(5_000, 'array'));
    const err = await ws.waitFor((f) => f.type === 'error');
    expect(err).toMatchObject({ code: 'invalid_json' });
    expect(err.type === 'error' && err.message).toContain(`${MAX_JSON_DEPTH} levels`);
    await ws.close();
  });

  it.each(['/v1/completions', '/v1/chat/completions'])('HTTP %s: every hostile body gets a structured 4xx, never a 5xx', async (path) => {
    h = await startServer({ config: { wsMaxFrameBytes: BIG, maxBodyBytes: BIG } });
    const hh = h;
    const bodies = HOSTILE.flatMap(({ label, text, refuse }) => [
      {
        label: `${label} as the prompt`,
        refuse,
        body: path.includes('chat') ? `{"messages":[{"role":"user","content":${text()}}]}` : `{"prompt":${text()}}`,
      },
      {
        label: `${label} as an extra field`,
        refuse,
        body: `{"prompt":"x","messages":[{"role":"user","content":"x"}],"max_tokens":2,"extra":${text()}}`,
      },
      { label: `${label} as the whole body`, refuse: true, body: text() },
    ]);
    for (const { label, body, refuse } of bodies) {
      const res = await fetch(`${hh.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      const what = `${label}: ${res.status} ${text.slice(0, 200)}`;
      expect(res.status, what).toBeLessThan(500);
      if (res.status === 200) {
        expect(refuse, what).toBe(false);
        continue;
      }
      expect(res.status, what).toBeGreaterThanOrEqual(400);
      const env = JSON.parse(text) as { error: { code: string; message: string; type: string } };
      expect(env.error.message.length, label).toBeGreaterThan(0);
      expect(env.error.message.length, label).toBeLessThan(400);
    }
    expect(await internalErrors(hh)).toBe(0);
  });
});

describe('oversized bodies', () => {
  /** POSTs over one keep-alive socket (node:http, so that socket reuse is visible). */
  const post = (agent: Agent, url: string, body: string) =>
    new Promise<{ status: number; reused: boolean; connection: string | undefined }>((resolve, reject) => {
      let written = false;
      let answer: { status: number; reused: boolean; connection: string | undefined } | null = null;
      // Settles once the answer is read AND the body is written: only then is the socket back in the agent's pool.
      const settle = () => {
        if (written && answer) resolve(answer);
      };
      const req = httpRequest(
        `${url}/v1/completions`,
        { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            answer = { status: res.statusCode!, reused: req.reusedSocket, connection: res.headers.connection };
            settle();
          });
        },
      );
      req.on('error', reject);
      req.on('finish', () => {
        written = true;
        setImmediate(settle);
      });
      req.end(body);
    });

  it('a declared oversized body is refused before it is read, drained, and the connection carries the next request', async () => {
    h = await startServer({ config: { maxBodyBytes: 65_536 } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const big = `{"prompt":"x","extra":[${Array.from({ length: 20_000 }, () => `1${'0'.repeat(400)}`).join(',')}]}`; // 8 MB
    const first = await post(agent, h.url, big);
    expect(first).toMatchObject({ status: 413, connection: 'keep-alive' });
    const second = await post(agent, h.url, JSON.stringify({ prompt: 'x', max_tokens: 1 }));
    expect(second).toMatchObject({ status: 200, reused: true });
    agent.destroy();
  });
});

describe('fault boundary', () => {
  it('an exception in the frame handler becomes one internal error frame; the socket and its other stream go on', async () => {
    h = await startServer({ fake: { stepMs: 2 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'a', prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true });
    await ws.waitFor((f) => f.type === 'start' && f.id === 'a');
    const proto = WsSession.prototype as unknown as { parse(raw: unknown): unknown };
    vi.spyOn(proto, 'parse').mockImplementationOnce(() => {
      throw new TypeError('injected');
    });
    ws.send({ type: 'generate', id: 'b', prompt: 'hello', max_tokens: 2 });
    const err = await ws.waitFor((f) => f.type === 'error');
    expect(err).toMatchObject({ type: 'error', code: 'internal' });
    expect(err.type === 'error' && err.message).not.toContain('injected'); // no internals leak to the client
    ws.send({ type: 'generate', id: 'c', prompt: 'hello', max_tokens: 2 });
    expect((await ws.done('c')).usage.completion_tokens).toBe(2);
    expect((await ws.done('a')).usage.completion_tokens).toBe(12);
    expect(ws.closeCode).toBeNull();
    expect(await internalErrors(h)).toBe(1);
    expect(ws.frames.filter((f) => f.type === 'error')).toHaveLength(1);
    await ws.close();
  });

  it("an exception in a stream's event handling ends that stream with one error frame; the other stream completes", async () => {
    h = await startServer({ fake: { stepMs: 2 } });
    const hh = h;
    const ws = await WsClient.open(h.wsUrl);
    const proto = WsSession.prototype as unknown as { toFrame(id: string, ev: { type: string }): unknown };
    const real = proto.toFrame;
    let thrown = 0;
    vi.spyOn(proto, 'toFrame').mockImplementation(function (this: unknown, id: string, ev: { type: string }) {
      if (id === 'victim' && ev.type === 'tokens' && thrown++ === 0) throw new RangeError('injected');
      return real.call(this, id, ev);
    });
    ws.send({ type: 'generate', id: 'victim', prompt: 'Once upon a time', max_tokens: 50, ignore_eos: true });
    ws.send({ type: 'generate', id: 'other', prompt: 'Once upon a time', max_tokens: 30, ignore_eos: true });
    const final = await ws.final('victim');
    expect(final).toMatchObject({ type: 'error', id: 'victim', code: 'internal' });
    expect((await ws.done('other')).usage.completion_tokens).toBe(30);
    expect(ws.of('victim').filter((f) => f.type === 'error' || f.type === 'done')).toHaveLength(1);
    // The failed stream was stopped, not left running in the engine.
    await until(() => hh.engine.stats().running === 0, 2000, 'the victim stream to stop');
    expect(await internalErrors(hh)).toBe(1);
    expect(ws.closeCode).toBeNull();
    await ws.close();
  });

  it('HTTP: an exception while building the response is a 500 envelope; mid-SSE it is an error event and [DONE]; the server keeps serving', async () => {
    h = await startServer();
    const url = `${h.url}/v1/completions`;
    vi.spyOn(OpenAIFormatter.prototype, 'response').mockImplementationOnce(() => {
      throw new TypeError('injected');
    });
    const res = await fetch(url, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 3 }) });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { code: 'internal', type: 'server_error' } });
    vi.spyOn(OpenAIFormatter.prototype, 'textChunk').mockImplementationOnce(() => {
      throw new TypeError('injected');
    });
    const sse = await (await fetch(url, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 5, stream: true }) })).text();
    const events = sse
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.parse(events.at(-2)!)).toMatchObject({ error: { code: 'internal' } });
    const ok = await fetch(url, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 3 }) });
    expect(ok.status).toBe(200);
    expect(await internalErrors(h)).toBe(2);
  });
});

describe('caps', () => {
  it('--ws-max-streams: a generate beyond the cap gets too_many_streams; the socket and its streams go on', async () => {
    h = await startServer({ config: { wsMaxStreams: 2 }, fake: { stepMs: 2 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 's1', prompt: 'a', max_tokens: 20, ignore_eos: true });
    ws.send({ type: 'generate', id: 's2', prompt: 'a', max_tokens: 20, ignore_eos: true });
    ws.send({ type: 'generate', id: 's3', prompt: 'a', max_tokens: 20, ignore_eos: true });
    const err = await ws.final('s3');
    expect(err).toMatchObject({ type: 'error', id: 's3', code: 'too_many_streams', details: { limit: 2 } });
    await Promise.all([ws.done('s1'), ws.done('s2')]);
    ws.send({ type: 'generate', id: 's3', prompt: 'a', max_tokens: 2 });
    expect(await ws.waitFor((f) => f.type === 'done' && f.id === 's3')).toMatchObject({ usage: { completion_tokens: 2 } });
    await ws.close();
  });

  it('--max-connections: refused upgrades and requests get 503 too_many_connections; ops routes answer; running streams are undisturbed', async () => {
    h = await startServer({ config: { maxConnections: 2 }, fake: { stepMs: 3 } });
    const a = await WsClient.open(h.wsUrl);
    const b = await WsClient.open(h.wsUrl);
    a.send({ type: 'generate', id: 'run', prompt: 'a', max_tokens: 40, ignore_eos: true });
    await a.waitFor((f) => f.type === 'start');
    const refusedWs = await WsClient.open(h.wsUrl).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(refusedWs).toContain('503');
    const res = await fetch(`${h.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 2 }) });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: { code: 'too_many_connections', type: 'unavailable' } });
    const health = await fetch(`${h.url}/health`);
    expect(health.status).toBe(200);
    const done = await a.done('run');
    expect(done.finish_reason).toBe('length');
    expect(done.usage.completion_tokens).toBe(40);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metricValue(metrics, 'specd_request_errors_total{code="too_many_connections"}')).toBeGreaterThanOrEqual(2);
    // Capacity comes back when a connection closes.
    await b.close();
    await until(() => h!.server.ctx.connections.count <= 1, 2000, 'the closed socket to be released');
    const again = await WsClient.open(h.wsUrl);
    again.send({ type: 'generate', id: 'x', prompt: 'a', max_tokens: 2 });
    expect((await again.done('x')).usage.completion_tokens).toBe(2);
    await again.close();
    await a.close();
  });

  it('--ws-idle-timeout-ms closes a socket with nothing in flight, never one that is streaming', async () => {
    h = await startServer({ config: { wsIdleTimeoutMs: 150 }, fake: { stepMs: 20 } });
    const idle = await WsClient.open(h.wsUrl);
    const busy = await WsClient.open(h.wsUrl);
    busy.send({ type: 'generate', id: 'long', prompt: 'a', max_tokens: 20, ignore_eos: true }); // ~400 ms of steps
    expect(await idle.closed).toBe(1000);
    const done = await busy.done('long');
    expect(done.usage.completion_tokens).toBe(20);
    expect(busy.closeCode).toBeNull();
    expect(await busy.closed).toBe(1000); // and once it is idle, it goes too
  });
});
