import { z } from 'zod';
import { previewValue } from './json.ts';

/**
 * Generation parameters shared by the WebSocket `generate` frame and the OpenAI bodies (snake_case, as on the
 * wire). Bounds that depend on the server's configuration come in through `Limits`, so schemas are built once
 * per server by the factories below. `null` counts as absent (OpenAI clients send explicit nulls).
 */
export interface Limits {
  maxCompletionTokens: number;
  maxK: number;
  /** Characters allowed in a prompt or in one message's content (tokens are checked by the engine). */
  maxPromptChars: number;
  /** Messages allowed in one chat request. */
  maxMessages: number;
}

/** Characters of prompt text allowed per prompt token before the engine is even asked (cheap early refusal). */
export const CHARS_PER_PROMPT_TOKEN = 64;
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_LENGTH = 64;
export const MAX_ID_LENGTH = 128;
/** OpenAI's limit on logit_bias entries. */
export const MAX_LOGIT_BIAS = 300;

export function limitsFor(config: { maxCompletionTokens: number; maxK: number; maxPromptTokens: number }): Limits {
  return {
    maxCompletionTokens: config.maxCompletionTokens,
    maxK: config.maxK,
    maxPromptChars: config.maxPromptTokens * CHARS_PER_PROMPT_TOKEN,
    maxMessages: 256,
  };
}

export const ModeSchema = z.enum(['speculative', 'target', 'draft']);
/** What a request may ask for: a mode, or "auto" (the router picks the most accurate mode that fits latency_budget). */
export const RequestedModeSchema = z.enum(['speculative', 'target', 'draft', 'auto']);

const budgetMs = z.number().positive('must be a positive number of milliseconds').max(600_000, 'must be ≤ 600000 ms');
export const LatencyBudgetSchema = z
  .object(
    {
      ttft_ms: budgetMs.optional(),
      /** Mean gap between tokens after the first. */
      itl_ms: budgetMs.optional(),
    },
    { invalid_type_error: 'must be an object {ttft_ms?, itl_ms?}' },
  )
  .strict()
  .refine((b) => b.ttft_ms !== undefined || b.itl_ms !== undefined, {
    message: 'must set ttft_ms, itl_ms or both',
  });

/** latency_budget only means something to the router: with an explicit mode it would be silently ignored. */
export function checkBudget(v: { mode?: string | null; latency_budget?: unknown }, ctx: z.RefinementCtx): void {
  if (v.latency_budget != null && v.mode != null && v.mode !== 'auto') {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['latency_budget'],
      message: `needs mode "auto" (the request asks for mode "${v.mode}")`,
    });
  }
}
export const RoleSchema = z.enum(['system', 'user', 'assistant']);

const stopString = z
  .string()
  .min(1, 'each stop sequence must be 1..64 characters')
  .max(MAX_STOP_LENGTH, 'each stop sequence must be 1..64 characters');
const uint32 = z
  .number()
  .int('must be an integer')
  .min(0, 'must be ≥ 0')
  .max(2 ** 32 - 1, 'must be ≤ 4294967295');

/** Characters of a response_format's JSON Schema (as JSON): a grammar, not a document. */
export const MAX_SCHEMA_CHARS = 32_768;

/**
 * OpenAI's response_format: free text, any JSON object, or JSON valid under a schema (json_schema.schema; its
 * name, description and strict are accepted and do not change anything: output is always held to the schema).
 */
export const ResponseFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }).passthrough(),
    z.object({ type: z.literal('json_object') }).passthrough(),
    z
      .object({
        type: z.literal('json_schema'),
        json_schema: z
          .object(
            {
              name: z.string().max(64, 'must be at most 64 characters').nullish(),
              description: z.string().nullish(),
              schema: z.record(z.unknown(), {
                invalid_type_error: 'must be a JSON Schema object',
                required_error: 'json_schema needs a schema (a JSON Schema object)',
              }),
              strict: z.boolean().nullish(),
            },
            {
              invalid_type_error: 'must be an object {name, schema, strict?}',
              required_error: 'json_schema needs json_schema: {name, schema}',
            },
          )
          .passthrough()
          .refine((j) => JSON.stringify(j.schema).length <= MAX_SCHEMA_CHARS, {
            message: `the schema must be at most ${MAX_SCHEMA_CHARS} characters as JSON`,
            path: ['schema'],
          }),
      })
      .passthrough(),
  ],
  { errorMap: () => ({ message: 'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {…}}' }) },
);
export type WireResponseFormat = z.infer<typeof ResponseFormatSchema>;

export function samplingShape(l: Limits) {
  return {
    max_tokens: z
      .number()
      .int('must be an integer')
      .min(1, 'must be ≥ 1')
      .max(l.maxCompletionTokens, `must be ≤ ${l.maxCompletionTokens} (this server's max completion tokens)`)
      .nullish(),
    temperature: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').nullish(),
    top_p: z.number().gt(0, 'must be in (0, 1]').max(1, 'must be in (0, 1]').nullish(),
    top_k: z.number().int('must be an integer').min(0, 'must be ≥ 0 (0 disables top-k)').nullish(),
    min_p: z.number().min(0, 'must be in [0, 1)').lt(1, 'must be in [0, 1)').nullish(),
    repetition_penalty: z.number().gt(0, 'must be in (0, 2]').max(2, 'must be in (0, 2]').nullish(),
    presence_penalty: z.number().min(-2, 'must be between -2 and 2').max(2, 'must be between -2 and 2').nullish(),
    frequency_penalty: z.number().min(-2, 'must be between -2 and 2').max(2, 'must be between -2 and 2').nullish(),
    /** Token id (as a JSON object key) → bias added to its logit, OpenAI's shape. */
    logit_bias: z
      .record(
        z.string().regex(/^(0|[1-9][0-9]{0,8})$/, 'keys must be token ids (non-negative integers)'),
        z.number().min(-100, 'biases must be between -100 and 100').max(100, 'biases must be between -100 and 100'),
        { invalid_type_error: 'must be an object mapping token ids to biases' },
      )
      .refine((b) => Object.keys(b).length <= MAX_LOGIT_BIAS, `at most ${MAX_LOGIT_BIAS} entries`)
      .nullish(),
    seed: uint32.nullish(),
    stop: z
      .union([stopString, z.array(stopString).max(MAX_STOP_SEQUENCES, `at most ${MAX_STOP_SEQUENCES} stop sequences`)], {
        errorMap: () => ({
          message: `must be a string or an array of up to ${MAX_STOP_SEQUENCES} strings of 1..${MAX_STOP_LENGTH} characters`,
        }),
      })
      .nullish(),
    mode: RequestedModeSchema.nullish(),
    latency_budget: LatencyBudgetSchema.nullish(),
    k: z
      .union([z.literal('auto'), z.number().int().min(0).max(l.maxK)], {
        errorMap: () => ({ message: `must be "auto" or an integer from 0 to ${l.maxK}` }),
      })
      .nullish(),
    /** vLLM's name: keep generating through end-of-sequence (fixed-length benchmarks). */
    ignore_eos: z.boolean().nullish(),
    response_format: ResponseFormatSchema.nullish(),
  };
}

/** Exactly one of `prompt` / `messages` (the WebSocket frame and /tokenize take either). */
export function checkOneInput(v: { prompt?: unknown; messages?: unknown }, ctx: z.RefinementCtx, what: string): void {
  const has = Number(v.prompt !== undefined) + Number(v.messages !== undefined);
  if (has !== 1) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [v.prompt !== undefined ? 'messages' : 'prompt'],
      message: has === 0 ? `${what} needs either prompt or messages` : 'give either prompt or messages, not both',
    });
  }
}

/** OpenAI's chat form of logprobs (also the WebSocket frame's): a switch, and 0–20 alternatives per token. */
export const MAX_TOP_LOGPROBS = 20;
export const chatLogprobsShape = {
  logprobs: z.boolean().nullish(),
  top_logprobs: z
    .number()
    .int('must be an integer')
    .min(0, `must be 0..${MAX_TOP_LOGPROBS}`)
    .max(MAX_TOP_LOGPROBS, `must be 0..${MAX_TOP_LOGPROBS}`)
    .nullish(),
};

/** top_logprobs means nothing without logprobs: true (OpenAI refuses it too). */
export function checkLogprobs(v: { logprobs?: boolean | null; top_logprobs?: number | null }, ctx: z.RefinementCtx): void {
  if (v.top_logprobs != null && v.top_logprobs > 0 && v.logprobs !== true) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['top_logprobs'], message: 'needs logprobs: true' });
  }
}

/** The engine's logprobs count from the chat form: undefined (off), else the alternatives wanted. */
export function chatLogprobsCount(v: { logprobs?: boolean | null; top_logprobs?: number | null }): number | undefined {
  return v.logprobs === true ? (v.top_logprobs ?? 0) : undefined;
}

export function promptSchema(l: Limits) {
  return z.string().min(1, 'must be a non-empty string').max(l.maxPromptChars, `must be at most ${l.maxPromptChars} characters`);
}

const TextPartSchema = z.object({ type: z.literal('text'), text: z.string() });

/**
 * One chat message, the same on HTTP and WebSocket: OpenAI's roles (`developer`, its newer name for the system
 * role, is read as `system`) and content as a string or as text parts, which are joined.
 */
export function messageSchema(l: Limits) {
  const content = z.union(
    [
      z.string().max(l.maxPromptChars, `must be at most ${l.maxPromptChars} characters`),
      z
        .array(TextPartSchema)
        .transform((parts) => parts.map((p) => p.text).join(''))
        .pipe(z.string().max(l.maxPromptChars, `its text parts must add up to at most ${l.maxPromptChars} characters`)),
    ],
    { errorMap: () => ({ message: 'must be a string or an array of {"type": "text", "text": …} parts' }) },
  );
  const role = z.union([RoleSchema, z.literal('developer').transform(() => 'system' as const)], {
    errorMap: () => ({ message: 'must be one of system, user, assistant (or developer, read as system)' }),
  });
  return z.object({ role, content });
}

export function messagesSchema(l: Limits) {
  return z.array(messageSchema(l)).min(1, 'must be a non-empty array').max(l.maxMessages, `at most ${l.maxMessages} messages`);
}

/** The wire parameters after validation (both transports). */
export type WireSampling = z.infer<z.ZodObject<ReturnType<typeof samplingShape>>>;
export type WireMessage = z.output<ReturnType<typeof messageSchema>>;

/** Where in a body a validation problem is, as OpenAI names it: `messages[0].role`. */
export function paramPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

export interface ParamProblem {
  /** `invalid_request`, or `unsupported_parameter` for a known OpenAI parameter specd does not implement. */
  code: 'invalid_request' | 'unsupported_parameter';
  param: string | null;
  message: string;
}

function valueAt(input: unknown, path: readonly (string | number)[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** The first zod issue as a message that names the parameter and quotes the value given. */
export function describeIssue(error: z.ZodError, input: unknown): ParamProblem {
  const issue = error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const param = path.length > 0 ? paramPath(path) : null;
  const code = issue.code === 'custom' && issue.params?.['unsupported'] ? 'unsupported_parameter' : 'invalid_request';
  if (issue.code === 'unrecognized_keys') {
    return { code, param, message: `Unrecognized parameter '${param}'` };
  }
  const given = valueAt(input, issue.path);
  const quoted = given === undefined ? '' : ` (got ${previewValue(given)})`;
  const message =
    issue.code === 'invalid_type' && issue.received === 'undefined'
      ? `Missing required parameter '${param}'`
      : param
        ? `Invalid '${param}': ${issue.message}${quoted}`
        : `Invalid request: ${issue.message}`;
  return { code, param, message };
}
