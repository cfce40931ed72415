import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { configFrom } from '../../src/config/index.ts';
import { createMetrics } from '../../src/metrics/index.ts';
import { createContext, StreamRecorder } from '../../src/server/index.ts';
import { WsSession } from '../../src/server/ws/session.ts';
import { FAKE_WORDS, FakeEngine } from '../helpers/fake-engine.ts';
import { type Harness, metricValue, startServer, until, WsClient } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('WebSocket /v1/stream', () => {
  it('streams start, token frames that concatenate to the completion, and a done frame with timings and acceptance', async () => {
    h = await startServer();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'a', prompt: 'Once upon a time', max_tokens: 20, k: 4 });
    const done = await ws.done('a');
    const frames = ws.of('a');
    expect(ws.invalid).toEqual([]);
    expect(frames[0]).toMatchObject({ type: 'start', id: 'a', model: 'fake-target', prompt_tokens: 4, mode: 'speculative' });
    const tokenFrames = frames.filter((f) => f.type === 'token');
    expect(tokenFrames.length).toBeGreaterThan(1);
    expect(tokenFrames.length).toBeLessThan(20); // several tokens per step
    const text = tokenFrames.map((f) => (f.type === 'token' ? f.text : '')).join('');
    expect(text).toBe(FAKE_WORDS.slice(0, 20).join(''));
    const sources = tokenFrames.flatMap((f) => (f.type === 'token' ? f.tokens.map((t) => t.source) : []));
    expect(sources).toHaveLength(20);
    expect(new Set(sources)).toEqual(new Set(['draft', 'bonus', 'target']));
    expect(frames.at(-1)).toBe(done);
    expect(done.finish_reason).toBe('length');
    expect(done.usage).toEqual({ prompt_tokens: 4, completion_tokens: 20, total_tokens: 24 });
    expect(done.timings.ttft_ms).toBeGreaterThan(0);
    expect(done.timings.e2e_ms).toBeGreaterThanOrEqual(done.timings.ttft_ms);
    expect(done.timings.itl_ms.p50).toBe(0); // most tokens arrive with their step
    expect(done.timings.itl_ms.max).toBeGreaterThan(0);
    expect(done.timings.itl_ms.p99).toBeLessThanOrEqual(done.timings.itl_ms.max);
    expect(done.timings.tokens_per_second).toBeGreaterThan(0);
    expect(done.speculative.proposed).toBeGreaterThan(0);
    expect(done.speculative.acceptance_rate).toBeGreaterThan(0);
    expect(done.speculative.acceptance_rate).toBeLessThanOrEqual(1);
    expect(done.speculative.mean_k).toBe(4);
    expect(done.speculative.mean_accepted_length).toBeGreaterThan(1);
    await ws.close();
  });

  it('multiplexes two generations on one socket by id', async () => {
    h = await startServer({ fake: { stepMs: 2 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'x', prompt: 'first prompt', max_tokens: 12, mode: 'target' });
    ws.send({ type: 'generate', id: 'y', messages: [{ role: 'user', content: 'second' }], max_tokens: 8 });
    const [dx, dy] = await Promise.all([ws.done('x'), ws.done('y')]);
    expect(dx.usage.completion_tokens).toBe(12);
    expect(dy.usage.completion_tokens).toBe(8);
    // interleaved: y's first token frame arrives before x's done
    const order = ws.frames.map((f) => `${f.type}:${'id' in f ? f.id : ''}`);
    expect(order.indexOf('token:y')).toBeLessThan(order.indexOf('done:x'));
    expect(
      ws
        .of('x')
        .filter((f) => f.type === 'token')
        .every((f) => f.type === 'token' && f.tokens.length === 1),
    ).toBe(true);
    expect(h.engine.requests.map((r) => r.mode)).toEqual(['target', 'speculative']);
    expect(h.engine.requests[1]!.input).toEqual({ messages: [{ role: 'user', content: 'second' }] });
    await ws.close();
  });

  it('rejects a duplicate in-flight id with an error frame and keeps the first stream', async () => {
    h = await startServer();
    h.engine.pause();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'dup', prompt: 'hello', max_tokens: 5 });
    await ws.waitFor((f) => f.type === 'start');
    ws.send({ type: 'generate', id: 'dup', prompt: 'again', max_tokens: 5 });
    const err = await ws.waitFor((f) => f.type === 'error');
    expect(err).toMatchObject({ type: 'error', id: 'dup', code: 'duplicate_id' });
    h.engine.resume();
    const done = await ws.waitFor((f) => f.type === 'done' && f.id === 'dup');
    expect(done).toMatchObject({ usage: { completion_tokens: 5 } });
    // the id is free again once finished
    ws.send({ type: 'generate', id: 'dup', prompt: 'third', max_tokens: 2 });
    await until(() => ws.of('dup').filter((f) => f.type === 'done').length === 2);
    await ws.close();
  });

  it('survives 50 malformed frames with an error frame each, then serves a valid generate', async () => {
    h = await startServer();
    const ws = await WsClient.open(h.wsUrl);
    const bad: unknown[] = [
      '{not json',
      '',
      'null',
      '[]',
      '42',
      '"str"',
      '{}',
      '{"type": 5}',
      '{"type": "bogus"}',
      '{"type": "GENERATE"}',
      { type: 'generate' },
      { type: 'generate', id: 'b1' },
      { type: 'generate', id: '', prompt: 'x' },
      { type: 'generate', id: 'b2', prompt: '' },
      { type: 'generate', id: 'b3', prompt: 5 },
      { type: 'generate', id: 'b4', prompt: 'x', messages: [{ role: 'user', content: 'y' }] },
      { type: 'generate', id: 'b5', messages: [] },
      { type: 'generate', id: 'b6', messages: [{ role: 'robot', content: 'y' }] },
      { type: 'generate', id: 'b7', prompt: 'x', max_tokens: 0 },
      { type: 'generate', id: 'b8', prompt: 'x', max_tokens: 1.5 },
      { type: 'generate', id: 'b9', prompt: 'x', temperature: -1 },
      { type: 'generate', id: 'b10', prompt: 'x', temperature: '0.5' },
      { type: 'generate', id: 'b11', prompt: 'x', top_p: 0 },
      { type: 'generate', id: 'b12', prompt: 'x', top_k: -1 },
      { type: 'generate', id: 'b13', prompt: 'x', min_p: 1 },
      { type: 'generate', id: 'b14', prompt: 'x', repetition_penalty: 0 },
      { type: 'generate', id: 'b15', prompt: 'x', seed: -1 },
      { type: 'generate', id: 'b16', prompt: 'x', seed: 2 ** 32 },
      { type: 'generate', id: 'b17', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] },
      { type: 'generate', id: 'b18', prompt: 'x', stop: [''] },
      { type: 'generate', id: 'b19', prompt: 'x', stop: 7 },
      { type: 'generate', id: 'b20', prompt: 'x', mode: 'fast' },
      { type: 'generate', id: 'b21', prompt: 'x', k: 99 },
      { type: 'generate', id: 'b22', prompt: 'x', k: 'sometimes' },
      { type: 'generate', id: 'b23', prompt: 'x', maxTokens: 5 },
      { type: 'generate', id: 42, prompt: 'x' },
      { type: 'generate', id: 'x'.repeat(200), prompt: 'x' },
      { type: 'cancel' },
      { type: 'cancel', id: 3 },
      { type: 'cancel', id: 'c', extra: true },
      { type: 'generate', id: 'b24', prompt: 'x', stop: 'y'.repeat(65) },
      { type: 'generate', id: 'b25', prompt: 'x', max_tokens: 100_000 },
      { type: 'generate', id: 'b26', prompt: ['x'] },
      { type: 'generate', id: 'b27', messages: 'hi' },
      { type: 'generate', id: 'b28', messages: [{ role: 'user' }] },
      { type: 'start', id: 'b29' },
      { type: 'done', id: 'b30' },
      '{"type":"generate","id":"b31","prompt":"x",}',
    ];
    for (const frame of bad) ws.send(frame);
    while (bad.length < 50) {
      ws.ws.send(Buffer.from([1, 2, 3, bad.length]));
      bad.push('binary');
    }
    await until(() => ws.frames.length >= 50, 5000, '50 error frames');
    expect(ws.frames).toHaveLength(50);
    expect(ws.frames.every((f) => f.type === 'error')).toBe(true);
    const codes = new Set(ws.frames.map((f) => (f.type === 'error' ? f.code : '')));
    expect(codes).toEqual(new Set(['invalid_json', 'invalid_frame', 'invalid_request']));
    // schema failures name the parameter
    const b9 = ws.frames.find((f) => f.type === 'error' && f.id === 'b9');
    expect(b9).toMatchObject({ code: 'invalid_request', details: { param: 'temperature' } });
    expect(b9?.type === 'error' && b9.message).toContain('temperature');
    const b23 = ws.frames.find((f) => f.type === 'error' && f.id === 'b23');
    expect(b23?.type === 'error' && b23.message).toContain('maxTokens');
    expect(h.engine.requests).toHaveLength(0);
    ws.send({ type: 'generate', id: 'ok', prompt: 'still alive', max_tokens: 3 });
    expect((await ws.done('ok')).usage.completion_tokens).toBe(3);
    await ws.close();
  });

  it('cancel ends a generation with finish_reason cancelled and the running gauge returns to 0', async () => {
    h = await startServer({ fake: { stepMs: 5 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'c', prompt: 'long one', max_tokens: 500 });
    await ws.waitFor((f) => f.type === 'token' && f.id === 'c');
    expect(h.engine.stats().running).toBe(1);
    ws.send({ type: 'cancel', id: 'c' });
    const done = await ws.done('c');
    expect(done.finish_reason).toBe('cancelled');
    expect(done.usage.completion_tokens).toBeLessThan(500);
    ws.send({ type: 'cancel', id: 'unknown' }); // no-op
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metricValue(metrics, 'specd_num_requests_running')).toBe(0);
    expect(metricValue(metrics, 'specd_requests_total{mode="speculative",finish_reason="cancelled"}')).toBe(1);
    await ws.close();
  });

  it('cancelling a queued generation yields done(cancelled) without a start', async () => {
    h = await startServer({ fake: { maxRunning: 1 } });
    h.engine.pause();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'run', prompt: 'a', max_tokens: 3 });
    ws.send({ type: 'generate', id: 'wait', prompt: 'b', max_tokens: 3 });
    await until(() => h.engine.stats().queued === 1);
    ws.send({ type: 'cancel', id: 'wait' });
    const done = await ws.done('wait');
    expect(done.finish_reason).toBe('cancelled');
    expect(ws.of('wait').map((f) => f.type)).toEqual(['done']);
    h.engine.resume();
    expect((await ws.done('run')).finish_reason).toBe('length');
    await ws.close();
  });

  it('socket close aborts all its streams (running gauge back to 0, counted as cancelled)', async () => {
    h = await startServer({ fake: { stepMs: 5 } });
    const ws = await WsClient.open(h.wsUrl);
    for (const id of ['p', 'q', 'r']) ws.send({ type: 'generate', id, prompt: 'go', max_tokens: 500 });
    await until(() => h.engine.stats().running === 3);
    await ws.close();
    await until(() => h.engine.stats().running === 0, 5000, 'streams to end');
    await until(() => h.recorder.recent().length === 3, 5000, 'streams recorded');
    expect(h.recorder.recent().map((r) => r.finish_reason)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  it('overload gives an error frame with code overloaded and the id', async () => {
    h = await startServer({ fake: { maxRunning: 1, maxQueue: 0 } });
    h.engine.pause();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'one', prompt: 'a', max_tokens: 2 });
    await ws.waitFor((f) => f.type === 'start');
    ws.send({ type: 'generate', id: 'two', prompt: 'b', max_tokens: 2 });
    const err = await ws.final('two');
    expect(err).toMatchObject({ type: 'error', id: 'two', code: 'overloaded' });
    h.engine.resume();
    await ws.done('one');
    await ws.close();
  });

  it('maps engine refusals: prompt_too_long names both counts, draft mode without a draft is invalid_request', async () => {
    h = await startServer({ fake: { maxPromptTokens: 5, hasDraft: false }, config: { draft: null } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'long', prompt: 'one two three four five six seven', max_tokens: 2 });
    const long = await ws.final('long');
    expect(long).toMatchObject({ type: 'error', code: 'prompt_too_long', details: { param: 'prompt', promptTokens: 7, limit: 5 } });
    expect(long.type === 'error' && long.message).toMatch(/7 tokens.*5/);
    ws.send({ type: 'generate', id: 'spec', prompt: 'hi', mode: 'speculative' });
    expect(await ws.final('spec')).toMatchObject({ type: 'error', code: 'invalid_request', details: { param: 'mode' } });
    ws.send({ type: 'generate', id: 'plain', prompt: 'hi', max_tokens: 2 }); // default mode is target without a draft
    expect((await ws.done('plain')).speculative).toEqual({
      mean_k: null,
      proposed: 0,
      accepted: 0,
      acceptance_rate: null,
      mean_accepted_length: null,
    });
    await ws.close();
  });

  it('ends with stop at end-of-sequence, unless ignore_eos', async () => {
    h = await startServer({ fake: { eosAfter: 3 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'eos', prompt: 'a', max_tokens: 10 });
    expect(await ws.done('eos')).toMatchObject({ finish_reason: 'stop', usage: { completion_tokens: 3 } });
    ws.send({ type: 'generate', id: 'all', prompt: 'a', max_tokens: 10, ignore_eos: true });
    expect(await ws.done('all')).toMatchObject({ finish_reason: 'length', usage: { completion_tokens: 10 } });
    await ws.close();
  });

  it('closes with 1009 on a frame over the size limit', async () => {
    h = await startServer({ config: { wsMaxFrameBytes: 1024 } });
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'big', prompt: 'x'.repeat(4096) });
    expect(await ws.closed).toBe(1009);
  });

  it('pauses a slow reader: no engine progress while bufferedAmount is over the limit', async () => {
    const engine = new FakeEngine({ stepMs: 0, tokensPerStep: [1] });
    const logger = pino({ level: 'silent' });
    const config = configFrom({ wsBufferedLimitBytes: 1000 });
    const ctx = createContext({
      engine,
      config,
      logger,
      metrics: createMetrics({ stats: () => engine.stats() }),
      recorder: new StreamRecorder({ capacity: 10 }),
    });
    const sent: string[] = [];
    const sock = Object.assign(new EventEmitter(), {
      readyState: WebSocket.OPEN,
      bufferedAmount: 0,
      send: (d: string) => {
        sent.push(d);
        if (sent.length === 5) sock.bufferedAmount = 5000;
      }, // then the client stops reading
      close: () => {},
      terminate: () => {},
      ping: () => {},
    });
    new WsSession(sock as unknown as WebSocket, ctx);
    sock.emit('message', Buffer.from(JSON.stringify({ type: 'generate', id: 's', prompt: 'go', max_tokens: 50, k: 0 })), false);
    await until(() => sent.length === 5, 2000, 'five frames');
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toHaveLength(5); // start + 4 tokens, then nothing: the stream is not pulled, so it does not step
    expect(engine.stats().running).toBe(1);
    sock.bufferedAmount = 0; // drained
    await until(() => sent.some((f) => JSON.parse(f).type === 'done'), 2000, 'the done frame');
    expect(sent.filter((f) => JSON.parse(f).type === 'token')).toHaveLength(50);
    expect(engine.stats().running).toBe(0);
  });
});
