/**
 * The real server on the real engine and models (the other server suites use a FakeEngine): a WebSocket stream,
 * two multiplexed generations, the official openai client over SSE, metrics after requests, and a SIGTERM-style
 * drain mid-stream.
 */
import OpenAI from 'openai';
import { expect, it } from 'vitest';
import { describeWithModels } from '../helpers/models.ts';
import { realEngineServer, until, WsClient } from './harness.ts';

describeWithModels('server on the real engine', () => {
  const server = realEngineServer();

  it('streams start, token frames that add up to the completion, and done with latency and acceptance figures', async () => {
    const h = server();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'a', prompt: 'Once upon a time', max_tokens: 24, ignore_eos: true });
    ws.send({ type: 'generate', id: 'b', prompt: 'The dog ran to the park', max_tokens: 16, ignore_eos: true, mode: 'target' });
    const [a, b] = await Promise.all([ws.done('a'), ws.done('b')]);
    for (const [id, done, n] of [
      ['a', a, 24],
      ['b', b, 16],
    ] as const) {
      const frames = ws.of(id);
      expect(frames[0]!.type).toBe('start');
      const tokens = frames.flatMap((f) => (f.type === 'token' ? f.tokens : []));
      expect(tokens).toHaveLength(n);
      expect(done.usage.completion_tokens).toBe(n);
      expect(done.timings.ttft_ms).toBeGreaterThan(0);
      expect(done.timings.itl_ms.p99).toBeGreaterThanOrEqual(done.timings.itl_ms.p50);
    }
    expect(a.speculative.proposed).toBeGreaterThan(0);
    expect(a.speculative.acceptance_rate).toBeGreaterThanOrEqual(0);
    expect(b.speculative.proposed).toBe(0);
    await ws.close();
  });

  it('the openai client streams a chat completion unchanged', async () => {
    const h = server();
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'unused' });
    const stream = await client.chat.completions.create({
      model: 'any',
      stream: true,
      max_tokens: 20,
      messages: [{ role: 'user', content: 'Tell me a story about a cat.' }],
      stream_options: { include_usage: true },
    });
    let text = '',
      usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/specd_time_to_first_token_seconds_count(\{[^}]*\})? [1-9]/);
    expect(metrics).toMatch(/specd_inter_token_latency_seconds_count\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/specd_spec_decode_num_draft_tokens_total [1-9]/);
  });

  it('GET /v1/models says what was loaded: family, dtype and file, KV layout, context length', async () => {
    const body = (await (await fetch(`${server().url}/v1/models`)).json()) as { data: Record<string, unknown>[] };
    expect(body.data).toEqual([
      expect.objectContaining({
        id: 'specd-story-16m',
        role: 'target',
        context_length: 1024,
        specd: expect.objectContaining({
          family: 'llama',
          dtype: 'fp32',
          file: 'onnx/model_pooled.onnx',
          kv_in_place: true,
          attention: 'GQA',
          heads: 6,
          kv_heads: 2,
        }),
      }),
      expect.objectContaining({
        id: 'specd-story-draft-1.5m',
        role: 'draft',
        specd: expect.objectContaining({
          family: 'llama',
          attention: 'MQA',
          heads: 2,
          kv_heads: 1,
          kv_dtype: 'float32',
          kv_in_place: true,
        }),
      }),
    ]);
  });

  it('a drain mid-stream gives the open stream a final frame', async () => {
    const h = server();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'long', prompt: 'Once upon a time', max_tokens: 500, ignore_eos: true });
    await ws.waitFor((f) => f.type === 'token');
    const drained = h.engine.drain(50);
    const final = await ws.final('long', 10_000);
    expect(final.type === 'done' ? final.finish_reason : final.type).toMatch(/shutdown|length/);
    await drained;
    await until(() => h.engine.stats().running === 0);
  });
});
