/**
 * Structure-aware hostile inputs (fast-check arbitraries) for every request schema: HTTP bodies for
 * /v1/completions and /v1/chat/completions, WebSocket `generate` and `cancel` frames. Each input starts from a
 * valid request and replaces, adds or duplicates fields with hostile JSON TEXT: values of any depth and width,
 * numbers at and beyond every limit (including ones JSON can write but a double cannot hold), strings with lone
 * surrogates and control characters, prototype keys, duplicated keys, nesting far past the server's cap.
 *
 * Inputs are built as text, never through JSON.stringify of a nested value: the generator itself must not
 * recurse over what it makes (a 1,000,000-deep array is a few string repeats here).
 *
 * Unlike fuzz-cases.ts, an input here may be valid: the judge accepts a served request or a structured error,
 * never a 5xx, an `internal` code, or no answer. Used by the property tests in `npm test` and by the load kit's
 * `fuzz` scenario.
 */
import fc from 'fast-check';
import { type ClientFrame, clientFrameSchema, limitsFor, parseClientJson } from '../../src/protocol/index.ts';
import { ERROR_TABLE, type ErrorCode } from '../../src/server/errors.ts';

export interface HostileLimits {
  maxCompletionTokens: number;
  maxK: number;
  maxPromptChars: number;
}

export interface HostileHttp {
  transport: 'http';
  path: '/v1/completions' | '/v1/chat/completions';
  body: string;
  label: string;
}

export interface HostileWs {
  transport: 'ws';
  frame: string;
  label: string;
  /** The id a generation started by this frame would carry, when the frame has a usable one. */
  id: string | null;
}

export type Hostile = HostileHttp | HostileWs;

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];
const SPECIAL_TEXT = ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<s>', '</s>', '<pad>', '<|im_start|>system\n'];
const NASTY_STRINGS = [
  '',
  ' ',
  '\uD800',
  '\uDFFF',
  'a\uDBFFb',
  '\uDC00\uD800',
  '\u0000',
  '\u0000\u0001\u001f',
  '\u001b[31mred',
  '\u2028\u2029',
  '\uFEFF',
  '\u202Eevil',
  '\r\n\r\n',
  '\\',
  '"',
  '%s%n',
  '{{template}}',
  '${x}',
  'null',
  'true',
  '1',
  ...SPECIAL_TEXT,
  ...PROTOTYPE_KEYS,
];
/** Number tokens as JSON text: at the schemas' limits, past them, and beyond what a double holds (1e400 parses to Infinity). */
function numberTokens(l: HostileLimits): string[] {
  const limits = [
    0,
    1,
    2,
    l.maxK,
    l.maxK + 1,
    l.maxCompletionTokens,
    l.maxCompletionTokens + 1,
    20,
    21,
    100,
    101,
    255,
    256,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53 - 1,
    600_000,
    600_001,
    l.maxPromptChars,
    l.maxPromptChars + 1,
  ];
  return [
    ...limits.flatMap((n) => [String(n), String(-n)]),
    '-0',
    '0.0',
    '1.0',
    '0.5',
    '1.0000000000000002',
    '0.9999999999999999',
    '2.0000001',
    '1e-7',
    '5e-324',
    '1.7976931348623157e308',
    '1e308',
    '1e309',
    '1e400',
    '-1e400',
    '1e-400',
    '9007199254740993',
    '123456789012345678901234567890',
    `1${'0'.repeat(400)}`,
    '1E2',
    '1e+2',
  ];
}

const quote = (s: string) => JSON.stringify(s);

/** Nesting past the server's cap, built by repetition (balanced or not, arrays, objects or both). */
export function deepText(depth: number, kind: 'array' | 'object' | 'mixed' | 'unclosed', inner = '1'): string {
  switch (kind) {
    case 'array':
      return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
    case 'object':
      return `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
    case 'mixed': {
      const half = Math.ceil(depth / 2);
      return `${'[{"x":'.repeat(half)}${inner}${'}]'.repeat(half)}`;
    }
    case 'unclosed':
      return '['.repeat(depth);
  }
}

export function arbitraries(l: HostileLimits, opts: { maxDeep?: number } = {}) {
  const maxDeep = opts.maxDeep ?? 1_000_000;
  const scalarText = fc.oneof(
    fc.constantFrom(...numberTokens(l)),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
    fc.integer().map(String),
    fc.constantFrom('true', 'false', 'null'),
    fc.constantFrom(...NASTY_STRINGS).map(quote),
    fc.string({ unit: 'binary', maxLength: 24 }).map(quote),
    fc.string({ unit: 'grapheme', maxLength: 24 }).map(quote),
  );
  const keyArb = fc.oneof(
    fc.constantFrom(...PROTOTYPE_KEYS, 'type', 'text', 'role', 'content', 'id'),
    fc.string({ unit: 'binary', maxLength: 12 }),
  );
  // Arbitrary JSON text of moderate depth and width (fast-check bounds the recursion of the generator itself).
  const { value: jsonText } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarText, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 6 }).map((xs) => `[${xs.join(',')}]`),
    object: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 6 }).map((kv) => `{${kv.map(([k, v]) => `${quote(k)}:${v}`).join(',')}}`),
  }));
  const deep = fc
    .record({
      depth: fc.oneof(
        fc.integer({ min: 60, max: 70 }),
        fc.integer({ min: 1, max: Math.min(maxDeep, 20_000) }),
        fc.constantFrom(5_000, 100_000, maxDeep),
      ),
      kind: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const, 'unclosed' as const),
      inner: scalarText,
    })
    .map(({ depth, kind, inner }) => deepText(Math.min(depth, maxDeep), kind, inner));
  const wide = fc
    .record({ n: fc.integer({ min: 1_000, max: 20_000 }), item: scalarText })
    .map(({ n, item }) => `[${Array.from({ length: n }, () => item).join(',')}]`);
  /** Any value a field may be set to. */
  const valueText = fc.oneof({ weight: 6, arbitrary: jsonText }, { weight: 1, arbitrary: deep }, { weight: 1, arbitrary: wide });

  const sampling = [
    'max_tokens',
    'temperature',
    'top_p',
    'top_k',
    'min_p',
    'repetition_penalty',
    'seed',
    'stop',
    'mode',
    'latency_budget',
    'k',
    'ignore_eos',
    'response_format',
  ];
  const openai = [
    'model',
    'stream',
    'stream_options',
    'n',
    'best_of',
    'logprobs',
    'top_logprobs',
    'presence_penalty',
    'frequency_penalty',
    'logit_bias',
    'echo',
    'suffix',
    'user',
    'metadata',
  ];
  const fieldsOf = {
    completion: ['prompt', ...sampling, ...openai],
    chat: ['messages', 'max_completion_tokens', 'tools', 'functions', ...sampling, ...openai],
    generate: ['type', 'id', 'prompt', 'messages', ...sampling],
    cancel: ['type', 'id'],
  } as const;

  const message = fc
    .record({
      role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'developer').map(quote), valueText),
      content: fc.oneof(
        fc.constantFrom(...NASTY_STRINGS).map(quote),
        fc.string({ unit: 'binary', maxLength: 40 }).map(quote),
        fc
          .array(fc.record({ type: fc.constantFrom('"text"', '"image_url"', '5'), text: scalarText }), { maxLength: 3 })
          .map((parts) => `[${parts.map((p) => `{"type":${p.type},"text":${p.text}}`).join(',')}]`),
        valueText,
      ),
      extraKey: fc.option(fc.tuple(keyArb, valueText), { nil: undefined }),
    })
    .map(
      ({ role, content, extraKey }) => `{"role":${role},"content":${content}${extraKey ? `,${quote(extraKey[0])}:${extraKey[1]}` : ''}}`,
    );
  const messagesText = fc.oneof(
    fc.array(message, { minLength: 0, maxLength: 4 }).map((ms) => `[${ms.join(',')}]`),
    valueText,
  );

  /**
   * response_format with a schema of JSON Schema's own keywords holding anything: most get past the wire schema to
   * XGrammar, whose verdict (and its aborts on what it cannot use) is what this reaches.
   */
  const schemaKeyword = fc.constantFrom(
    'type',
    'properties',
    'items',
    'enum',
    'required',
    '$ref',
    'pattern',
    'minimum',
    'maxLength',
    'anyOf',
    '$defs',
  );
  const schemaText = fc
    .array(fc.tuple(schemaKeyword, fc.oneof(valueText, fc.constantFrom('"object"', '"string"', '"array"', '"integer"', '"nope"'))), {
      maxLength: 4,
    })
    .map((kvs) => `{${kvs.map(([k, v]) => `${quote(k)}:${v}`).join(',')}}`);
  const responseFormatText = fc.oneof(
    schemaText.map((schema) => `{"type":"json_schema","json_schema":{"name":"f","schema":${schema}}}`),
    fc.constantFrom('{"type":"json_object"}', '{"type":"text"}', '{"type":"json_schema"}'),
    valueText,
  );
  /** A value for `field`: a type-appropriate one (often valid, sometimes at a limit) or anything at all. */
  const valueFor = (field: string): fc.Arbitrary<string> =>
    field === 'messages' ? messagesText : field === 'response_format' ? responseFormatText : valueText;

  type Entry = [key: string, valueText: string];
  /** A valid request's entries with 1..3 fields changed: replaced, added, duplicated (both kept) or removed. */
  const mutate = (base: Entry[], fields: readonly string[]) =>
    fc
      .array(
        fc
          .record({
            field: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...fields) }, { weight: 1, arbitrary: keyArb }),
            op: fc.constantFrom('replace' as const, 'replace' as const, 'duplicate' as const, 'remove' as const),
          })
          .chain(({ field, op }) => valueFor(field).map((v) => ({ field, op, v }))),
        { minLength: 1, maxLength: 3 },
      )
      .map((muts) => {
        let entries = [...base];
        for (const { field, op, v } of muts) {
          if (op === 'remove') entries = entries.filter(([k]) => k !== field);
          else if (op === 'duplicate') entries.push([field, v]);
          else entries = [...entries.filter(([k]) => k !== field), [field, v]];
        }
        const label = muts
          .map((m) => `${m.op} ${JSON.stringify(m.field).slice(0, 24)}=${m.v.slice(0, 32)}${m.v.length > 32 ? '…' : ''}`)
          .join('; ');
        return { text: `{${entries.map(([k, val]) => `${quote(k)}:${val}`).join(',')}}`, label, entries };
      });
  // max_tokens 1 in every base request: an input that turns out valid costs one token.
  const prompt = quote('Once upon a time');
  const completionBase: Entry[] = [
    ['prompt', prompt],
    ['max_tokens', '1'],
  ];
  const chatBase: Entry[] = [
    ['messages', `[{"role":"user","content":${prompt}}]`],
    ['max_tokens', '1'],
  ];

  const http: fc.Arbitrary<HostileHttp> = fc.oneof(
    mutate(completionBase, fieldsOf.completion).map((m) => ({
      transport: 'http' as const,
      path: '/v1/completions' as const,
      body: m.text,
      label: m.label,
    })),
    mutate(chatBase, fieldsOf.chat).map((m) => ({
      transport: 'http' as const,
      path: '/v1/chat/completions' as const,
      body: m.text,
      label: m.label,
    })),
    deep.map((t) => ({
      transport: 'http' as const,
      path: '/v1/completions' as const,
      body: t,
      label: `body ${t.slice(0, 12)}… (${t.length} B)`,
    })),
  );

  let seq = 0;
  const idOf = (entries: Entry[]): string | null => {
    const last = entries.filter(([k]) => k === 'id').at(-1);
    if (!last) return null;
    try {
      const v = JSON.parse(last[1]) as unknown;
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  };
  const wsFrame = (kind: 'generate' | 'cancel') =>
    fc.constant(null).chain(() => {
      const id = quote(`h${seq++}`);
      const base: Entry[] =
        kind === 'generate'
          ? [
              ['type', '"generate"'],
              ['id', id],
              ['prompt', prompt],
              ['max_tokens', '1'],
            ]
          : [
              ['type', '"cancel"'],
              ['id', id],
            ];
      return mutate(base, fieldsOf[kind]).map((m) => ({
        transport: 'ws' as const,
        frame: m.text,
        label: `${kind}: ${m.label}`,
        id: idOf(m.entries),
      }));
    });
  const ws: fc.Arbitrary<HostileWs> = fc.oneof(
    { weight: 6, arbitrary: wsFrame('generate') },
    { weight: 2, arbitrary: wsFrame('cancel') },
    {
      weight: 1,
      arbitrary: valueText.map((t) => ({
        transport: 'ws' as const,
        frame: t,
        label: `frame ${t.slice(0, 16)}… (${t.length} B)`,
        id: null,
      })),
    },
    {
      weight: 1,
      arbitrary: deep.map((t) => ({
        transport: 'ws' as const,
        frame: `{"type":"generate","id":"deep","prompt":${t}}`,
        label: `prompt ${t.slice(0, 12)}… (${t.length} B)`,
        id: null,
      })),
    },
  );
  return { http, ws, jsonText, deep };
}

// ── judging ─────────────────────────────────────────────────────────────────────────────────────────────────

export interface Judgement {
  ok: boolean;
  answer: string;
  why?: string;
}

/** A code of the server's error table. */
export function knownCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_TABLE, code);
}

/**
 * The one frame the protocol leaves unanswered: a valid `cancel` (of an id not in flight it is a no-op).
 * Decided with the protocol's own schema, so that the judges know when silence is the right answer.
 */
export function silentByDesign(l: HostileLimits & { maxPromptTokens: number }): (frame: string) => boolean {
  const schema = clientFrameSchema(limitsFor(l));
  return (frame) => {
    const p = parseClientJson(frame, 'frame');
    if (!p.ok) return false;
    const r = schema.safeParse(p.value);
    return r.success && (r.data as ClientFrame).type === 'cancel';
  };
}

/**
 * An HTTP answer is fine when it is a served completion (JSON or SSE) or an OpenAI error envelope with a 4xx
 * whose code, status and type agree with the error table.
 */
export function judgeHttp(status: number, contentType: string, text: string): Judgement {
  if (status >= 500) return { ok: false, answer: `${status}`, why: `server error: ${text.slice(0, 160)}` };
  if (status === 200 && contentType.includes('text/event-stream')) {
    const served = text.includes('data: [DONE]') && !text.includes('"error"');
    return served
      ? { ok: true, answer: '200 stream' }
      : { ok: false, answer: '200 stream', why: `stream did not end with [DONE]: ${text.slice(-160)}` };
  }
  let body: { error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown }; choices?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return { ok: false, answer: `${status} (not JSON)`, why: text.slice(0, 160) };
  }
  if (status === 200) return Array.isArray(body.choices) ? { ok: true, answer: '200' } : { ok: false, answer: '200', why: 'no choices' };
  const e = body.error;
  const answer = `${status} ${String(e?.code)}`;
  if (status < 400 || !e || typeof e.message !== 'string' || e.message === '' || typeof e.type !== 'string' || !('param' in e)) {
    return { ok: false, answer, why: `not an error envelope: ${text.slice(0, 160)}` };
  }
  if (!knownCode(e.code) || e.code === 'internal') return { ok: false, answer, why: `code ${String(e.code)}: ${e.message}` };
  const spec = ERROR_TABLE[e.code];
  if (spec.status !== status || spec.type !== e.type) {
    return { ok: false, answer, why: `status/type do not match the error table (${spec.status} ${spec.type})` };
  }
  return { ok: true, answer };
}

export interface WsFrameLike {
  type?: unknown;
  id?: unknown;
  code?: unknown;
  message?: unknown;
  finish_reason?: unknown;
}

/** The frames a hostile WebSocket frame got (the error frame, or start … done). */
export function judgeWs(frames: WsFrameLike[]): Judgement {
  const first = frames[0];
  if (!first) return { ok: false, answer: 'no answer' };
  if (first.type === 'error') {
    const answer = `error/${String(first.code)}`;
    if (!knownCode(first.code) || first.code === 'internal') return { ok: false, answer, why: String(first.message) };
    if (typeof first.message !== 'string' || first.message === '') return { ok: false, answer, why: 'no message' };
    return { ok: true, answer };
  }
  if (first.type === 'start' || first.type === 'done') {
    const done = frames.find((f) => f.type === 'done' || f.type === 'error');
    if (!done) return { ok: false, answer: 'start', why: 'no final frame' };
    if (done.type === 'error' || done.finish_reason === 'error')
      return { ok: false, answer: `start…${String(done.type)}`, why: JSON.stringify(done).slice(0, 160) };
    return { ok: true, answer: `served/${String(done.finish_reason)}` };
  }
  return { ok: false, answer: `frame ${String(first.type)}`, why: 'neither an error nor a generation' };
}
