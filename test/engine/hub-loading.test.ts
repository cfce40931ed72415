/**
 * Real Hugging Face models load through the same code as the bundled folders: here the bundled pair is served by
 * a local stand-in of the hub on 127.0.0.1 (the `{model}/resolve/{revision}/{file}` layout transformers.js
 * requests), and the engine is given hub ids instead of paths.
 */
import { createReadStream, existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type DoneEvent, type SpecEngine } from '../../src/engine/index.ts';
import { describeWithModels, DRAFT_DIR, engineOptions, GREEDY, TARGET_DIR } from '../helpers/models.ts';

describeWithModels('loading from a hub', () => {
  let server: Server;
  let engine: SpecEngine;
  const served: string[] = [];
  const repos: Record<string, string> = { 'specd-test/story-target': TARGET_DIR, 'specd-test/story-draft': DRAFT_DIR };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
      const dir = m && repos[m[1]!];
      const file = dir && join(dir, m[2]!);
      if (!file || !existsSync(file) || file.includes('..')) {
        res.writeHead(404).end('not found');
        return;
      }
      served.push(`${m[1]}/${m[2]}`);
      res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    engine = await createEngine(
      engineOptions({
        targetPath: 'specd-test/story-target',
        draftPath: 'specd-test/story-draft',
        threads: 1,
        maxRunning: 1,
        maxQueue: 1,
        queueTimeoutMs: 10_000,
        maxPromptTokens: 512,
        allowRemote: true,
        remoteHost: host,
        cacheDir: mkdtempSync(join(tmpdir(), 'specd-hub-')),
      }),
    );
  });
  afterAll(async () => {
    await engine?.close();
    server?.close();
  });

  it('downloads both models from the stand-in and generates with them', async () => {
    for (const repo of Object.keys(repos)) {
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'])
        expect(served).toContain(`${repo}/${f}`);
    }
    let done: DoneEvent | undefined;
    for await (const ev of engine.generate({
      input: { prompt: 'Once upon a time' },
      maxTokens: 8,
      sampling: GREEDY,
      stop: [],
      mode: 'speculative',
      k: 4,
      ignoreEos: true,
    }))
      if (ev.type === 'done') done = ev;
    expect(done?.completionTokens).toBe(8);
    expect(engine.info().target.id).toBe('story-target');
  });
});
