/** POST /tokenize and POST /detokenize on the real engine: vLLM's shapes, the ids generation runs, lossless round trips. */
import { describe, expect, it } from 'vitest';
import { heldoutStories } from '../../scripts/bench/heldout.ts';
import { realEngineServer, startServer } from './harness.ts';

const h = realEngineServer();
const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(`${h().url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('/tokenize and /detokenize', () => {
  it('round-trips corpus lines: text → ids → the same text', async () => {
    const lines = heldoutStories()
      .slice(0, 10)
      .flatMap((s) => s.split('\n'))
      .filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(20);
    for (const line of lines) {
      const t = await post('/tokenize', { prompt: line, add_special_tokens: false });
      expect(t.status).toBe(200);
      const tokens = t.body['tokens'] as number[];
      expect(t.body['count']).toBe(tokens.length);
      expect(t.body['max_model_len']).toBe(h().engine.info().target.contextLength);
      const d = await post('/detokenize', { tokens });
      expect(d).toEqual({ status: 200, body: { prompt: line } });
    }
  });

  it('gives the ids generation runs: BOS on raw prompts, the chat template with its generation prompt', async () => {
    const withBos = (await post('/tokenize', { prompt: 'Once upon a time' })).body['tokens'] as number[];
    const without = (await post('/tokenize', { prompt: 'Once upon a time', add_special_tokens: false })).body['tokens'] as number[];
    expect(withBos).toEqual(h().engine.encode({ prompt: 'Once upon a time' }));
    expect(withBos.length).toBeGreaterThan(without.length);
    const messages = [{ role: 'user', content: 'Tell me a story about a cat.' }];
    const chat = (await post('/tokenize', { messages })).body['tokens'] as number[];
    expect(chat).toEqual(h().engine.encode({ messages: messages as [{ role: 'user'; content: string }] }));
    const rendered = (await post('/detokenize', { tokens: chat })).body['prompt'];
    expect(rendered).toBe('<s><|im_start|>user\nTell me a story about a cat.<|im_end|>\n<|im_start|>assistant\n');
    const noGen = (await post('/tokenize', { messages, add_generation_prompt: false })).body['tokens'] as number[];
    expect(chat.slice(0, noGen.length)).toEqual(noGen);
    expect(noGen.length).toBeLessThan(chat.length);
  });

  it('refuses bad bodies with a structured 400 that names the parameter', async () => {
    expect((await post('/tokenize', {})).body['error']).toMatchObject({ code: 'invalid_request', param: 'prompt' });
    expect((await post('/tokenize', { prompt: 'a', messages: [{ role: 'user', content: 'b' }] })).status).toBe(400);
    const vocab = h().engine.info().target.vocabSize;
    const out = await post('/detokenize', { tokens: [1, vocab] });
    expect(out.status).toBe(400);
    expect(out.body['error']).toMatchObject({ code: 'invalid_request', param: 'tokens' });
    expect((await post('/detokenize', { tokens: [1.5] })).body['error']).toMatchObject({ param: 'tokens[0]' });
  });

  it('sits behind the API key like /v1', async () => {
    const s = await startServer({ config: { apiKey: 'k' } });
    try {
      const r = await fetch(`${s.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: 'a b' }) });
      expect(r.status).toBe(401);
      const ok = await fetch(`${s.url}/tokenize`, {
        method: 'POST',
        headers: { authorization: 'Bearer k' },
        body: JSON.stringify({ prompt: 'a b' }),
      });
      expect(((await ok.json()) as { count: number }).count).toBe(2);
    } finally {
      await s.close();
    }
  });
});
