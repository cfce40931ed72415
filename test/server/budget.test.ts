/** latency_budget / mode "auto" on the wire: invalid budgets are refused naming the parameter, valid ones pass. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, WsClient, type Harness } from './harness.ts';

describe('latency budgets', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(() => h.close());

  const post = (body: unknown) =>
    fetch(`${h.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it.each([
    ['negative', { latency_budget: { ttft_ms: -5 }, mode: 'auto' }],
    ['empty', { latency_budget: {}, mode: 'auto' }],
    ['not an object', { latency_budget: 'fast' }],
    ['unknown field', { latency_budget: { ttft: 100 } }],
    ['absurd', { latency_budget: { itl_ms: 1e9 } }],
    ['with a fixed mode', { latency_budget: { itl_ms: 10 }, mode: 'target' }],
  ])('400 for a %s budget, naming latency_budget', async (_, patch) => {
    const res = await post({ prompt: 'Once', max_tokens: 4, ...patch });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error.param).toMatch(/^latency_budget/);
  });

  it('accepts a valid budget, with or without mode "auto"', async () => {
    for (const patch of [
      { latency_budget: { ttft_ms: 500, itl_ms: 20 } },
      { mode: 'auto', latency_budget: { itl_ms: 20 } },
      { mode: 'auto' },
    ]) {
      expect((await post({ prompt: 'Once', max_tokens: 4, ...patch })).status).toBe(200);
    }
  });

  it('the socket answers a bad budget with an error frame and stays open', async () => {
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'x', prompt: 'Once', latency_budget: { ttft_ms: 0 } });
    const err = await ws.waitFor((f) => f.type === 'error');
    expect(err).toMatchObject({ id: 'x', code: 'invalid_request' });
    expect(JSON.stringify(err)).toContain('latency_budget');
    ws.send({ type: 'generate', id: 'y', prompt: 'Once', max_tokens: 3, mode: 'auto', latency_budget: { itl_ms: 50 } });
    expect((await ws.done('y')).finish_reason).toBeDefined();
    await ws.close();
  });
});
