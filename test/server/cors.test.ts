/** --cors-origins: Hono's CORS middleware on HTTP, the same list checked against a WebSocket's Origin. */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type Harness, startServer, WsClient } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const preflight = (url: string, origin: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

/** The HTTP status a WebSocket upgrade from `origin` is answered with (101 when it opens). */
function upgradeStatus(wsUrl: string, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, origin ? { origin } : {});
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

describe('CORS', () => {
  it('answers a preflight from a listed origin, refuses one from another, and labels responses for the listed one', async () => {
    h = await startServer({ config: { corsOrigins: 'https://app.example, https://other.example', apiKey: 'k' } });
    const ok = await preflight(h.url, 'https://app.example');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');

    const refused = await preflight(h.url, 'https://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({ code: 'forbidden_origin', type: 'permission_error' });

    // The actual request: success and errors alike carry the header, so the page can read why it failed.
    const models = await fetch(`${h.url}/v1/models`, { headers: { origin: 'https://other.example', authorization: 'Bearer k' } });
    expect(models.status).toBe(200);
    expect(models.headers.get('access-control-allow-origin')).toBe('https://other.example');
    const unauthorized = await fetch(`${h.url}/v1/models`, { headers: { origin: 'https://app.example' } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const foreign = await fetch(`${h.url}/v1/models`, { headers: { origin: 'https://evil.example', authorization: 'Bearer k' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('"*" allows any origin; without the flag there is no CORS at all (a preflight is not a route)', async () => {
    h = await startServer({ config: { corsOrigins: '*' } });
    const any = await preflight(h.url, 'https://anything.example');
    expect(any.status).toBe(204);
    expect(any.headers.get('access-control-allow-origin')).toBe('*');
    await h.close();
    h = await startServer();
    const none = await preflight(h.url, 'https://app.example');
    expect(none.status).toBe(404);
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('checks a WebSocket Origin against the same list: listed, same-origin and Origin-less clients get in', async () => {
    h = await startServer({ config: { corsOrigins: 'https://app.example' } });
    expect(await upgradeStatus(h.wsUrl, 'https://app.example')).toBe(101);
    expect(await upgradeStatus(h.wsUrl, 'https://evil.example')).toBe(403);
    expect(await upgradeStatus(h.wsUrl, new URL(h.url).origin)).toBe(101); // the playground's own page
    expect(await upgradeStatus(h.wsUrl)).toBe(101);
    const c = await WsClient.open(h.wsUrl);
    c.send({ type: 'generate', id: 'a', prompt: 'hi', max_tokens: 3 });
    expect((await c.done('a')).finish_reason).toBe('length');
    c.ws.close();
    await h.close();
    h = await startServer(); // default: no cross-origin page may open a socket either
    expect(await upgradeStatus(h.wsUrl, 'https://app.example')).toBe(403);
  });
});
