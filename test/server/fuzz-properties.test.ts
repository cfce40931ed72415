/**
 * Property-based tests over every request schema (completions body, chat body, WebSocket generate and cancel
 * frames): hostile JSON of any depth, width and size never gets a 5xx, an `internal` error, an unstructured
 * answer or no answer, and never stops the server from serving.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  arbitraries,
  type HostileHttp,
  type HostileWs,
  judgeHttp,
  judgeWs,
  silentByDesign,
  type WsFrameLike,
} from '../../load-tests/lib/hostile.ts';
import {
  chatBodySchema,
  clientFrameSchema,
  completionBodySchema,
  describeIssue,
  limitsFor,
  parseClientJson,
} from '../../src/protocol/index.ts';
import { type Harness, metricValue, startServer, WsClient } from './harness.ts';

const config = { maxCompletionTokens: 16, maxK: 8, maxPromptTokens: 896 };
const limits = limitsFor(config);
const hostileLimits = { maxCompletionTokens: config.maxCompletionTokens, maxK: config.maxK, maxPromptChars: limits.maxPromptChars };
// Deep inputs up to 100,000 levels here (the dedicated tests go to 1,000,000); bodies and frames up to 4 MiB.
const arbs = arbitraries(hostileLimits, { maxDeep: 100_000 });
const SEED = 20261201;

describe('schemas and error messages on hostile JSON', () => {
  const schemas = [
    ['completions body', completionBodySchema(limits)],
    ['chat body', chatBodySchema(limits)],
    ['WebSocket client frame', clientFrameSchema(limits)],
  ] as const;

  it.each(schemas)('%s: parse + validate + describe never throws and the message stays short', (_name, schema) => {
    const text = fc.oneof(
      arbs.jsonText,
      arbs.deep,
      arbs.http.map((h) => h.body),
      arbs.ws.map((w) => w.frame),
    );
    fc.assert(
      fc.property(text, (t) => {
        const parsed = parseClientJson(t, 'body');
        if (!parsed.ok) {
          expect(parsed.message.length).toBeLessThan(300);
          return;
        }
        const r = schema.safeParse(parsed.value);
        if (!r.success) {
          const problem = describeIssue(r.error, parsed.value);
          expect(problem.message.length).toBeLessThan(400);
        }
      }),
      { numRuns: 1500, seed: SEED },
    );
  });
});

describe('hostile requests against the server (fake engine)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({
      config: {
        maxCompletionTokens: config.maxCompletionTokens,
        maxBodyBytes: 4 * 1024 * 1024,
        wsMaxFrameBytes: 4 * 1024 * 1024,
        maxQueue: 256,
      },
      fake: { maxQueue: 256 },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const sendHttp = async (c: HostileHttp) => {
    const res = await fetch(`${h.url}${c.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: c.body });
    return judgeHttp(res.status, res.headers.get('content-type') ?? '', await res.text());
  };

  it('HTTP bodies: every answer is a served completion or a structured 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(arbs.http, async (c) => {
        const j = await sendHttp(c);
        expect(j.ok, `${c.path} ${c.label} → ${j.answer} ${j.why ?? ''}`).toBe(true);
      }),
      { numRuns: 600, seed: SEED },
    );
    const res = await fetch(`${h.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'still there?', max_tokens: 3 }) });
    expect(res.status).toBe(200);
    expect(metricValue(await (await fetch(`${h.url}/metrics`)).text(), 'specd_request_errors_total{code="internal"}')).toBeNull();
  });

  it('WebSocket frames: every frame gets an error frame or a whole generation, on a socket that stays open', async () => {
    const ws = await WsClient.open(h.wsUrl);
    // A valid cancel of an unknown id is a no-op with no answer (protocol.md); everything else is answered.
    const silent = silentByDesign({ ...hostileLimits, maxPromptTokens: config.maxPromptTokens });
    const answerTo = async (c: HostileWs): Promise<WsFrameLike[]> => {
      const before = ws.frames.length;
      ws.send(c.frame);
      const first = await ws.waitFor((_f) => ws.frames.length > before, 5000).then(() => ws.frames[before]!);
      if (first.type === 'start' && c.id !== null) await ws.final(c.id);
      return ws.frames.slice(before) as WsFrameLike[];
    };
    await fc.assert(
      fc.asyncProperty(arbs.ws, async (c) => {
        if (silent(c.frame)) {
          ws.send(c.frame);
          return;
        }
        const j = judgeWs(await answerTo(c));
        expect(j.ok, `${c.label} → ${j.answer} ${j.why ?? ''}`).toBe(true);
        expect(ws.closeCode).toBeNull();
      }),
      { numRuns: 600, seed: SEED },
    );
    ws.send({ type: 'generate', id: 'after', prompt: 'still there?', max_tokens: 3 });
    expect((await ws.done('after')).usage.completion_tokens).toBe(3);
    expect(ws.invalid).toEqual([]);
    await ws.close();
  });
});
