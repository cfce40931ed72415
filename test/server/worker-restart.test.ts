/**
 * A model worker that dies inside a running server: its in-flight streams end at once with an error naming the
 * cause, /health and /ready say so while the engine restarts the worker and reloads the models, and then the same
 * process serves again, with the restart counted in /metrics.
 */
import { expect, it } from 'vitest';
import { describeWithModels } from '../helpers/models.ts';
import { metricValue, realEngineServer, until, WsClient } from './harness.ts';

describeWithModels('model worker crash', () => {
  const server = realEngineServer();

  it('ends in-flight streams with an error within 1 s, fails /health until the reload, then serves again', async () => {
    const h = server();
    const ws = await WsClient.open(h.wsUrl);
    ws.send({ type: 'generate', id: 'a', prompt: 'Once upon a time', max_tokens: 500, ignore_eos: true });
    ws.send({ type: 'generate', id: 'b', prompt: 'The dog ran', max_tokens: 500, ignore_eos: true, mode: 'target' });
    await ws.waitFor((f) => f.type === 'token' && 'id' in f && f.id === 'b', 30_000);
    const t0 = performance.now();
    h.engine.crashWorkerForTests();
    const [a, b] = await Promise.all([ws.final('a', 1_000), ws.final('b', 1_000)]);
    expect(performance.now() - t0).toBeLessThan(1_000);
    for (const f of [a, b]) {
      expect(f.type === 'done' ? f.finish_reason : f.type).toBe('error');
      expect(JSON.stringify(f)).toMatch(/model worker exited/);
    }

    const health = await fetch(`${h.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unhealthy', reason: expect.stringMatching(/model worker died/) });
    expect((await fetch(`${h.url}/ready`)).status).toBe(503);

    let healthy = false;
    void (async () => {
      while (!healthy) {
        healthy = (await fetch(`${h.url}/health`)).status === 200;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await until(() => healthy, 60_000, 'the worker to be back');
    expect((await fetch(`${h.url}/ready`)).status).toBe(200);
    ws.send({ type: 'generate', id: 'c', prompt: 'Once upon a time', max_tokens: 12, ignore_eos: true });
    const c = await ws.done('c');
    expect(c.usage.completion_tokens).toBe(12);
    expect(metricValue(await (await fetch(`${h.url}/metrics`)).text(), 'specd_worker_restarts_total')).toBe(1);
    await ws.close();
  }, 90_000);
});
