/**
 * Where the engine tests find a model pair: the bundled models, or SPECD_TEST_TARGET/SPECD_TEST_DRAFT
 * (e.g. random-weight exports of the same shapes while the bundled pair is being trained). SPECD_TEST_NO_MODELS=1
 * (set by `npm run test:unit`) runs every suite as if there were none: the model-backed ones skip, saying why.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DRAFT, DEFAULT_TARGET, PACKAGE_ROOT } from '../../src/config/schema.ts';
import {
  DEFAULT_ENGINE_OPTIONS,
  type EmittedToken,
  type Engine,
  type EngineOptions,
  type FinishReason,
  type GenerateRequest,
} from '../../src/engine/index.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';
import { PROMPTS as LOAD_PROMPTS } from '../../load-tests/lib/requests.ts';
import { describeUnless } from './skip.ts';

export const TARGET_DIR = process.env['SPECD_TEST_TARGET'] ?? join(PACKAGE_ROOT, DEFAULT_TARGET);
export const DRAFT_DIR = process.env['SPECD_TEST_DRAFT'] ?? join(PACKAGE_ROOT, DEFAULT_DRAFT);

/** Set when the model-backed suites are switched off on purpose (the unit lane), whatever is on disk. */
export const modelsSwitchedOff: string | null =
  process.env['SPECD_TEST_NO_MODELS'] === '1' ? 'SPECD_TEST_NO_MODELS=1 (npm run test:unit runs no model-backed suite)' : null;
const hasOnnx = (dir: string) => existsSync(join(dir, 'onnx', 'model.onnx'));
/** Why the model-backed suites cannot run here, or null when they can. */
export const modelsMissing: string | null =
  modelsSwitchedOff ??
  (hasOnnx(TARGET_DIR) && hasOnnx(DRAFT_DIR)
    ? null
    : `no model pair at ${TARGET_DIR} + ${DRAFT_DIR} (folders with onnx/model.onnx; see SPECD_TEST_TARGET / SPECD_TEST_DRAFT)`);
export const haveModels = modelsMissing === null;

/** A suite that needs the model pair: skipped, with the reason printed, when there is none. */
export function describeWithModels(name: string, fn: () => void): void {
  describeUnless(modelsMissing, name, fn);
}

/** Engine options of a model-backed suite: the engine's defaults on the pair above, plus the suite's differences. */
export function engineOptions(over: Partial<EngineOptions> = {}): EngineOptions {
  return { ...DEFAULT_ENGINE_OPTIONS, targetPath: TARGET_DIR, draftPath: DRAFT_DIR, ...over };
}

/** specd's sampling defaults are greedy. */
export const GREEDY = SAMPLING_DEFAULTS;

/** The load kit's story prompts, then more of the same kind (22 in all). */
export const PROMPTS = [
  ...LOAD_PROMPTS,
  'Mia and Max were best friends. They liked to',
  'A little bird could not fly. It was sad because',
  'Once upon a time, in a small town, there lived a kind old man.',
  'The girl looked at the sky and saw',
  'Timmy was scared of the dark. One night,',
  'The frog jumped into the pond and',
  'Anna found a shiny key under her bed.',
  'It was a rainy day, so the children stayed inside.',
  'The dragon was very hungry. He',
  'Grandma gave Lucy a big hug and said,',
  'The little fish swam fast to',
  'Once there was a happy dog named Max. Max liked to',
  'Hello',
  'Numbers 123 and symbols like % and 🙂 are rare here:',
];

/** One generation's tokens, draft proposals and finish reason; greedy speculative, 24 tokens, ignore_eos unless overridden. */
export async function generateAll(
  engine: Engine,
  req: Partial<GenerateRequest> & Pick<GenerateRequest, 'input'>,
): Promise<{ tokens: EmittedToken[]; ids: number[]; proposed: number; finishReason: FinishReason | null }> {
  const tokens: EmittedToken[] = [];
  let proposed = 0;
  let finishReason: FinishReason | null = null;
  for await (const ev of engine.generate({
    maxTokens: 24,
    sampling: GREEDY,
    stop: [],
    mode: 'speculative',
    k: 'auto',
    ignoreEos: true,
    ...req,
  })) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens);
    if (ev.type === 'done') {
      proposed = ev.speculative.proposed;
      finishReason = ev.finishReason;
    }
  }
  return { tokens, ids: tokens.map((t) => t.id), proposed, finishReason };
}
