import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/types.ts';
import { summarize } from '../../src/lib/stats.ts';
import { chatBodySchema, clientFrameSchema, completionBodySchema, describeIssue, limitsFor } from '../../src/protocol/index.ts';
import { ERROR_TABLE, toApiError } from '../../src/server/index.ts';
import { wireStats } from '../../src/server/stream-summary.ts';
import { toGenerateRequest } from '../../src/server/to-engine.ts';

const limits = limitsFor({ maxCompletionTokens: 512, maxK: 8, maxPromptTokens: 896 });
const defaults = { mode: 'speculative' as const, k: 'auto' as const, maxTokens: 512 };

describe('protocol', () => {
  it('maps a wire request onto the engine request with specd defaults (greedy)', () => {
    const frame = clientFrameSchema(limits).parse({ type: 'generate', id: 'a', prompt: 'hi', stop: 'END', seed: 3 });
    if (frame.type !== 'generate') throw new Error();
    const signal = new AbortController().signal;
    expect(toGenerateRequest({ prompt: 'hi' }, frame, defaults, signal)).toEqual({
      input: { prompt: 'hi' },
      maxTokens: 512,
      stop: ['END'],
      mode: 'speculative',
      k: 'auto',
      signal,
      sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1, seed: 3 },
    });
    const full = toGenerateRequest(
      { messages: [{ role: 'user', content: 'x' }] },
      {
        max_tokens: 5,
        temperature: 0.8,
        top_p: 0.9,
        top_k: 40,
        min_p: 0.05,
        repetition_penalty: 1.1,
        stop: ['a', 'b'],
        mode: 'target',
        k: 0,
        ignore_eos: true,
      },
      defaults,
    );
    expect(full).toEqual({
      input: { messages: [{ role: 'user', content: 'x' }] },
      maxTokens: 5,
      stop: ['a', 'b'],
      mode: 'target',
      k: 0,
      ignoreEos: true,
      sampling: { temperature: 0.8, topP: 0.9, topK: 40, minP: 0.05, repetitionPenalty: 1.1 },
    });
  });

  it('OpenAI bodies: nulls are absent, extras ignored, chat content parts joined, developer read as system', () => {
    const c = completionBodySchema(limits).parse({ model: 'x', prompt: ['one'], stop: null, seed: null, user: 'u', stream_options: null });
    expect(c.prompt).toEqual(['one']);
    const chat = chatBodySchema(limits).parse({
      messages: [
        { role: 'developer', content: 'sys' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
          name: 'n',
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'ab' },
    ]);
  });

  it('one message schema: a WebSocket generate frame takes developer and content parts as HTTP does', () => {
    const messages = [
      { role: 'developer', content: 'sys' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ];
    const frame = clientFrameSchema(limits).parse({ type: 'generate', id: 'g', messages });
    const body = chatBodySchema(limits).parse({ messages });
    expect(frame.type === 'generate' && frame.messages).toEqual(body.messages);
    const bad = clientFrameSchema(limits).safeParse({
      type: 'generate',
      id: 'g',
      messages: [{ role: 'user', content: [{ type: 'image' }] }],
    });
    expect(describeIssue(bad.error!, {})).toMatchObject({ param: 'messages[0].content' });
  });

  it('describes the first problem with the parameter path and the value given', () => {
    const body = {
      messages: [
        { role: 'user', content: 'x' },
        { role: 'bot', content: 'y' },
      ],
    };
    const r = chatBodySchema(limits).safeParse(body);
    expect(r.success).toBe(false);
    const p = describeIssue(r.error!, body);
    expect(p).toMatchObject({ code: 'invalid_request', param: 'messages[1].role' });
    expect(p.message).toContain('"bot"');
    const u = completionBodySchema(limits).safeParse({ prompt: 'x', best_of: 3 });
    expect(describeIssue(u.error!, {})).toMatchObject({ code: 'unsupported_parameter', param: 'best_of' });
    const strict = clientFrameSchema(limits).safeParse({ type: 'cancel', id: 'a', why: 1 });
    expect(describeIssue(strict.error!, {})).toMatchObject({ param: 'why', message: "Unrecognized parameter 'why'" });
  });

  it('one error table: every engine code has a status, overloaded carries Retry-After', () => {
    for (const code of ['prompt_too_long', 'invalid_request', 'overloaded', 'shutting_down', 'not_ready', 'internal'] as const) {
      expect(ERROR_TABLE[code].status).toBeGreaterThanOrEqual(400);
    }
    const over = toApiError(new EngineError('overloaded', 'busy', { retryAfterS: 2.5 }));
    expect(over.status).toBe(429);
    const res = over.toResponse();
    expect(res.headers.get('retry-after')).toBe('3');
    const long = toApiError(new EngineError('prompt_too_long', 'x', { promptTokens: 900, limit: 896 }), 'prompt');
    expect(long.envelope().error).toMatchObject({ param: 'prompt', code: 'prompt_too_long' });
    expect(long.message).toMatch(/900 tokens.*896/);
    expect(toApiError(new Error('boom'))).toMatchObject({ code: 'internal', status: 500 });
  });

  it('percentiles are exact nearest-rank over the per-stream gaps; 0-gaps of a step count as is', () => {
    expect(summarize([])).toEqual({ mean: 0, p50: 0, p95: 0, p99: 0, max: 0 });
    const gaps = [0, 0, 0, 30, 0, 0, 10, 0, 0, 0];
    expect(summarize(gaps)).toEqual({ mean: 4, p50: 0, p95: 30, p99: 30, max: 30 });
    const s = summarize(Array.from({ length: 100 }, (_, i) => i + 1));
    expect([s.p50, s.p95, s.p99, s.max]).toEqual([50, 95, 99, 100]);
    const w = wireStats({
      type: 'done',
      finishReason: 'stop',
      promptTokens: 3,
      completionTokens: 4,
      text: 'abcd',
      timings: {
        queueMs: 1,
        prefillMs: 2,
        ttftMs: 10,
        itlMs: [5, 0, 0],
        e2eMs: 20,
        decode: { draftMs: 0, draftPasses: 0, targetMs: 0, targetPasses: 0, targetTokens: 0 },
      },
      speculative: {
        drafts: 1,
        proposed: 3,
        accepted: 2,
        acceptanceRate: 2 / 3,
        meanAcceptedLength: 3,
        meanK: 3,
        rejections: 1,
        acceptedPerPosition: [1, 1],
      },
    });
    expect(w.timings).toEqual({
      queue_ms: 1,
      ttft_ms: 10,
      itl_ms: { mean: 1.667, p50: 0, p95: 5, p99: 5, max: 5 },
      e2e_ms: 20,
      tokens_per_second: 200,
    });
    expect(w.speculative).toEqual({ mean_k: 3, proposed: 3, accepted: 2, acceptance_rate: 0.6667, mean_accepted_length: 3 });
  });
});
