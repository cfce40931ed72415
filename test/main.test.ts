/**
 * What `npm start` says about the models it loads: the layout of each (family, dtype, file, KV layout, context),
 * and, for an export it cannot run, a clear refusal at start (exit 1) that names the missing piece.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/config/schema.ts';

const HUB = join(PACKAGE_ROOT, 'test', 'fixtures', 'hub');

/** Runs src/main.ts as `npm start` does until it exits or prints `until`; its output and exit code. */
function start(args: string[], until?: RegExp): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'src', 'main.ts'), '--port', '0', ...args], {
      cwd: PACKAGE_ROOT,
      env: { ...process.env, SPECD_LOG_LEVEL: 'info' },
    });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const take = (b: Buffer) => {
      out += b.toString();
      if (until?.test(out)) child.kill('SIGTERM');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('npm start and export layouts', () => {
  it('prints the layout of each model it loaded', async () => {
    const { out } = await start(['--target', join(HUB, 'gpt2-target'), '--draft', join(HUB, 'gpt2-draft')], /specd ready at/);
    expect(out).toMatch(
      /specd target: gpt2-target {2}gpt2 fp32 \(onnx\/model\.onnx\), 2 layers, MHA 4 heads \/ 4 KV heads × 4, float32 KV, float32 logits, context 512, merged decoder, no position_ids/,
    );
    expect(out).toMatch(/specd draft: gpt2-draft {2}gpt2 fp32/);
  }, 90_000);

  it('refuses an export without a KV cache, saying what it needs', async () => {
    const { code, out } = await start(['--target', join(HUB, 'refuse-no-past'), '--draft', 'none']);
    expect(code).toBe(1);
    expect(out).toMatch(
      /specd: could not load the models: .*refuse-no-past \(onnx\/model.onnx\) has no past_key_values inputs: specd needs a decoder exported with its KV cache/,
    );
  }, 90_000);

  it('refuses an export that takes embeddings instead of input_ids, naming the input', async () => {
    const { code, out } = await start(['--target', join(HUB, 'refuse-embeds'), '--draft', 'none']);
    expect(code).toBe(1);
    expect(out).toMatch(/takes no input_ids \(inputs: inputs_embeds, attention_mask, past_key_values\.0\.key, past_key_values\.0\.value\)/);
  }, 90_000);
});
