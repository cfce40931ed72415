import { Hono } from 'hono';
import {
  describeIssue,
  detokenizeBodySchema,
  type DetokenizeResponse,
  tokenizeBodySchema,
  type TokenizeResponse,
} from '../../protocol/index.ts';
import type { ServerContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { readJson } from './openai.ts';
import type { AppEnv } from './types.ts';

/** POST /tokenize and POST /detokenize (vLLM's routes and shapes), with the engine's own tokenizer and template. */
export function tokenizeRoutes(ctx: ServerContext): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const tokenizeSchema = tokenizeBodySchema(ctx.limits);
  const detokenizeSchema = detokenizeBodySchema(ctx.limits);

  app.post('/tokenize', async (c) => {
    const body = await readJson(c);
    const parsed = tokenizeSchema.safeParse(body);
    if (!parsed.success) throw ApiError.fromProblem(describeIssue(parsed.error, body));
    const b = parsed.data;
    const input = b.prompt !== undefined ? { prompt: b.prompt } : { messages: b.messages! };
    const tokens = ctx.engine.tokenize(input, {
      ...(b.add_special_tokens != null ? { addSpecialTokens: b.add_special_tokens } : {}),
      ...(b.add_generation_prompt != null ? { addGenerationPrompt: b.add_generation_prompt } : {}),
    });
    return c.json({ count: tokens.length, max_model_len: ctx.engine.info().target.contextLength, tokens } satisfies TokenizeResponse);
  });

  app.post('/detokenize', async (c) => {
    const body = await readJson(c);
    const parsed = detokenizeSchema.safeParse(body);
    if (!parsed.success) throw ApiError.fromProblem(describeIssue(parsed.error, body));
    return c.json({ prompt: ctx.engine.detokenize(parsed.data.tokens) } satisfies DetokenizeResponse);
  });
  return app;
}
