export { SpecEngine } from './engine.ts';
export type { EngineOptions } from './options.ts';
export { DEFAULT_ENGINE_OPTIONS } from './options.ts';
export * from './types.ts';
import { SpecEngine } from './engine.ts';
import type { EngineOptions } from './options.ts';
import type { Engine } from './types.ts';

export function createEngine(opts: EngineOptions): Promise<Engine & SpecEngine> {
  return SpecEngine.create(opts);
}
