/**
 * OpenAI parameters beyond the basics, through the official `openai` client against the real engine: each one
 * streamed and not, and each lossless under speculation (speculative output = target-mode output).
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { describeWithModels } from '../helpers/models.ts';
import { realEngineServer } from './harness.ts';

const h = realEngineServer();
const client = () => new OpenAI({ baseURL: `${h().url}/v1`, apiKey: 'none', maxRetries: 0 });
/** specd's own fields ride along in the body; the client's types do not know them. */
type Extra = Record<string, unknown>;

async function chat(body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & Extra, stream: boolean): Promise<string> {
  if (!stream) return (await client().chat.completions.create(body)).choices[0]!.message.content ?? '';
  const s = await client().chat.completions.create({ ...body, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta.content ?? '';
  return text;
}

async function complete(body: OpenAI.CompletionCreateParamsNonStreaming & Extra, stream: boolean): Promise<string> {
  if (!stream) return (await client().completions.create(body)).choices[0]!.text;
  const s = await client().completions.create({ ...body, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  return text;
}

describeWithModels('OpenAI parity through the openai client', () => {
  for (const stream of [false, true]) {
    describe(stream ? 'streamed' : 'not streamed', () => {
      it('presence_penalty and frequency_penalty change greedy output, identically in speculative and target mode', async () => {
        const base = { model: 'any', prompt: 'Once upon a time, there was a little cat named Tom.', max_tokens: 40, temperature: 0 };
        const plain = await complete({ ...base, mode: 'target' }, stream);
        const body = { ...base, presence_penalty: 1.2, frequency_penalty: 0.8 };
        const target = await complete({ ...body, mode: 'target' }, stream);
        expect(target).not.toBe(plain);
        expect(await complete({ ...body, mode: 'speculative' }, stream)).toBe(target);
      });

      it('logit_bias bans (−100) and forces (+100) a token, in chat and completions', async () => {
        const dot = (await (
          await fetch(`${h().url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: '.', add_special_tokens: false }) })
        ).json()) as {
          tokens: number[];
        };
        const id = String(dot.tokens[0]);
        const messages = [{ role: 'user' as const, content: 'Tell me a story about a dog named Spot.' }];
        const banned = await chat({ model: 'any', messages, max_tokens: 48, temperature: 0, logit_bias: { [id]: -100 } }, stream);
        expect(banned.length).toBeGreaterThan(0);
        expect(banned).not.toContain('.');
        const forced = await complete(
          { model: 'any', prompt: 'Once', max_tokens: 5, logit_bias: { [id]: 100 }, temperature: 1, seed: 3 },
          stream,
        );
        expect(forced).toBe('.....');
      });

      it('max_completion_tokens caps a chat reply', async () => {
        const r = await client().chat.completions.create({
          model: 'any',
          messages: [{ role: 'user', content: 'Tell me a story.' }],
          max_completion_tokens: 7,
          ignore_eos: true,
          ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
        } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
        if (!stream) expect((r as OpenAI.Chat.ChatCompletion).usage?.completion_tokens).toBe(7);
        else {
          let usage: OpenAI.CompletionUsage | undefined | null;
          for await (const c of r as unknown as AsyncIterable<OpenAI.Chat.ChatCompletionChunk>) usage = c.usage ?? usage;
          expect(usage?.completion_tokens).toBe(7);
        }
      });
    });
  }

  it('refuses out-of-range penalties and malformed logit_bias with 400 naming the parameter', async () => {
    const post = (body: unknown) =>
      fetch(`${h().url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'a', ...(body as object) }) }).then(
        async (r) => ({
          status: r.status,
          error: ((await r.json()) as { error: { param: string } }).error,
        }),
      );
    expect(await post({ presence_penalty: 3 })).toMatchObject({ status: 400, error: { param: 'presence_penalty' } });
    expect(await post({ logit_bias: { x: 1 } })).toMatchObject({ status: 400 });
    expect(await post({ logit_bias: { '5': 101 } })).toMatchObject({ status: 400 });
    expect(await post({ logit_bias: { '99999999': 1 } })).toMatchObject({ status: 400, error: { param: 'logit_bias' } });
  });
});
