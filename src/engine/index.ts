/**
 * The engine's public entry: the only module the server, the protocol and the composition root import. It is
 * light on purpose (the contract's types, the options and EngineError): the engine itself, with transformers.js
 * and ONNX Runtime behind it, loads when createEngine() is first called, so the server starts listening (and
 * answers /ready with 503) before any of that is in memory.
 */
import type { SpecEngine } from './engine.ts';
import type { EngineOptions } from './options.ts';
import type { Engine } from './types.ts';

export type { SpecEngine } from './engine.ts';
export type { EngineOptions } from './options.ts';
export { DEFAULT_ENGINE_OPTIONS } from './options.ts';
export * from './types.ts';

export async function createEngine(opts: EngineOptions): Promise<Engine & SpecEngine> {
  const { SpecEngine: Impl } = await import('./engine.ts');
  return Impl.create(opts);
}
