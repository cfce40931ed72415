// Worker entry in plain JS: workers do not inherit the parent's TypeScript loader (and `--import` is not a
// per-worker option on Node 20), so register tsx here, then load the TypeScript worker named by argv[2]
// (relative to this folder; the model worker when none is given).
import { register } from 'tsx/esm/api';

register();
await import(new URL(process.argv[2] ?? './model-worker.ts', import.meta.url).href);
