import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { DoneEvent, EngineEvent, StartEvent } from '../../engine/index.ts';
import { linkedAbort } from '../../lib/async.ts';
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
    const req = toGenerateRequest(prepared.input, params, ctx.defaults, abort.signal, prepared.logprobs);
    const id = newId(kind === 'chat' ? 'chatcmpl' : 'cmpl');
    const created = Math.floor(Date.now() / 1000);
    const events = ctx.runner.run(req, { id, transport: 'http', endpoint: c.req.path, created }, prepared.inputParam);
    // The first event is awaited before any byte is sent, so refusals (429, 400 prompt_too_long, 503) keep their status.
    const first = await events.next();
    if (first.done) throw new ApiError('internal', 'the stream ended without events');
    const start: StartEvent | null = first.value.type === 'start' ? first.value : null;
    const mode = start?.mode ?? (req.mode === 'auto' ? 'speculative' : req.mode); // 'auto' unresolved: refused before routing
    const seed = start?.seed ?? null;
    let model = prepared.model ?? 'specd';
    try {
      model = ctx.runner.modelFor(mode);
    } catch {
      /* not loaded: keep the requested name */
    }
    const fmt = new OpenAIFormatter(kind, id, created, model, prepared.includeUsage);
    const logprobs = new LogprobsCollector(kind);

    if (!prepared.stream) {
      let done: DoneEvent | null = first.value.type === 'done' ? first.value : null;
      for await (const ev of events) {
        if (ev.type === 'done') done = ev;
        else if (ev.type === 'tokens') logprobs.add(ev.tokens);
      }
      if (!done) throw new ApiError('internal', 'the stream ended without a done event');
      return c.json(fmt.response(done, mode, seed, logprobs.take()));
    }

    return streamSSE(c, async (sse) => {
      sse.onAbort(() => abort.abort(new Error('client went away')));
      const send = (data: unknown) => sse.writeSSE({ data: JSON.stringify(data) });
      if (kind === 'chat') await send(fmt.roleChunk());
      const forward = async (ev: EngineEvent) => {
        if (ev.type === 'tokens') {
          logprobs.add(ev.tokens);
          if (ev.text !== '') await send(fmt.textChunk(ev.text, logprobs.take()));
        } else if (ev.type === 'done') {
          await send(fmt.finishChunk(ev, mode, seed, logprobs.take()));
          if (prepared.includeUsage) await send(fmt.usageChunk(ev));
        }
      };
      try {
        await forward(first.value);
        for await (const ev of events) await forward(ev);
      } catch (err) {
        // Headers are gone: the stream's last word is an error event in OpenAI's envelope, then [DONE]. Caught
        // here rather than in streamSSE's onError, which would also write the raw exception message.
        ctx.logger.error({ err, id }, 'SSE stream failed');
        ctx.metrics.countError('internal');
        abort.abort(err);
        const e = new ApiError('internal', 'internal error while streaming this response; the server logged it.');
        await send(e.envelope()).catch(() => {});
      }
      await sse.writeSSE({ data: '[DONE]' }).catch(() => {});
    });
  };

  app.post('/completions', (c) => handle(c, 'completion'));
  app.post('/chat/completions', (c) => handle(c, 'chat'));
  return app;
}
