/** What the benchmarks and the model scripts share: the repository root and the bundled model folders. */
import { join, resolve } from 'node:path';
import { DEFAULT_DRAFT, DEFAULT_TARGET, PACKAGE_ROOT } from '../../src/config/schema.ts';

export const ROOT = resolve(PACKAGE_ROOT);
export const TARGET_DIR = join(ROOT, DEFAULT_TARGET);
export const DRAFT_DIR = join(ROOT, DEFAULT_DRAFT);
