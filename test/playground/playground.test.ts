/**
 * The web playground in a real browser (Debian's Chromium, headless, via playwright-core) against the real
 * server: a generation streams token by token and ends with its figures, Stop cancels mid-stream, Compare shows
 * identical greedy texts side by side, refusals and disconnects are shown in words, and a dropped socket comes
 * back. Screenshots go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeEngine } from '../helpers/fake-engine.ts';
import { describeUnless } from '../helpers/skip.ts';
import { startServer } from '../server/harness.ts';
import { CHROMIUM, haveChromium, launchChromium, startPlaygroundServer, type PlaygroundServer } from './browser.ts';

const ARTIFACTS = resolve(import.meta.dirname, '..', '..', 'test-artifacts');

const noChromium = haveChromium ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set SPECD_CHROMIUM)`;

describeUnless(noChromium, 'web playground in Chromium', () => {
  let server: PlaygroundServer;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `playground-${name}.png`), fullPage: true });
  const pane = (i = 0) => page.locator('#runs .pane').nth(i);
  const setField = (name: string, value: string) => page.locator(`[name="${name}"]`).fill(value);

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [server, browser] = await Promise.all([startPlaygroundServer(), launchChromium()]);
    console.info(`playground test on ${server.engineKind}`);
    page = browser.page;
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text());
    });
    await page.goto(server.h.url);
    await page.locator('#conn[data-state="open"]').waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('serves the page and its assets from the app, and nothing else from the folder', async () => {
    const home = await fetch(`${server.h.url}/`);
    expect(home.status).toBe(200);
    expect(home.headers.get('content-type')).toMatch(/^text\/html/);
    expect(home.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const js = await fetch(`${server.h.url}/playground/app.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${server.h.url}/playground/routes.ts`)).status).toBe(404);
    await expect.poll(() => page.locator('#models').textContent()).toContain('target');
  });

  it('streams a generation token by token, coloured by source, and ends with its figures', async () => {
    await setField('prompt', 'Once upon a time, there was a little girl named Lily.');
    await setField('max_tokens', '64');
    // Record the pane's text after every DOM change, to see it grow frame by frame before the stream ends.
    // (In-page code as a string: the project's TypeScript has no DOM types.)
    await page.evaluate(`
      window.seen = [];
      new MutationObserver(() => {
        const p = document.querySelector('#runs .pane');
        if (p) window.seen.push({ state: p.dataset.state, text: p.querySelector('.text').textContent });
      }).observe(document.querySelector('#runs'), { subtree: true, childList: true, characterData: true, attributes: true });
    `);
    await page.locator('#generate').click();
    await pane().and(page.locator('[data-state="done"]')).waitFor({ timeout: 20_000 });

    const seen = await page.evaluate<{ state: string; text: string }[]>('window.seen');
    const final = await pane().locator('.text').textContent();
    const partial = new Set(seen.filter((s) => s.state === 'running' && s.text !== '' && s.text !== final).map((s) => s.text));
    expect(partial.size, 'distinct partial texts before done').toBeGreaterThanOrEqual(2);
    expect(final!.length).toBeGreaterThan(0);

    const tokens = pane().locator('.tok');
    const n = await tokens.count();
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(64); // 64 unless the model ended the text
    const classes = await tokens.evaluateAll((els) => els.map((e) => e.className));
    for (const c of classes) expect(c).toMatch(/^tok (draft|target|bonus)$/);
    await expect.poll(() => pane().locator('[data-fig="tokens"]').textContent()).toBe(String(n));
    await expect.poll(() => pane().locator('[data-fig="ttft"]').textContent()).toMatch(/^\d+(\.\d)? ms$/);
    await expect.poll(() => pane().locator('[data-fig="tps"]').textContent()).toMatch(/^\d+(\.\d)?$/);
    await expect.poll(() => pane().locator('[data-fig="acceptance"]').textContent()).toMatch(/^\d+ %$/); // speculative: the done frame's rate
    await expect.poll(() => pane().locator('[data-fig="mean-k"]').textContent()).toMatch(/^\d+\.\d\d$/);
    await expect.poll(() => pane().locator('[data-fig="itl"]').textContent()).toMatch(/mean .* ms · p95 .* ms/);
    expect(await pane().locator('svg path').getAttribute('d')).toMatch(/^M/);
    await expect.poll(() => pane().locator('.status').textContent()).toMatch(/finished/);
    await shot('generate');
  });

  it('Stop cancels a long generation mid-stream', async () => {
    await setField('max_tokens', '512');
    await page.locator('[name="ignore_eos"]').check();
    await page.locator('#generate').click();
    await pane().locator('.tok').first().waitFor();
    await page.locator('#stop').click();
    await pane().and(page.locator('[data-state="cancelled"]')).waitFor({ timeout: 10_000 });
    await expect.poll(() => pane().locator('.status').textContent()).toBe('stopped');
    const n = Number(await pane().locator('[data-fig="tokens"]').textContent());
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(512);
    await expect.poll(() => page.locator('#generate').isEnabled()).toBe(true);
    await expect.poll(() => page.locator('#stop').isDisabled()).toBe(true);
    await page.locator('[name="ignore_eos"]').uncheck();
    await shot('stopped');
  });

  it('Compare runs speculative and target side by side and finds the same text', async () => {
    await setField('prompt', 'Tom and his dog went to the park.');
    await setField('max_tokens', '48');
    await page.locator('#compare').click();
    await page.locator('#verdict:not([hidden])').waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator('#runs .pane[data-state="done"]').count()).toBe(2);
    await expect.poll(() => pane(0).locator('.title').textContent()).toBe('speculative');
    await expect.poll(() => pane(1).locator('.title').textContent()).toBe('target');
    const [spec, target] = await Promise.all([pane(0).locator('.text').textContent(), pane(1).locator('.text').textContent()]);
    expect(spec!.length).toBeGreaterThan(0);
    expect(spec).toBe(target);
    expect(await page.locator('#verdict').getAttribute('data-identical')).toBe('true');
    await expect.poll(() => page.locator('#verdict').textContent()).toContain('identical output');
    await expect.poll(() => page.locator('#verdict').textContent()).toMatch(/\d+\.\d\d× the target's speed/);
    expect(await pane(1).locator('.tok.target').count()).toBe(await pane(1).locator('.tok').count()); // target mode: all target
    await shot('compare');
  });

  it('chat mode sends the conversation so far and keeps its turns', async () => {
    await page.locator('[name="input"][value="chat"]').check();
    await setField('max_tokens', '8');
    for (const [turn, message] of ['Tell me about a cat.', 'And then?'].entries()) {
      await setField('prompt', message);
      await page.locator('#generate').click();
      await pane().and(page.locator('[data-state="done"]')).waitFor({ timeout: 10_000 });
      await expect.poll(() => page.locator('#chat-log li').count()).toBe(2 * (turn + 1));
    }
    expect(await page.locator('#chat-log li.user').allTextContents()).toEqual(['Tell me about a cat.', 'And then?']);
    await page.locator('#new-chat').click();
    await page.locator('#chat-log').waitFor({ state: 'hidden' });
    await page.locator('[name="input"][value="prompt"]').check();
    await setField('prompt', 'Once upon a time'); // a chat turn empties the box
  });

  it('a refused parameter is explained in words and outlined', async () => {
    await setField('temperature', '3');
    await page.locator('#generate').click();
    await page.locator('#notice').waitFor({ state: 'visible' });
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/did not accept a parameter.*temperature.*between 0 and 2/);
    await expect.poll(() => page.locator('[name="temperature"]').getAttribute('aria-invalid')).toBe('true');
    await expect.poll(() => pane().locator('.status').textContent()).toBe('refused');
    await shot('refused');
    await setField('temperature', '0');
  });

  it('a dropped connection is reported and comes back, on its own and with the button', async () => {
    server.h.server.ws.terminateAll();
    await page.locator('#conn[data-state="retrying"]').waitFor();
    await expect.poll(() => page.locator('#notice').textContent()).toContain('connection to the server was lost');
    await page.locator('#reconnect').waitFor({ state: 'visible' });
    await page.locator('#conn[data-state="open"]').waitFor({ timeout: 10_000 }); // automatic backoff
    await page.locator('#notice').waitFor({ state: 'hidden' });

    server.h.server.ws.terminateAll();
    await page.locator('#conn[data-state="retrying"]').waitFor();
    await page.locator('#reconnect').click();
    await page.locator('#conn[data-state="open"]').waitFor({ timeout: 5_000 });

    await setField('max_tokens', '8');
    await page.locator('#generate').click();
    await pane().and(page.locator('[data-state="done"]')).waitFor({ timeout: 10_000 });
    expect(pageErrors).toEqual([]);
  });

  it('an overloaded server and a server without a draft are explained', async () => {
    const small = await startServer({ engine: new FakeEngine({ maxRunning: 1, maxQueue: 0, stepMs: 20 }) });
    const noDraft = await startServer({ engine: new FakeEngine({ hasDraft: false }) });
    const other = await browser.context.newPage();
    try {
      await other.goto(small.url);
      await other.locator('#conn[data-state="open"]').waitFor();
      await other.locator('#compare').click(); // two streams, one slot, no queue: the second is refused
      await other.locator('#verdict:not([hidden])').waitFor({ timeout: 10_000 });
      await expect.poll(() => other.locator('#notice').textContent()).toMatch(/server is busy/);
      await expect.poll(() => other.locator('#verdict').textContent()).toMatch(/incomplete: target failed/);
      await other.screenshot({ path: join(ARTIFACTS, 'playground-overloaded.png'), fullPage: true });

      await other.goto(noDraft.url);
      await other.locator('#conn[data-state="open"]').waitFor();
      await expect.poll(() => other.locator('#models').textContent()).toMatch(/draft none/);
      expect(await other.locator('[name="mode"]').inputValue()).toBe('target');
      await expect.poll(() => other.locator('#compare').isDisabled()).toBe(true);
    } finally {
      await other.close();
      await Promise.all([small.close(), noDraft.close()]);
    }
  });

  it('passes ?api_key= through, and says so when the key is missing', async () => {
    const keyed = await startServer({ engine: new FakeEngine(), config: { apiKey: 'sesame' } });
    const other = await browser.context.newPage();
    try {
      await other.goto(keyed.url);
      await other.locator('#conn[data-state="closed"]').waitFor();
      await expect.poll(() => other.locator('#notice').textContent()).toContain('api_key=');
      await other.goto(`${keyed.url}/?api_key=sesame`);
      await other.locator('#conn[data-state="open"]').waitFor();
      await expect.poll(() => other.locator('#models').textContent()).toContain('fake-target');
    } finally {
      await other.close();
      await keyed.close();
    }
  });
});
