import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_TARGET } from '../../src/config/schema.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** The project's tokenizer: from the bundled target, or from the build pipeline's work folder before it exists. */
export function tokenizerPath(): string {
  const candidates = [DEFAULT_TARGET, 'scripts/models/work/tokenizer', '.tmp/random/target'].map((p) => join(ROOT, p));
  const found = candidates.find((p) => existsSync(join(p, 'tokenizer.json')));
  if (!found) throw new Error(`no tokenizer found in ${candidates.join(', ')}`);
  return found;
}
