/**
 * For the playground's browser test and screenshot script: Debian's Chromium driven by playwright-core, and the
 * real server on the best engine available (the model pair from ../helpers/models.ts when present, else the
 * FakeEngine, so that the page is still exercised without models).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { ConfigKey } from '../../src/config/index.ts';
import type { Engine } from '../../src/engine/types.ts';
import { FakeEngine } from '../helpers/fake-engine.ts';
import { DRAFT_DIR, engineOptions, TARGET_DIR, haveModels } from '../helpers/models.ts';
import { startServer, type Harness } from '../server/harness.ts';

export const CHROMIUM = process.env['SPECD_CHROMIUM'] ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/** Headless, no sandbox (containers), nothing that reaches the network on its own, a fresh profile each launch. */
export async function launchChromium(): Promise<{ context: BrowserContext; page: Page; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'specd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1200, height: 820 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface PlaygroundServer {
  h: Harness<Engine>;
  /** What serves the tokens, for messages. */
  engineKind: string;
  close(): Promise<void>;
}

/** The real server on an ephemeral port with real models when available, else a FakeEngine pacing its steps. */
export async function startPlaygroundServer(config: Partial<Record<ConfigKey, unknown>> = {}): Promise<PlaygroundServer> {
  let engine: Engine;
  let engineKind: string;
  if (haveModels) {
    const { createEngine } = await import('../../src/engine/index.ts');
    engine = await createEngine(engineOptions({ threads: 1, maxRunning: 4, maxQueue: 8, maxPromptTokens: 512 }));
    engineKind = `models ${TARGET_DIR} + ${DRAFT_DIR}`;
  } else {
    engine = new FakeEngine({ stepMs: 15 });
    engineKind = 'FakeEngine (no models found)';
  }
  const h = (await startServer({ engine, config })) as unknown as Harness<Engine>;
  return {
    h,
    engineKind,
    async close() {
      await h.close();
      await engine.close();
    },
  };
}
