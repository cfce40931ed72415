/**
 * The layouts people download from the Hub, on faithful miniatures (test/fixtures/hub, made by
 * scripts/models/hub_fixtures.py): every family loads offline and through a stand-in of the hub on 127.0.0.1 with
 * the file names transformers.js requests; greedy target output is token-identical to transformers.js generate()
 * on the same files, and speculative output (with the family's smaller sibling) to target output.
 */
import { AutoModelForCausalLM, AutoTokenizer } from '@huggingface/transformers';
import { createReadStream, existsSync, mkdtempSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/schema.ts';
import { createEngine, type Engine, type EngineOptions, type ModelLayout, type SpecEngine } from '../../src/engine/index.ts';
import { configureHub } from '../../src/engine/model/decoder.ts';
import { engineOptions, generateAll } from '../helpers/models.ts';

const HUB = join(PACKAGE_ROOT, 'test', 'fixtures', 'hub');
const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They', 'Hello'];
const NEW = 16;

interface Family {
  name: string;
  repo: string;
  dtype: EngineOptions['dtype'];
  file: string;
  expect: Partial<ModelLayout>;
}
const FAMILIES: Family[] = [
  {
    name: 'Llama / SmolLM2 (GQA, tied)',
    repo: 'llama',
    dtype: 'fp32',
    file: 'onnx/model.onnx',
    expect: { family: 'llama', attention: 'GQA' },
  },
  {
    name: 'Llama fp16 (float16 KV and logits)',
    repo: 'llama',
    dtype: 'fp16',
    file: 'onnx/model_fp16.onnx',
    expect: { kvDtype: 'float16', logitsDtype: 'float16' },
  },
  { name: 'Llama int8 (quantized)', repo: 'llama', dtype: 'q8', file: 'onnx/model_quantized.onnx', expect: { kvDtype: 'float32' } },
  {
    name: 'Qwen2 (biases, untied head)',
    repo: 'qwen2',
    dtype: 'fp32',
    file: 'onnx/model.onnx',
    expect: { family: 'qwen2', attention: 'GQA' },
  },
  {
    name: 'GPT-2 (merged decoder, learned positions, MHA)',
    repo: 'gpt2',
    dtype: 'fp32',
    file: 'onnx/model.onnx',
    expect: { family: 'gpt2', attention: 'MHA', merged: true, positionIds: false },
  },
];

const options = (over: Partial<EngineOptions>) =>
  engineOptions({ threads: 1, maxRunning: 8, maxQueue: 32, queueTimeoutMs: 60_000, maxPromptTokens: 256, ...over });

async function greedyIds(engine: Engine, mode: 'target' | 'speculative', k: number | 'auto' = 'auto'): Promise<number[][]> {
  return Promise.all(PROMPTS.map(async (p) => (await generateAll(engine, { input: { prompt: p }, maxTokens: NEW, mode, k })).ids));
}

/** transformers.js generate() on the same files: the reference a Node user would compare with. */
async function transformersJs(dir: string, dtype: Family['dtype']): Promise<number[][]> {
  configureHub({});
  const tok = await AutoTokenizer.from_pretrained(dir);
  const model = await AutoModelForCausalLM.from_pretrained(dir, { dtype, session_options: { intraOpNumThreads: 1 } });
  const out: number[][] = [];
  for (const p of PROMPTS) {
    const inputs = tok(p);
    const ids = (await model.generate({ ...inputs, max_new_tokens: NEW, min_new_tokens: NEW, do_sample: false })) as {
      tolist(): bigint[][];
    };
    out.push(ids.tolist()[0]!.slice(inputs.input_ids.dims[1]).map(Number));
  }
  await model.dispose();
  return out;
}

describe('Hugging Face export layouts (miniatures)', () => {
  let server: Server;
  let host = '';
  const served: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^\/specd-fixtures\/([^/]+)\/resolve\/[^/]+\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
      const file = m && !m[2]!.includes('..') ? join(HUB, m[1]!, m[2]!) : null;
      if (!file || !existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
      served.push(`${m![1]}/${m![2]}`);
      res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => server?.close());

  for (const f of FAMILIES) {
    describe(f.name, () => {
      const target = join(HUB, `${f.repo}-target`),
        draft = join(HUB, `${f.repo}-draft`);
      let offline: SpecEngine;
      let reference: number[][];
      beforeAll(async () => {
        offline = await createEngine(options({ targetPath: target, draftPath: draft, dtype: f.dtype }));
        reference = await transformersJs(target, f.dtype);
      }, 120_000);
      afterAll(() => offline?.close());

      it('offline: reports its layout; greedy target = transformers.js generate(); speculative = target', async () => {
        const info = offline.info();
        expect(info.target.layout).toMatchObject({ dtype: f.dtype, file: f.file, ...f.expect });
        expect(info.draft!.layout.file).toBe(f.file);
        const tgt = await greedyIds(offline, 'target');
        expect(tgt).toEqual(reference);
        expect(tgt.every((ids) => ids.length === NEW)).toBe(true);
        for (const k of [1, 4, 'auto'] as const) expect(await greedyIds(offline, 'speculative', k)).toEqual(tgt);
      }, 120_000);

      it(`through the hub stand-in: the files transformers.js asks for (${f.file}), same output`, async () => {
        served.length = 0;
        const hub = await createEngine(
          options({
            targetPath: `specd-fixtures/${f.repo}-target`,
            draftPath: `specd-fixtures/${f.repo}-draft`,
            dtype: f.dtype,
            allowRemote: true,
            remoteHost: host,
            cacheDir: mkdtempSync(join(tmpdir(), 'specd-hub-')),
          }),
        );
        try {
          for (const kind of ['target', 'draft'])
            for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', f.file])
              expect(served).toContain(`${f.repo}-${kind}/${file}`);
          expect(served.filter((s) => s.includes('/onnx/'))).toEqual([`${f.repo}-target/${f.file}`, `${f.repo}-draft/${f.file}`]);
          expect(await greedyIds(hub, 'speculative')).toEqual(reference);
        } finally {
          await hub.close();
        }
      }, 120_000);
    });
  }
});
