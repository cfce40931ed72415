import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorEnvelopeSchema } from '../../src/protocol/index.ts';
import { FAKE_WORDS } from '../helpers/fake-engine.ts';
import { type Harness, metricValue, startServer, until } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const client = (apiKey = 'anything') => new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0 });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('OpenAI-compatible HTTP', () => {
  it('the openai client streams a chat completion through SSE, with usage and the specd figures', async () => {
    h = await startServer();
    const stream = await client().chat.completions.create({
      model: 'fake-target',
      messages: [{ role: 'user', content: 'Tell me a story' }],
      max_tokens: 15,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.object).toBe('chat.completion.chunk');
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(FAKE_WORDS.slice(0, 15).join(''));
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish!.choices[0]!.finish_reason).toBe('length');
    const specd = (
      finish as unknown as { specd: { timings: { ttft_ms: number; itl_ms: { p95: number } }; speculative: { accepted: number } } }
    ).specd;
    expect(specd.timings.ttft_ms).toBeGreaterThan(0);
    expect(specd.speculative.accepted).toBeGreaterThan(0);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 8, completion_tokens: 15, total_tokens: 23 }); // 1 + (3 + 4 words) per the fake's template
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.model).toBe('fake-target');
  });

  it('the openai client streams a completion', async () => {
    h = await startServer();
    const stream = await client().completions.create({
      model: 'fake-target',
      prompt: 'Once',
      max_tokens: 12,
      stream: true,
      stop: [' fox'],
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('text_completion');
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(' Once upon a time, there was a little');
    expect(finish).toBe('stop');
    expect(h.engine.requests[0]).toMatchObject({ stop: [' fox'], maxTokens: 12, sampling: { temperature: 0 } });
  });

  it('non-streaming chat and completion responses', async () => {
    h = await startServer();
    const chat = await client().chat.completions.create({
      model: 'fake-target',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      max_tokens: 6,
      temperature: 0.7,
      top_p: 0.9,
      seed: 7,
    });
    expect(chat.object).toBe('chat.completion');
    expect(chat.choices[0]!.message).toEqual({ role: 'assistant', content: FAKE_WORDS.slice(0, 6).join('') });
    expect(chat.choices[0]!.finish_reason).toBe('length');
    expect(chat.usage).toMatchObject({ completion_tokens: 6 });
    expect((chat as unknown as { specd: { seed: number; mode: string } }).specd).toMatchObject({ seed: 7, mode: 'speculative' });
    expect(h.engine.requests[0]!.sampling).toEqual({ temperature: 0.7, topP: 0.9, topK: 0, minP: 0, repetitionPenalty: 1, seed: 7 });

    const cmpl = await client().completions.create({ model: 'fake-target', prompt: 'Once', max_tokens: 4 });
    expect(cmpl.object).toBe('text_completion');
    expect(cmpl.choices[0]!.text).toBe(' Once upon a time');
    // specd-only parameters ride along as extra body fields
    const res = await post('/v1/completions', {
      prompt: 'x',
      max_tokens: 3,
      mode: 'target',
      k: 0,
      top_k: 5,
      min_p: 0.1,
      repetition_penalty: 1.2,
    });
    expect(res.status).toBe(200);
    expect(h.engine.requests[2]).toMatchObject({ mode: 'target', k: 0, sampling: { topK: 5, minP: 0.1, repetitionPenalty: 1.2 } });
    // asking for the draft model by name selects draft mode
    const draft = await client().completions.create({ model: 'fake-draft', prompt: 'x', max_tokens: 2 });
    expect(draft.model).toBe('fake-draft');
    expect(h.engine.requests[3]!.mode).toBe('draft');
  });

  it('lists models, health, readiness and recent streams', async () => {
    h = await startServer();
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual(['fake-target', 'fake-draft']);
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
    await client().completions.create({ model: 'fake-target', prompt: 'Once', max_tokens: 5 });
    const recent = (await (await fetch(`${h.url}/v1/streams/recent?limit=5`)).json()) as { data: Record<string, unknown>[] };
    expect(recent.data).toHaveLength(1);
    expect(recent.data[0]).toMatchObject({ transport: 'http', endpoint: '/v1/completions', finish_reason: 'length', mode: 'speculative' });
    expect(recent.data[0]!['itl_ms_series']).toHaveLength(4);
    expect((await fetch(`${h.url}/v1/streams/recent?limit=zero`)).status).toBe(400);
    expect((await fetch(`${h.url}/nope`)).status).toBe(404);
  });

  it('/metrics has the latency histograms with non-zero counts after a request', async () => {
    h = await startServer();
    await client().completions.create({ model: 'fake-target', prompt: 'Once', max_tokens: 10, stream: false });
    const res = await fetch(`${h.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    for (const name of ['specd_time_to_first_token_seconds', 'specd_e2e_request_latency_seconds', 'specd_request_queue_time_seconds']) {
      expect(metricValue(text, `${name}_count{mode="speculative"}`), name).toBe(1);
    }
    expect(metricValue(text, 'specd_inter_token_latency_seconds_count{mode="speculative"}')).toBe(9);
    expect(metricValue(text, 'specd_generation_tokens_total')).toBe(10);
    expect(metricValue(text, 'specd_prompt_tokens_total')).toBe(1);
    expect(metricValue(text, 'specd_spec_decode_num_drafts_total')).toBeGreaterThan(0);
    expect(metricValue(text, 'specd_spec_decode_num_draft_tokens_total')).toBeGreaterThan(0);
    expect(metricValue(text, 'specd_spec_decode_num_accepted_tokens_total')).toBeGreaterThan(0);
    expect(metricValue(text, 'specd_spec_decode_num_accepted_tokens_per_pos_total{position="0"}')).toBeGreaterThan(0);
    expect(metricValue(text, 'specd_requests_total{mode="speculative",finish_reason="length"}')).toBe(1);
    expect(metricValue(text, 'specd_num_requests_running')).toBe(0);
    expect(metricValue(text, 'specd_num_requests_waiting')).toBe(0);
  });

  it('400 for each invalid parameter kind, naming the parameter', async () => {
    h = await startServer();
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/completions', { max_tokens: 0 }, 'max_tokens'],
      ['/v1/completions', { max_tokens: 10_000 }, 'max_tokens'],
      ['/v1/completions', { max_tokens: 2.5 }, 'max_tokens'],
      ['/v1/completions', { temperature: 2.5 }, 'temperature'],
      ['/v1/completions', { temperature: 'hot' }, 'temperature'],
      ['/v1/completions', { top_p: 0 }, 'top_p'],
      ['/v1/completions', { top_p: 1.5 }, 'top_p'],
      ['/v1/completions', { top_k: -1 }, 'top_k'],
      ['/v1/completions', { min_p: 1 }, 'min_p'],
      ['/v1/completions', { repetition_penalty: 3 }, 'repetition_penalty'],
      ['/v1/completions', { seed: -5 }, 'seed'],
      ['/v1/completions', { stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      ['/v1/completions', { stop: 'x'.repeat(65) }, 'stop'],
      ['/v1/completions', { mode: 'turbo' }, 'mode'],
      ['/v1/completions', { k: 9 }, 'k'],
      ['/v1/completions', { prompt: '' }, 'prompt'],
      ['/v1/completions', { prompt: [1, 2, 3] }, 'prompt'],
      ['/v1/completions', { n: 17 }, 'n'],
      ['/v1/completions', { logprobs: 6 }, 'logprobs'],
      ['/v1/completions', { echo: true }, 'echo'],
      ['/v1/completions', { presence_penalty: 2.5 }, 'presence_penalty'],
      ['/v1/completions', { logit_bias: { abc: 1 } }, 'logit_bias.abc'],
      ['/v1/chat/completions', { messages: [] }, 'messages'],
      ['/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }, 'top_logprobs'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, 'tools'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 0 }, 'max_completion_tokens'],
    ];
    for (const [path, patch, param] of cases) {
      const base = path === '/v1/completions' ? { model: 'm', prompt: 'hello' } : { model: 'm' };
      const res = await post(path, { ...base, ...patch });
      const body = ErrorEnvelopeSchema.parse(await res.json());
      expect(res.status, `${param}: ${JSON.stringify(patch)}`).toBe(400);
      expect(body.error.param).toBe(param);
      expect(body.error.message).toContain(param);
      expect(body.error.type).toBe('invalid_request_error');
    }
    const missing = await post('/v1/completions', { model: 'm' });
    expect(await missing.json()).toMatchObject({ error: { param: 'prompt', code: 'invalid_request' } });
    const badJson = await post('/v1/completions', '{"prompt": ');
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toMatchObject({ error: { code: 'invalid_json' } });
    // the openai client surfaces them as BadRequestError
    await expect(client().completions.create({ model: 'm', prompt: 'x', temperature: 9 })).rejects.toMatchObject({
      status: 400,
      param: 'temperature',
    });
    // unknown extra fields are ignored; no-op values of unsupported ones are accepted
    const ok = await post('/v1/completions', {
      model: 'm',
      prompt: 'x',
      max_tokens: 1,
      user: 'u',
      n: 1,
      logprobs: null,
      frequency_penalty: 0,
      whatever: {},
    });
    expect(ok.status).toBe(200);
    expect(h.engine.requests).toHaveLength(1);
  });

  it('prompt_too_long is a 400 naming both token counts', async () => {
    h = await startServer({ fake: { maxPromptTokens: 3 } });
    const res = await post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'a b c d' }] });
    expect(res.status).toBe(400);
    const body = ErrorEnvelopeSchema.parse(await res.json());
    expect(body.error).toMatchObject({ code: 'prompt_too_long', param: 'messages', type: 'invalid_request_error' });
    expect(body.error.message).toMatch(/8 tokens.*limit of 3/);
  });

  it('n choices: one refused choice refuses the request, and the admitted ones are cancelled, not left running', async () => {
    h = await startServer({ fake: { maxRunning: 2, maxQueue: 0, stepMs: 20 } });
    const res = await post('/v1/completions', { prompt: 'hi there', n: 3, max_tokens: 50 });
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: { code: 'overloaded' } });
    await until(() => h.engine.stats().running === 0, 5000, 'the admitted choices to end');
    const ok = await client().completions.create({ model: 'm', prompt: 'hi there', n: 2, max_tokens: 4 });
    expect(ok.choices.map((c) => [c.index, c.finish_reason])).toEqual([
      [0, 'length'],
      [1, 'length'],
    ]);
    expect(h.engine.requests.slice(-2).map((r) => r.sampling.seed)).toEqual([undefined, undefined]); // unseeded: each draws its own
    await post('/v1/completions', { prompt: 'x', n: 2, seed: 7, max_tokens: 1 });
    const [a, b] = h.engine.requests.slice(-2).map((r) => r.sampling.seed);
    expect(a).toBe(7);
    expect(b).not.toBe(7);
  });

  it('n choices beyond the free slots wait their turn instead of for each other (JSON and SSE, two requests at once)', async () => {
    h = await startServer({ fake: { maxRunning: 2, maxQueue: 16, stepMs: 2 } });
    const timed = (body: unknown) =>
      fetch(`${h.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    // Five choices on two slots; then two requests of two choices on three slots, each holding a slot the other needs.
    const five = await timed({ prompt: 'hi there', n: 5, max_tokens: 3 });
    expect(five.status).toBe(200);
    expect(((await five.json()) as { choices: unknown[] }).choices).toHaveLength(5);
    const sse = await timed({ prompt: 'hi there', n: 5, max_tokens: 3, stream: true });
    expect(sse.status).toBe(200);
    const text = await sse.text();
    expect(new Set([...text.matchAll(/"index":(\d)/g)].map((m) => m[1])).size).toBe(5);
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    await h.close();
    h = await startServer({ fake: { maxRunning: 3, maxQueue: 16, stepMs: 2 } });
    const pair = await Promise.all([timed({ prompt: 'a b', n: 2, max_tokens: 4 }), timed({ prompt: 'c d', n: 2, max_tokens: 4 })]);
    expect(pair.map((r) => r.status)).toEqual([200, 200]);
  });

  it('overload gives 429 with Retry-After and type overloaded', async () => {
    h = await startServer({ fake: { maxRunning: 1, maxQueue: 0 } });
    h.engine.pause();
    const first = post('/v1/completions', { prompt: 'a', max_tokens: 2 });
    await until(() => h.engine.stats().running === 1);
    const res = await post('/v1/completions', { prompt: 'b', max_tokens: 2 });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: { type: 'overloaded', code: 'overloaded' } });
    h.engine.resume();
    expect((await first).status).toBe(200);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metricValue(metrics, 'specd_request_errors_total{code="overloaded"}')).toBe(1);
  });

  it('a client abort mid-stream cancels the engine request', async () => {
    h = await startServer({ fake: { stepMs: 5 } });
    const ac = new AbortController();
    const res = await post('/v1/completions', { prompt: 'go', max_tokens: 500, stream: true }, {});
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    void ac;
    await until(() => h.engine.stats().running === 0, 5000, 'the stream to end');
    await until(() => h.recorder.recent().length === 1);
    expect(h.recorder.recent()[0]!.finish_reason).toBe('cancelled');
    expect(h.engine.requests[0]!.signal?.aborted).toBe(true);
  });

  it('a client abort of a non-streaming request cancels the engine request', async () => {
    h = await startServer({ fake: { stepMs: 5 } });
    const ac = new AbortController();
    const pending = fetch(`${h.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'go', max_tokens: 500 }),
      signal: ac.signal,
    }).catch((e: unknown) => e);
    await until(() => h.engine.stats().running === 1);
    ac.abort();
    await pending;
    await until(() => h.engine.stats().running === 0, 5000, 'the stream to end');
    await until(() => h.recorder.recent().length === 1);
    expect(h.recorder.recent()[0]!.finish_reason).toBe('cancelled');
  });

  it('413 on an oversized body', async () => {
    h = await startServer({ config: { maxBodyBytes: 1000 } });
    const res = await post('/v1/completions', { prompt: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'too_large' } });
    // also without Content-Length (chunked upload)
    const chunked = await fetch(`${h.url}/v1/completions`, {
      method: 'POST',
      body: new Blob([JSON.stringify({ prompt: 'y'.repeat(5000) })]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('/ready is 503 until the engine is ready, and generation then answers not_ready', async () => {
    h = await startServer({ fake: { ready: false } });
    expect((await fetch(`${h.url}/health`)).status).toBe(200);
    const ready = await fetch(`${h.url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ error: { code: 'not_ready' } });
    const gen = await post('/v1/completions', { prompt: 'x' });
    expect(gen.status).toBe(503);
    expect(gen.headers.get('retry-after')).toBe('1');
    h.engine.setReady(true);
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
  });
});
