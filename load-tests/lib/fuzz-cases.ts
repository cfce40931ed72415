/**
 * Malformed inputs for the fuzz scenario. Every case is invalid by construction (the server must answer it with a
 * structured error, never start a generation); variants are produced deterministically from a seed, so a failing
 * input can be reproduced from its index.
 *
 * HTTP cases are (method, path, body bytes); WebSocket cases are frames (text, binary or raw bytes sent as text).
 */

export type Category =
  | 'bad-json'
  | 'wrong-types'
  | 'huge-numbers'
  | 'negative-nan'
  | 'unknown-frames'
  | 'binary-frames'
  | 'oversized'
  | 'invalid-utf8'
  | 'prompt-length'
  | 'unsupported'
  | 'routes'
  | 'duplicate-id';

export interface Limits {
  maxPromptTokens: number;
  maxPromptChars: number;
  maxBodyBytes: number;
  wsMaxFrameBytes: number;
  maxCompletionTokens: number;
  maxK: number;
}

export interface HttpCase {
  transport: 'http';
  category: Category;
  label: string;
  method: string;
  path: string;
  body?: Buffer;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
}

export interface WsCase {
  transport: 'ws';
  category: Category;
  label: string;
  data: Buffer;
  binary: boolean;
  /** The answer: an error frame (carrying `id` when the frame had a usable string id) or a close code. */
  expect: { error: true; id?: string } | { close: number };
  /** duplicate-id: a valid generation with this id is started first. */
  duplicateOf?: string;
}

export type FuzzCase = HttpCase | WsCase;

const enc = (s: string) => Buffer.from(s, 'utf8');
/** JSON with raw (non-JSON) tokens spliced in: `$RAW` placeholders are replaced after stringify. */
function rawJson(obj: Record<string, unknown>, raw: Record<string, string>): string {
  let s = JSON.stringify(obj);
  for (const [k, v] of Object.entries(raw)) s = s.replace(JSON.stringify(`$${k}`), v);
  return s;
}

const BASE_PROMPT = 'Once upon a time';
/** Field values that fail validation for type reasons. */
const WRONG_TYPES: [string, unknown][] = [
  ['prompt', 123],
  ['prompt', true],
  ['prompt', {}],
  ['prompt', [1, 2, 3]],
  ['prompt', []],
  ['prompt', ['a', 'b']],
  ['prompt', [['x']]],
  ['prompt', null],
  ['max_tokens', '16'],
  ['max_tokens', 1.5],
  ['max_tokens', true],
  ['max_tokens', []],
  ['max_tokens', {}],
  ['temperature', 'hot'],
  ['temperature', []],
  ['temperature', true],
  ['top_p', '1'],
  ['top_p', {}],
  ['top_k', 1.5],
  ['top_k', '5'],
  ['min_p', 'x'],
  ['repetition_penalty', []],
  ['seed', 1.5],
  ['seed', '42'],
  ['stop', 123],
  ['stop', [1]],
  ['stop', ['']],
  ['stop', ['a', 'b', 'c', 'd', 'e']],
  ['stop', 'x'.repeat(65)],
  ['stop', [{}]],
  ['mode', 'fast'],
  ['mode', 1],
  ['k', 'many'],
  ['k', 1.5],
  ['k', -1],
  ['k', 9_999],
  ['ignore_eos', 'yes'],
  ['ignore_eos', 1],
  ['latency_budget', 5],
  ['latency_budget', {}],
  ['latency_budget', { ttft_ms: 'soon' }],
];
const HTTP_ONLY_WRONG: [string, unknown][] = [
  ['stream', 'true'],
  ['stream', 1],
  ['stream_options', 'x'],
  ['stream_options', { include_usage: 'yes' }],
];
const HUGE: [string, string][] = [
  ['max_tokens', '1e308'],
  ['max_tokens', '9007199254740993'],
  ['max_tokens', '1e999'],
  ['max_tokens', '123456789012345678901234567890'],
  ['temperature', '1e308'],
  ['temperature', '1e999'],
  ['top_p', '1e10'],
  ['min_p', '1e5'],
  ['repetition_penalty', '1e300'],
  ['seed', '4294967296'],
  ['seed', '1e20'],
  ['seed', '1e999'],
  ['k', '1e9'],
  ['top_k', '1e999'],
  ['max_tokens', '1' + '0'.repeat(400)],
];
const NEGATIVE: [string, string][] = [
  ['max_tokens', '-1'],
  ['max_tokens', '0'],
  ['max_tokens', '-0'],
  ['max_tokens', '-1e999'],
  ['temperature', '-0.1'],
  ['temperature', '-1e999'],
  ['top_p', '-1'],
  ['top_p', '0'],
  ['top_k', '-5'],
  ['min_p', '-0.5'],
  ['repetition_penalty', '-1'],
  ['repetition_penalty', '0'],
  ['seed', '-1'],
  ['k', '-2'],
];
/** NaN and infinities cannot be written in JSON: as literals they make the body invalid JSON, as strings a wrong type. */
const NAN_LITERALS = ['NaN', '-NaN', 'Infinity', '-Infinity', 'undefined', '+1', '0x10', '.5', '01'];
const NAN_STRINGS = ['NaN', 'Infinity', '-Infinity', ''];
const BAD_JSON = [
  '',
  ' ',
  '{',
  '}',
  '{"prompt": "x"',
  '{"prompt": "x",}',
  "{'prompt': 'x'}",
  '{"prompt": "x"} trailing',
  '{"prompt": x}',
  '{prompt: "x"}',
  '{"prompt": "x\n"}',
  '{"prompt": "\\x41"}',
  '{"prompt": "\\u12"}',
  '{"a":1}{"b":2}',
  '\u0000',
  '['.repeat(5000),
  '{"prompt": "x", "max_tokens": 1 2}',
  '{"prompt" "x"}',
  '/* c */ {"prompt": "x"}',
];
const NON_OBJECT_JSON = ['null', '[]', '"prompt"', '123', 'true', '[{"prompt": "x"}]'];
/** Byte sequences that are not UTF-8. */
const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf],
  [0xe2, 0x82],
  [0x80],
  [0xed, 0xa0, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xc3, 0x28],
  [0xf0, 0x9f, 0x98],
];

function variants<T>(list: readonly T[], i: number): T {
  return list[i % list.length]!;
}

export class CaseFactory {
  private n = 0;
  constructor(private readonly l: Limits) {}

  private body(obj: Record<string, unknown>): Buffer {
    return enc(JSON.stringify(obj));
  }

  /** The i-th HTTP case of a category. */
  http(category: Category, i: number): HttpCase {
    const l = this.l;
    const chat = i % 3 === 2;
    const path = chat ? '/v1/chat/completions' : '/v1/completions';
    const base: Record<string, unknown> = chat
      ? { messages: [{ role: 'user', content: BASE_PROMPT }], max_tokens: 4 }
      : { prompt: BASE_PROMPT, max_tokens: 4 };
    const post = (label: string, body: Buffer, p = path): HttpCase => ({
      transport: 'http',
      category,
      label,
      method: 'POST',
      path: p,
      body,
    });
    switch (category) {
      case 'bad-json': {
        const all = [...BAD_JSON, ...NON_OBJECT_JSON];
        const s = variants(all, i);
        return post(`bad JSON ${JSON.stringify(s.slice(0, 24))}`, enc(s));
      }
      case 'wrong-types': {
        const [field, value] = variants([...WRONG_TYPES, ...HTTP_ONLY_WRONG], i);
        if (chat && field === 'prompt') {
          const bad = variants<unknown>(
            [
              'hi',
              [],
              [{ role: 'robot', content: 'x' }],
              [{ role: 'user' }],
              [{ role: 'user', content: 5 }],
              [{ content: 'x' }],
              {},
              [{ role: 'user', content: [{ type: 'image', url: 'x' }] }],
              null,
            ],
            i,
          );
          return post(`messages = ${JSON.stringify(bad)}`, this.body({ ...base, messages: bad }));
        }
        return post(`${field} = ${JSON.stringify(value)?.slice(0, 40)}`, this.body({ ...base, [field]: value }));
      }
      case 'huge-numbers': {
        const [field, raw] = variants(HUGE, i);
        return post(`${field} = ${raw.slice(0, 30)}`, enc(rawJson({ ...base, [field]: '$V' }, { V: raw })));
      }
      case 'negative-nan': {
        const k = i % 3;
        if (k === 0) {
          const [field, raw] = variants(NEGATIVE, i);
          return post(`${field} = ${raw}`, enc(rawJson({ ...base, [field]: '$V' }, { V: raw })));
        }
        const field = variants(['max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'seed'], i);
        if (k === 1) {
          const lit = variants(NAN_LITERALS, i);
          return post(`${field} = ${lit} (literal)`, enc(rawJson({ ...base, [field]: '$V' }, { V: lit })));
        }
        const str = variants(NAN_STRINGS, i);
        return post(`${field} = "${str}"`, this.body({ ...base, [field]: str }));
      }
      case 'oversized': {
        const filler = 'a'.repeat(l.maxBodyBytes + 16 + (i % 7) * 1024);
        const c: HttpCase = post(
          `body over --max-body-bytes (${filler.length} B)`,
          this.body({ ...base, prompt: filler }),
          '/v1/completions',
        );
        if (i % 2 === 1) {
          c.chunked = true;
          c.label += ', chunked';
        }
        return c;
      }
      case 'invalid-utf8': {
        const bytes = Buffer.from(variants(BAD_UTF8, i));
        const where = i % 3;
        const json = JSON.stringify(base);
        if (where === 0) {
          // Inside the prompt / content string.
          const at = json.indexOf(BASE_PROMPT) + 4;
          return post(
            `invalid UTF-8 ${bytes.toString('hex')} in the prompt`,
            Buffer.concat([enc(json.slice(0, at)), bytes, enc(json.slice(at))]),
          );
        }
        if (where === 1) {
          // Inside a key.
          const at = json.indexOf('max_tokens') + 3;
          return post(
            `invalid UTF-8 ${bytes.toString('hex')} in a key`,
            Buffer.concat([enc(json.slice(0, at)), bytes, enc(json.slice(at))]),
          );
        }
        return post(`invalid UTF-8 ${bytes.toString('hex')} outside strings`, Buffer.concat([bytes, enc(json)]));
      }
      case 'prompt-length': {
        const k = i % 6;
        const tooManyTokens = 'hello '.repeat(l.maxPromptTokens * 2);
        if (chat) {
          const content = [
            '', // empty messages list is below
            'x'.repeat(l.maxPromptChars + 1),
            tooManyTokens,
          ];
          if (k % 3 === 0) return post('messages = []', this.body({ ...base, messages: [] }));
          if (k % 3 === 1)
            return post(
              `message content of ${l.maxPromptChars + 1} chars`,
              this.body({ ...base, messages: [{ role: 'user', content: content[1] }] }),
            );
          return post(
            `message content of ~${l.maxPromptTokens * 2} tokens`,
            this.body({ ...base, messages: [{ role: 'user', content: content[2] }] }),
          );
        }
        const prompts = [
          '',
          'x'.repeat(l.maxPromptChars + 1),
          'a'.repeat(l.maxPromptChars),
          tooManyTokens,
          [''],
          ['x'.repeat(l.maxPromptChars + 1)],
        ];
        const pr = prompts[k]!;
        const len = Array.isArray(pr) ? `[${pr[0]!.length} chars]` : `${pr.length} chars`;
        return post(`prompt of ${len}`, this.body({ ...base, prompt: pr }));
      }
      case 'unsupported': {
        // OpenAI parameters specd refuses, and supported ones given a value outside what they accept.
        const list: [string, unknown][] = chat
          ? [
              ['n', 17],
              ['logprobs', 'yes'],
              ['top_logprobs', 3], // without logprobs: true
              ['presence_penalty', 2.5],
              ['frequency_penalty', -3],
              ['logit_bias', { one: 5 }],
              ['tools', [{ type: 'function' }]],
              ['functions', [{}]],
              ['response_format', { type: 'yaml' }],
              ['response_format', { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } }],
            ]
          : [
              ['n', 0],
              ['best_of', 2],
              ['echo', true],
              ['suffix', 'end'],
              ['logprobs', 6],
              ['presence_penalty', 9],
              ['logit_bias', { 50256: -100 }], // outside the bundled vocabulary
            ];
        const [field, value] = variants(list, i);
        return post(`unsupported ${field} = ${JSON.stringify(value)}`, this.body({ ...base, [field]: value }));
      }
      case 'routes': {
        const routes: [string, string, string | undefined][] = [
          ['GET', '/v1/completions', undefined],
          ['PUT', '/v1/chat/completions', JSON.stringify(base)],
          ['POST', '/v1/nothing', '{}'],
          ['POST', '/v1/models', '{}'],
          ['DELETE', '/v1/streams/recent', undefined],
          ['GET', '/v1/streams/recent?limit=-1', undefined],
          ['GET', '/v1/streams/recent?limit=abc', undefined],
          ['GET', '/v1/streams/recent?limit=0', undefined],
          ['GET', '/v1/streams/recent?limit=1e999', undefined],
          ['GET', '/v2/completions', undefined],
          ['POST', '/v1/completions/', JSON.stringify(base)],
          ['GET', '/%', undefined],
          ['GET', `/${'a'.repeat(4000)}`, undefined],
        ];
        const [method, p, b] = variants(routes, i);
        return {
          transport: 'http',
          category,
          label: `${method} ${p.slice(0, 40)}`,
          method,
          path: p,
          ...(b !== undefined ? { body: enc(b) } : {}),
        };
      }
      default:
        throw new Error(`no HTTP cases for ${category}`);
    }
  }

  /** The i-th WebSocket case of a category. */
  ws(category: Category, i: number): WsCase {
    const l = this.l;
    const id = `f${this.n++}`;
    const base = { type: 'generate', id, prompt: BASE_PROMPT, max_tokens: 4 };
    /** expectId null: the frame has no usable id, so the error frame need not carry one. */
    const text = (label: string, s: string | Buffer, expectId: string | null = id): WsCase => ({
      transport: 'ws',
      category,
      label,
      data: typeof s === 'string' ? enc(s) : s,
      binary: false,
      expect: expectId === null ? { error: true } : { error: true, id: expectId },
    });
    const frame = (label: string, obj: Record<string, unknown>) => text(label, JSON.stringify(obj));
    switch (category) {
      case 'bad-json': {
        const s = variants([...BAD_JSON, '{"type": "generate", "id": "x", "max_tokens": NaN}'], i);
        return text(`bad JSON ${JSON.stringify(s.slice(0, 24))}`, s, null);
      }
      case 'unknown-frames': {
        const frames: [string, string | null][] = [
          ['{}', null],
          ['{"type":"foo"}', null],
          ['{"type":5}', null],
          ['[]', null],
          ['null', null],
          ['"generate"', null],
          ['42', null],
          ['true', null],
          ['{"type":"GENERATE"}', null],
          [`{"type":"start","id":"${id}"}`, id],
          [`{"type":"token","id":"${id}","tokens":[]}`, id],
          [`{"type":"done","id":"${id}"}`, id],
          ['{"type":"cancel"}', null],
          ['{"type":"cancel","id":5}', null],
          [`{"type":"cancel","id":"${id}","extra":1}`, id],
          ['{"type":null}', null],
          ['{"type":["generate"]}', null],
        ];
        const [s, eid] = variants(frames, i);
        return text(`frame ${s.slice(0, 40)}`, s, eid);
      }
      case 'wrong-types': {
        const idCases: [string, unknown][] = [
          ['id', 5],
          ['id', ''],
          ['id', 'x'.repeat(129)],
          ['id', null],
          ['id', ['a']],
        ];
        if (i % 8 === 0) {
          const [, v] = variants(idCases, i >> 3);
          return text(`id = ${JSON.stringify(v)?.slice(0, 30)}`, JSON.stringify({ ...base, id: v }), null);
        }
        if (i % 8 === 1) return frame('unknown field "foo"', { ...base, foo: 1 });
        if (i % 8 === 2) return frame('both prompt and messages', { ...base, messages: [{ role: 'user', content: 'x' }] });
        if (i % 8 === 3) {
          const { prompt: _p, ...rest } = base;
          return frame('neither prompt nor messages', rest);
        }
        const [field, value] = variants(WRONG_TYPES, i);
        if (field === 'prompt' && value === null) return frame('prompt = null', { ...base, prompt: null });
        return frame(`${field} = ${JSON.stringify(value)?.slice(0, 40)}`, { ...base, [field]: value });
      }
      case 'huge-numbers': {
        const [field, raw] = variants(HUGE, i);
        return text(`${field} = ${raw.slice(0, 30)}`, rawJson({ ...base, [field]: '$V' }, { V: raw }));
      }
      case 'negative-nan': {
        const k = i % 3;
        if (k === 0) {
          const [field, raw] = variants(NEGATIVE, i);
          return text(`${field} = ${raw}`, rawJson({ ...base, [field]: '$V' }, { V: raw }));
        }
        const field = variants(['max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'seed'], i);
        if (k === 1) {
          const lit = variants(NAN_LITERALS, i);
          return text(`${field} = ${lit} (literal)`, rawJson({ ...base, [field]: '$V' }, { V: lit }), null);
        }
        return frame(`${field} = "${variants(NAN_STRINGS, i)}"`, { ...base, [field]: variants(NAN_STRINGS, i) });
      }
      case 'binary-frames': {
        const k = i % 3;
        const data =
          k === 0
            ? enc(JSON.stringify(base))
            : k === 1
              ? Buffer.alloc(0)
              : Buffer.from(Array.from({ length: 1 + (i % 97) }, (_, j) => (j * 31 + i) & 0xff));
        return {
          transport: 'ws',
          category,
          label: `binary frame of ${data.length} B${k === 0 ? ' (a valid generate as binary)' : ''}`,
          data,
          binary: true,
          expect: { error: true },
        };
      }
      case 'oversized': {
        const filler = 'a'.repeat(l.wsMaxFrameBytes + 1 + (i % 5) * 1024);
        return {
          transport: 'ws',
          category,
          label: `text frame over --ws-max-frame-bytes (${filler.length} B)`,
          data: enc(JSON.stringify({ ...base, prompt: filler })),
          binary: i % 4 === 3,
          expect: { close: 1009 },
        };
      }
      case 'invalid-utf8': {
        const bytes = Buffer.from(variants(BAD_UTF8, i));
        const json = JSON.stringify(base);
        const at = json.indexOf(BASE_PROMPT) + 4;
        // RFC 6455: a text frame that is not UTF-8 fails the connection with 1007.
        return {
          transport: 'ws',
          category,
          label: `text frame with invalid UTF-8 ${bytes.toString('hex')}`,
          data: Buffer.concat([enc(json.slice(0, at)), bytes, enc(json.slice(at))]),
          binary: false,
          expect: { close: 1007 },
        };
      }
      case 'prompt-length': {
        const k = i % 6;
        const prompts: [string, unknown][] = [
          ['prompt ""', { ...base, prompt: '' }],
          [`prompt of ${l.maxPromptChars + 1} chars`, { ...base, prompt: 'x'.repeat(l.maxPromptChars + 1) }],
          [`prompt of ${l.maxPromptChars} chars (over the token limit)`, { ...base, prompt: 'a'.repeat(l.maxPromptChars) }],
          [`prompt of ~${l.maxPromptTokens * 2} tokens`, { ...base, prompt: 'hello '.repeat(l.maxPromptTokens * 2) }],
          ['messages []', { type: 'generate', id, messages: [], max_tokens: 4 }],
          [
            `message of ~${l.maxPromptTokens * 2} tokens`,
            { type: 'generate', id, messages: [{ role: 'user', content: 'hello '.repeat(l.maxPromptTokens * 2) }], max_tokens: 4 },
          ],
        ];
        const [label, obj] = prompts[k]!;
        return frame(label, obj as Record<string, unknown>);
      }
      case 'duplicate-id':
        return {
          transport: 'ws',
          category,
          label: 'generate with an id already in flight',
          data: enc(JSON.stringify({ ...base, max_tokens: 64, ignore_eos: true })),
          binary: false,
          expect: { error: true, id },
          duplicateOf: id,
        };
      default:
        throw new Error(`no WebSocket cases for ${category}`);
    }
  }
}

/** How the inputs are spread over categories (relative weights). */
export const HTTP_MIX: [Category, number][] = [
  ['bad-json', 3],
  ['wrong-types', 4],
  ['huge-numbers', 2],
  ['negative-nan', 2],
  ['invalid-utf8', 2],
  ['prompt-length', 2],
  ['unsupported', 1],
  ['routes', 1],
  ['oversized', 1],
];
export const WS_MIX: [Category, number][] = [
  ['bad-json', 3],
  ['unknown-frames', 2],
  ['wrong-types', 4],
  ['huge-numbers', 2],
  ['negative-nan', 2],
  ['binary-frames', 1],
  ['invalid-utf8', 1],
  ['prompt-length', 2],
  ['oversized', 1],
  ['duplicate-id', 1],
];

/** Category of input i under a weighted mix, interleaved so every batch covers every category. */
export function categoryAt(mix: [Category, number][], i: number): { category: Category; nth: number } {
  const total = mix.reduce((a, [, w]) => a + w, 0);
  const round = Math.floor(i / total);
  let slot = i % total;
  for (const [category, w] of mix) {
    if (slot < w) return { category, nth: round * w + slot };
    slot -= w;
  }
  throw new Error('unreachable');
}
