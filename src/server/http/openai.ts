import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { DoneEvent, EngineEvent, Mode, StartEvent } from '../../engine/index.ts';
import { linkedAbort, readAhead } from '../../lib/async.ts';
import {
  chatBodySchema,
  chatLogprobsCount,
  completionBodySchema,
  describeIssue,
  parseClientJson,
  type WireSampling,
} from '../../protocol/index.ts';
import type { ServerContext } from '../context.ts';
import { newId } from '../context.ts';
import { ApiError } from '../errors.ts';
import { toGenerateRequest, type WireInput } from '../to-engine.ts';
import { LogprobsCollector, OpenAIFormatter } from './openai-format.ts';
import type { AppEnv } from './types.ts';

interface Prepared {
  input: WireInput;
  inputParam: 'prompt' | 'messages';
  params: Partial<WireSampling>;
  stream: boolean;
  includeUsage: boolean;
  model: string | null;
  /** Token logprobs with this many alternatives (undefined: none). */
  logprobs: number | undefined;
  /** Choices: independent streams of the same prompt. */
  n: number;
}

/** Reads the body as JSON whatever the Content-Type (curl -d sends form encoding by default). */
export async function readJson(c: Context): Promise<unknown> {
  const bytes = await c.req.arrayBuffer(); // decoded strictly: JSON is UTF-8, and a lossy decode would alter the prompt
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError('invalid_json', 'The request body is not valid UTF-8.');
  }
  if (text.trim() === '') throw new ApiError('invalid_json', 'The request body is empty; send a JSON object.');
  const parsed = parseClientJson(text, 'request body');
  if (!parsed.ok) throw new ApiError('invalid_json', parsed.message);
  return parsed.value;
}

function requireObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('invalid_request', 'The request body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

/** choice i's seed: the request's own for choice 0, then a 32-bit mix of it and i (independent, reproducible). */
export function choiceSeed(seed: number, i: number): number {
  if (i === 0) return seed;
  let h = (seed ^ Math.imul(i, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Events of several streams as they come, tagged with the stream's index. */
async function* merged<T>(streams: readonly AsyncIterator<T, void>[]): AsyncGenerator<[number, T]> {
  const next = (i: number) => streams[i]!.next().then((r) => ({ i, r }));
  const pending = new Map(streams.map((_, i) => [i, next(i)] as const));
  while (pending.size > 0) {
    const { i, r } = await Promise.race(pending.values());
    if (r.done) {
      pending.delete(i);
      continue;
    }
    pending.set(i, next(i));
    yield [i, r.value];
  }
}

/** Reads a stream to its end (after an abort), so the engine's final event arrives and the runner records it. */
async function drain(stream: AsyncIterator<unknown, void>): Promise<void> {
  try {
    for (let r = await stream.next(); !r.done; r = await stream.next());
  } catch {
    /* already reported */
  }
}

/** POST /v1/completions and POST /v1/chat/completions, JSON or `stream: true` SSE. */
export function openaiRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const completionSchema = completionBodySchema(ctx.limits);
  const chatSchema = chatBodySchema(ctx.limits);

  const prepareCompletion = (body: unknown): Prepared => {
    const parsed = completionSchema.safeParse(requireObject(body));
    if (!parsed.success) throw ApiError.fromProblem(describeIssue(parsed.error, body));
    const b = parsed.data;
    const prompt = typeof b.prompt === 'string' ? b.prompt : b.prompt[0]!;
    return {
      input: { prompt },
      inputParam: 'prompt',
      params: b,
      stream: b.stream ?? false,
      includeUsage: b.stream_options?.include_usage ?? false,
      model: b.model ?? null,
      logprobs: b.logprobs ?? undefined,
      n: b.n ?? 1,
    };
  };
  const prepareChat = (body: unknown): Prepared => {
    const parsed = chatSchema.safeParse(requireObject(body));
    if (!parsed.success) throw ApiError.fromProblem(describeIssue(parsed.error, body));
    const b = parsed.data;
    return {
      input: { messages: b.messages },
      inputParam: 'messages',
      params: { ...b, max_tokens: b.max_completion_tokens ?? b.max_tokens },
      stream: b.stream ?? false,
      includeUsage: b.stream_options?.include_usage ?? false,
      model: b.model ?? null,
      logprobs: chatLogprobsCount(b),
      n: b.n ?? 1,
    };
  };

  const handle = async (c: Context<AppEnv>, kind: 'chat' | 'completion') => {
    const prepared = kind === 'chat' ? prepareChat(await readJson(c)) : prepareCompletion(await readJson(c));
    if (ctx.lifecycle.shuttingDown) throw new ApiError('shutting_down', 'The server is shutting down; retry on another instance.');
    const params = { ...prepared.params };
    // Asking for the draft model by name means draft mode (unless a mode is given explicitly).
    if (params.mode == null && prepared.model !== null && ctx.engine.ready && ctx.engine.info().draft?.id === prepared.model) {
      params.mode = 'draft';
    }
    const abort = linkedAbort(c.var.clientSignal);
    const id = newId(kind === 'chat' ? 'chatcmpl' : 'cmpl');
    const created = Math.floor(Date.now() / 1000);
    // n choices are n independent streams in the engine's batch; with a seed, choice i samples with seed_i, so a
    // seeded request is reproducible choice for choice (choice 0 keeps the seed itself).
    const reqs = Array.from({ length: prepared.n }, (_, i) =>
      toGenerateRequest(
        prepared.input,
        { ...params, ...(params.seed != null ? { seed: choiceSeed(params.seed, i) } : {}) },
        ctx.defaults,
        abort.signal,
        prepared.logprobs,
      ),
    );
    // Each choice is read ahead (see readAhead): n choices on a server with fewer free slots than n would otherwise
    // wait for each other forever.
    const streams = reqs.map((req, i) =>
      readAhead(
        ctx.runner.run(
          req,
          { id: prepared.n > 1 ? `${id}-${i}` : id, transport: 'http', endpoint: c.req.path, created },
          prepared.inputParam,
        ),
      ),
    );
    // The first events are awaited before any byte is sent, so refusals (429, 400 prompt_too_long, 503) keep their
    // status. If one choice is refused, the others are cancelled (and drained, so the engine ends them cleanly).
    const firsts = await Promise.allSettled(streams.map((s) => s.next()));
    const refused = firsts.find((f) => f.status === 'rejected');
    if (refused) {
      abort.abort(new Error('another choice was refused'));
      streams.forEach((s, i) => {
        if (firsts[i]!.status === 'fulfilled') void drain(s);
      });
      throw refused.reason;
    }
    const first = firsts.map((f) => (f as PromiseFulfilledResult<IteratorResult<EngineEvent, void>>).value);
    if (first.some((f) => f.done)) throw new ApiError('internal', 'a stream ended without events');
    const firstEvents = first.map((f) => f.value as EngineEvent);
    const head = firstEvents[0]!;
    const start: StartEvent | null = head.type === 'start' ? head : null;
    const mode = start?.mode ?? (reqs[0]!.mode === 'auto' ? 'speculative' : (reqs[0]!.mode as Mode)); // 'auto' unresolved: refused before routing
    const seed = start?.seed ?? null;
    let model = prepared.model ?? 'specd';
    try {
      model = ctx.runner.modelFor(mode);
    } catch {
      /* not loaded: keep the requested name */
    }
    const fmt = new OpenAIFormatter(kind, id, created, model, prepared.includeUsage);
    const logprobs = streams.map(() => new LogprobsCollector(kind));
    const dones: (DoneEvent | null)[] = streams.map(() => null);
    const seeds: (number | null)[] = firstEvents.map((ev) => (ev.type === 'start' ? ev.seed : null));

    if (!prepared.stream) {
      const collect = (i: number, ev: EngineEvent) => {
        if (ev.type === 'done') dones[i] = ev;
        else if (ev.type === 'tokens') logprobs[i]!.add(ev.tokens);
      };
      firstEvents.forEach((ev, i) => collect(i, ev));
      await Promise.all(
        streams.map(async (s, i) => {
          for await (const ev of s) collect(i, ev);
        }),
      );
      if (dones.some((d) => d === null)) throw new ApiError('internal', 'a stream ended without a done event');
      return c.json(
        fmt.response(
          dones.map((done, i) => ({ done: done!, logprobs: logprobs[i]!.take() })),
          mode,
          seed,
        ),
      );
    }

    return streamSSE(c, async (sse) => {
      sse.onAbort(() => abort.abort(new Error('client went away')));
      const send = (data: unknown) => sse.writeSSE({ data: JSON.stringify(data) });
      if (kind === 'chat') for (let i = 0; i < streams.length; i++) await send(fmt.roleChunk(i));
      const forward = async (i: number, ev: EngineEvent) => {
        if (ev.type === 'tokens') {
          logprobs[i]!.add(ev.tokens);
          if (ev.text !== '') await send(fmt.textChunk(ev.text, logprobs[i]!.take(), i));
        } else if (ev.type === 'done') {
          dones[i] = ev;
          await send(fmt.finishChunk(ev, mode, seeds[i] ?? null, logprobs[i]!.take(), i));
        }
      };
      try {
        for (const [i, ev] of firstEvents.entries()) await forward(i, ev);
        for await (const [i, ev] of merged(streams)) await forward(i, ev);
        if (prepared.includeUsage) await send(fmt.usageChunk(dones.filter((d): d is DoneEvent => d !== null)));
      } catch (err) {
        // Headers are gone: the stream's last word is an error event in OpenAI's envelope, then [DONE]. Caught
        // here rather than in streamSSE's onError, which would also write the raw exception message.
        ctx.logger.error({ err, id }, 'SSE stream failed');
        ctx.metrics.countError('internal');
        abort.abort(err);
        const e = new ApiError('internal', 'internal error while streaming this response; the server logged it.');
        await send(e.envelope()).catch(() => {});
        await Promise.all(streams.map(drain));
      }
      await sse.writeSSE({ data: '[DONE]' }).catch(() => {});
    });
  };

  app.post('/completions', (c) => handle(c, 'completion'));
  app.post('/chat/completions', (c) => handle(c, 'chat'));
  return app;
}
