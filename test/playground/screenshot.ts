/**
 * Writes the README's screenshot of the playground after a speculative run:
 *   npx tsx test/playground/screenshot.ts [out.png]      (default docs/playground.png)
 * Uses the same engine choice as the browser test: the model pair from test/helpers/models.ts, else the FakeEngine.
 */
import { resolve } from 'node:path';
import { launchChromium, startPlaygroundServer } from './browser.ts';

const out = resolve(process.argv[2] ?? 'docs/playground.png');
const server = await startPlaygroundServer();
const browser = await launchChromium();
try {
  const { page } = browser;
  await page.setViewportSize({ width: 1100, height: 600 });
  await page.goto(server.h.url);
  await page.locator('#conn[data-state="open"]').waitFor();
  await page.locator('[name="prompt"]').fill(process.env['PROMPT'] ?? 'Once upon a time, there was a little girl named Lily.');
  await page.locator('[name="max_tokens"]').fill(process.env['MAX_TOKENS'] ?? '96');
  await page.locator('#generate').click();
  await page.locator('#runs .pane[data-state="done"]').waitFor({ timeout: 60_000 });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (${server.engineKind})`);
} finally {
  await browser.close();
  await server.close();
}
