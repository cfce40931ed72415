/**
 * The import rules are enforced by `npm run lint` (eslint.config.js): these lint snippets as if they stood in
 * each layer and check that a forbidden import fails and the allowed one passes.
 */
import { ESLint } from 'eslint';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: ROOT });

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return result!.messages.filter((m) => m.ruleId === 'import-x/no-restricted-paths').map((m) => m.message);
}

describe('layer rules', () => {
  it.each([
    ['src/engine/probe.ts', "import { createServer } from '../server/index.ts';\nexport const x = createServer;\n", 'knows no HTTP'],
    ['src/engine/model/probe.ts', "import type { Limits } from '../../protocol/index.ts';\nexport type X = Limits;\n", 'knows no HTTP'],
    ['src/engine/probe.ts', "import { loadConfig } from '../config/index.ts';\nexport const x = loadConfig;\n", 'knows no HTTP'],
    ['src/server/probe.ts', "import type { Engine } from '../engine/types.ts';\nexport type X = Engine;\n", 'only through'],
    ['src/server/http/probe.ts', "import { PromptCodec } from '../../engine/prompt.ts';\nexport const x = PromptCodec;\n", 'only through'],
    ['src/protocol/probe.ts', "import type { Engine } from '../engine/index.ts';\nexport type X = Engine;\n", 'stand alone'],
    ['src/protocol/probe.ts', "import { ApiError } from '../server/errors.ts';\nexport const x = ApiError;\n", 'stand alone'],
    [
      'src/lib/probe.ts',
      "import { FakeEngine } from '../../test/helpers/fake-engine.ts';\nexport const x = FakeEngine;\n",
      'never imports',
    ],
    ['src/server/probe.ts', "import { execute } from '../../load-tests/lib/execute.ts';\nexport const x = execute;\n", 'never imports'],
  ])('%s: %s fails the lint', async (file, code, why) => {
    const errors = await layerErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(why);
  });

  it.each([
    ['src/server/probe.ts', "import type { Engine } from '../engine/index.ts';\nexport type X = Engine;\n"],
    ['src/engine/probe.ts', "import { sleep } from '../lib/async.ts';\nexport const x = sleep;\n"],
    ['src/engine/speculation/probe.ts', "import type { Engine } from '../types.ts';\nexport type X = Engine;\n"],
    [
      'test/probe.ts',
      "import { createServer } from '../src/server/index.ts';\nimport { PromptCodec } from '../src/engine/prompt.ts';\nexport const x = [createServer, PromptCodec];\n",
    ],
  ])('%s: the allowed import passes', async (file, code) => {
    expect(await layerErrors(file, code)).toEqual([]);
  });
});
