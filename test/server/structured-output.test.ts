/**
 * response_format through the official `openai` client and the WebSocket frame, against the real engine:
 * json_schema and json_object, streamed and not, and the refusals a client can provoke (each a 400 naming
 * response_format, or an error frame on a socket that stays open).
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { describeWithModels } from '../helpers/models.ts';
import { realEngineServer, WsClient } from './harness.ts';

const h = realEngineServer();
const client = () => new OpenAI({ baseURL: `${h().url}/v1`, apiKey: 'none', maxRetries: 0 });
type Extra = Record<string, unknown>;

const PET = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    kind: { type: 'string', enum: ['dog', 'cat', 'bird'] },
    age: { type: 'integer', minimum: 0, maximum: 30 },
  },
  required: ['name', 'kind', 'age'],
};
const asJsonSchema = { type: 'json_schema' as const, json_schema: { name: 'pet', schema: PET, strict: true } };

async function chat(body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & Extra, stream: boolean) {
  if (!stream) {
    const r = await client().chat.completions.create(body);
    return { text: r.choices[0]!.message.content ?? '', finish: r.choices[0]!.finish_reason };
  }
  const s = await client().chat.completions.create({ ...body, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const c of s) {
    text += c.choices[0]?.delta.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

const post = (path: string, body: unknown) =>
  fetch(`${h().url}${path}`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({
    status: r.status,
    error: ((await r.json()) as { error?: { param: string | null; message: string; code: string } }).error,
  }));

describeWithModels('structured output through the openai client', () => {
  const messages = [{ role: 'user' as const, content: 'Tell me about your pet.' }];
  for (const stream of [false, true]) {
    describe(stream ? 'streamed' : 'not streamed', () => {
      it('json_schema: the reply parses and holds to the schema; greedy speculative = target', async () => {
        const base = { model: 'any', messages, max_tokens: 64, temperature: 0, response_format: asJsonSchema };
        const target = await chat({ ...base, mode: 'target' }, stream);
        const spec = await chat({ ...base, mode: 'speculative' }, stream);
        expect(spec).toEqual(target);
        expect(target.finish).toBe('stop');
        const pet = JSON.parse(target.text) as { name: string; kind: string; age: number };
        expect(Object.keys(pet).sort()).toEqual(['age', 'kind', 'name']);
        expect(['dog', 'cat', 'bird']).toContain(pet.kind);
        expect(Number.isInteger(pet.age) && pet.age >= 0 && pet.age <= 30).toBe(true);
        const sampled = await chat({ ...base, temperature: 1, seed: 7, n: 1 }, stream);
        expect(JSON.parse(sampled.text)).toHaveProperty('kind');
      });

      it('json_object: the reply opens a JSON object (completions too)', async () => {
        const r = await chat({ model: 'any', messages, max_tokens: 24, temperature: 0, response_format: { type: 'json_object' } }, stream);
        expect(r.text).toMatch(/^\{/);
        const plain = await chat({ model: 'any', messages, max_tokens: 24, temperature: 0 }, stream);
        expect(plain.text).not.toMatch(/^\{/);
        const c = stream
          ? ''
          : (
              await client().completions.create({
                model: 'any',
                prompt: 'Once upon a time',
                max_tokens: 48,
                temperature: 0,
                response_format: {
                  type: 'json_schema',
                  json_schema: { name: 'n', schema: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 9 }, maxItems: 3 } },
                },
              } as OpenAI.CompletionCreateParamsNonStreaming & Extra)
            ).choices[0]!.text;
        if (!stream) expect(JSON.parse(c)).toEqual(expect.any(Array));
      });
    });
  }

  it('the WebSocket generate frame takes response_format; a bad schema gets an error frame on a socket that stays open', async () => {
    const ws = await WsClient.open(h().wsUrl);
    ws.send({
      type: 'generate',
      id: 'bad',
      prompt: 'x',
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'foo' } } },
    });
    expect(await ws.final('bad')).toMatchObject({ type: 'error', code: 'invalid_request', details: { param: 'response_format' } });
    ws.send({ type: 'generate', id: 'ok', messages, max_tokens: 64, response_format: asJsonSchema });
    await ws.done('ok');
    const text = ws.frames.flatMap((f) => (f.type === 'token' && f.id === 'ok' ? f.tokens.map((t) => t.text) : [])).join('');
    expect(JSON.parse(text)).toHaveProperty('name');
    await ws.close();
  });

  it('refuses what it cannot constrain to with 400 naming response_format, and keeps serving', async () => {
    const at = '/v1/chat/completions';
    const body = (response_format: unknown) => ({ messages, max_tokens: 8, response_format });
    for (const rf of [
      { type: 'xml' },
      { type: 'json_schema' },
      { type: 'json_schema', json_schema: { name: 'x' } },
      { type: 'json_schema', json_schema: { name: 'x', schema: 'not an object' } },
      { type: 'json_schema', json_schema: { name: 'x', schema: { enum: Array.from({ length: 4000 }, (_, i) => `value-${i}`) } } },
    ]) {
      const r = await post(at, body(rf));
      expect(r.status, JSON.stringify(rf).slice(0, 80)).toBe(400);
      expect(r.error!.param).toMatch(/^response_format/);
    }
    // Schemas only XGrammar can judge: its reason comes back.
    const bad = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(at, body({ type: 'json_schema', json_schema: { name: 'x', schema: { type: `t${i}` } } }))),
    );
    for (const [i, r] of bad.entries())
      expect(r).toMatchObject({
        status: 400,
        error: { param: 'response_format', message: expect.stringContaining(`Unsupported type "t${i}"`) },
      });
    const after = await chat({ model: 'any', messages, max_tokens: 64, temperature: 0, response_format: asJsonSchema }, false);
    expect(JSON.parse(after.text)).toHaveProperty('age');
  });
});
