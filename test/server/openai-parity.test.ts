/**
 * OpenAI parameters beyond the basics, through the official `openai` client against the real engine: each one
 * streamed and not, and each lossless under speculation (speculative output = target-mode output).
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { describeWithModels } from '../helpers/models.ts';
import { realEngineServer, WsClient } from './harness.ts';

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

      it('chat logprobs + top_logprobs: the target’s values, equal in speculative and target mode', async () => {
        const body = {
          model: 'any',
          messages: [{ role: 'user' as const, content: 'Tell me a story about a cat named Kitty.' }],
          max_tokens: 20,
          ignore_eos: true,
          logprobs: true,
          top_logprobs: 3,
        };
        const get = async (mode: string) => {
          if (!stream)
            return (await client().chat.completions.create({ ...body, mode } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming))
              .choices[0]!.logprobs!.content!;
          const s = await client().chat.completions.create({
            ...body,
            mode,
            stream: true,
          } as OpenAI.Chat.ChatCompletionCreateParamsStreaming);
          const entries: OpenAI.Chat.ChatCompletionTokenLogprob[] = [];
          for await (const c of s) entries.push(...(c.choices[0]?.logprobs?.content ?? []));
          return entries;
        };
        const [spec, target] = [await get('speculative'), await get('target')];
        expect(spec).toHaveLength(20);
        spec.forEach((e, i) => {
          expect(e.top_logprobs).toHaveLength(3);
          expect(e.top_logprobs[0]!.token).toBe(e.token); // greedy: the emitted token is the top entry
          expect(e.bytes).toEqual([...Buffer.from(e.token, 'utf8')]);
          expect(e.token).toBe(target[i]!.token);
          expect(Math.abs(e.logprob - target[i]!.logprob)).toBeLessThanOrEqual(1e-4);
        });
      });

      it('completions logprobs N: parallel arrays with offsets into the text', async () => {
        const body = { model: 'any', prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true, logprobs: 2 };
        let text = '';
        let lp: { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[]; text_offset: number[] } = {
          tokens: [],
          token_logprobs: [],
          top_logprobs: [],
          text_offset: [],
        };
        if (!stream) {
          const r = await client().completions.create(body);
          text = r.choices[0]!.text;
          lp = r.choices[0]!.logprobs as typeof lp;
        } else {
          for await (const c of await client().completions.create({ ...body, stream: true })) {
            text += c.choices[0]?.text ?? '';
            const l = c.choices[0]?.logprobs as typeof lp | null;
            if (l) for (const k of ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset'] as const) (lp[k] as unknown[]).push(...l[k]);
          }
        }
        expect(lp.tokens).toHaveLength(12);
        expect(lp.tokens.join('')).toBe(text);
        lp.text_offset.forEach((o, i) => expect(text.slice(o, o + lp.tokens[i]!.length)).toBe(lp.tokens[i]));
        lp.top_logprobs.forEach((top, i) => {
          expect(Object.keys(top).length).toBeLessThanOrEqual(2);
          expect(top[lp.tokens[i]!]).toBeCloseTo(lp.token_logprobs[i]!, 6);
        });
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

  it('n = 3: three independent choices, reproducible with a seed, streamed and not; usage counts the prompt once', async () => {
    const body = {
      model: 'any',
      messages: [{ role: 'user' as const, content: 'Tell me a story about a dog.' }],
      max_tokens: 16,
      temperature: 1,
      n: 3,
      seed: 11,
    };
    const a = await client().chat.completions.create(body);
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const texts = a.choices.map((c) => c.message.content);
    expect(new Set(texts).size).toBeGreaterThan(1); // independent samples
    const b = await client().chat.completions.create(body);
    expect(b.choices.map((c) => c.message.content)).toEqual(texts);
    const one = await client().chat.completions.create({ ...body, n: 1 });
    expect(one.choices[0]!.message.content).toBe(texts[0]); // choice 0 keeps the request's seed
    expect(a.usage!.completion_tokens).toBe(48); // 3 × 16 (a dog story outlasts 16 tokens)
    expect(a.usage!.total_tokens).toBe(a.usage!.prompt_tokens + 48);
    expect(a.usage!.prompt_tokens).toBe(one.usage!.prompt_tokens);

    const s = await client().chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    const streamed = ['', '', ''];
    const finished = new Set<number>();
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of s) {
      for (const ch of c.choices) {
        streamed[ch.index] += ch.delta.content ?? '';
        if (ch.finish_reason) finished.add(ch.index);
      }
      usage = c.usage ?? usage;
    }
    expect(streamed).toEqual(texts);
    expect([...finished].sort()).toEqual([0, 1, 2]);
    expect(usage).toEqual(a.usage);

    const comp = await client().completions.create({
      model: 'any',
      prompt: 'Once upon a time',
      max_tokens: 8,
      n: 2,
      temperature: 1,
      seed: 5,
    });
    expect(comp.choices.map((c) => c.index)).toEqual([0, 1]);
    const bad = await fetch(`${h().url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'a', n: 17 }) });
    expect(bad.status).toBe(400);
  });

  it('the WebSocket token frame carries logprob and top_logprobs when asked', async () => {
    const ws = await WsClient.open(h().wsUrl);
    ws.send({ type: 'generate', id: 'lp', prompt: 'Once upon a time', max_tokens: 6, ignore_eos: true, logprobs: true, top_logprobs: 2 });
    await ws.done('lp');
    const toks = ws.frames.flatMap((f) => (f.type === 'token' ? f.tokens : []));
    expect(toks).toHaveLength(6);
    for (const t of toks) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(2);
      expect(t.top_logprobs![0]!.id).toBe(t.id);
    }
    ws.send({ type: 'generate', id: 'bad', prompt: 'x', top_logprobs: 2 });
    const err = await ws.final('bad');
    expect(err).toMatchObject({ code: 'invalid_request', details: { param: 'top_logprobs' } });
    await ws.close();
  });

  it('refuses out-of-range penalties and malformed logit_bias with 400 naming the parameter', async () => {
    const post = (body: unknown) =>
      fetch(`${h().url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'a', ...(body as object) }) }).then(
        async (r) => ({
          status: r.status,
          error: ((await r.json()) as { error: { param: string } }).error,
        }),
      );
    expect(await post({ presence_penalty: 3 })).toMatchObject({ status: 400, error: { param: 'presence_penalty' } });
    expect(await post({ logprobs: 6 })).toMatchObject({ status: 400, error: { param: 'logprobs' } });
    expect(await post({ logit_bias: { x: 1 } })).toMatchObject({ status: 400 });
    expect(await post({ logit_bias: { '5': 101 } })).toMatchObject({ status: 400 });
    expect(await post({ logit_bias: { '99999999': 1 } })).toMatchObject({ status: 400, error: { param: 'logit_bias' } });
  });
});
