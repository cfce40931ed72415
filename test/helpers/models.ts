/**
 * Where the engine tests find a model pair: the bundled models, or SPECD_TEST_TARGET/SPECD_TEST_DRAFT
 * (e.g. random-weight exports of the same shapes while the bundled pair is being trained).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DRAFT, DEFAULT_TARGET, PACKAGE_ROOT } from '../../src/config/schema.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/engine/options.ts';

export const TARGET_DIR = process.env['SPECD_TEST_TARGET'] ?? join(PACKAGE_ROOT, DEFAULT_TARGET);
export const DRAFT_DIR = process.env['SPECD_TEST_DRAFT'] ?? join(PACKAGE_ROOT, DEFAULT_DRAFT);
export const haveModels = existsSync(join(TARGET_DIR, 'onnx', 'model.onnx')) && existsSync(join(DRAFT_DIR, 'onnx', 'model.onnx'));

/** Engine options of a model-backed suite: the engine's defaults on the pair above, plus the suite's differences. */
export function engineOptions(over: Partial<EngineOptions> = {}): EngineOptions {
  return { ...DEFAULT_ENGINE_OPTIONS, targetPath: TARGET_DIR, draftPath: DRAFT_DIR, ...over };
}

export const GREEDY = { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 } as const;

export const PROMPTS = [
  'Once upon a time, there was a little girl named Lily.',
  'Tom and his dog went to the park.',
  'The sun was shining and the birds were singing.',
  'One day, a big bear found a red ball in the forest.',
  'Sara wanted to bake a cake for her mom.',
  'There was a small boat on a blue lake.',
  'Ben had a new toy car. He loved to',
  'The cat climbed up the tall tree and',
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
