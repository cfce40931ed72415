/**
 * Which model pair a load test serves: explicit --target/--draft, else the bundled models, else
 * SPECD_TEST_TARGET / SPECD_TEST_DRAFT (e.g. random-weight exports of the same shapes while the bundled pair is
 * being trained). Null when none of these exists, so callers can skip with a clear message.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { DEFAULT_DRAFT, DEFAULT_TARGET, PACKAGE_ROOT } from '../../src/config/schema.ts';

export const ROOT = resolve(PACKAGE_ROOT);
export const BUNDLED_TARGET = join(ROOT, DEFAULT_TARGET);
export const BUNDLED_DRAFT = join(ROOT, DEFAULT_DRAFT);

export interface ModelPair {
  target: string;
  /** null: the server runs without a draft (`--draft none`). */
  draft: string | null;
  source: 'flags' | 'bundled' | 'env';
}

const hasOnnx = (dir: string) => existsSync(join(dir, 'onnx', 'model.onnx'));
const abs = (p: string) => (isAbsolute(p) ? p : resolve(process.cwd(), p));

export function findModels(
  explicit: { target?: string | undefined; draft?: string | undefined } = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): ModelPair | null {
  if (explicit.target !== undefined || explicit.draft !== undefined) {
    const target = abs(explicit.target ?? BUNDLED_TARGET);
    const d = explicit.draft ?? BUNDLED_DRAFT;
    const draft = d.trim().toLowerCase() === 'none' ? null : abs(d);
    return { target, draft, source: 'flags' };
  }
  if (hasOnnx(BUNDLED_TARGET) && hasOnnx(BUNDLED_DRAFT)) return { target: BUNDLED_TARGET, draft: BUNDLED_DRAFT, source: 'bundled' };
  const t = env['SPECD_TEST_TARGET'];
  const d = env['SPECD_TEST_DRAFT'];
  if (t && d && hasOnnx(abs(t)) && hasOnnx(abs(d))) return { target: abs(t), draft: abs(d), source: 'env' };
  return null;
}

export const NO_MODELS_MESSAGE =
  `no models found: neither the bundled ${BUNDLED_TARGET} + ${BUNDLED_DRAFT} ` +
  'nor SPECD_TEST_TARGET / SPECD_TEST_DRAFT (model folders with onnx/model.onnx); pass --target DIR --draft DIR';
