// Worker entry in plain JS: workers do not inherit the parent's TypeScript loader (and `--import` is not a
// per-worker option on Node 20), so register tsx here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./model-worker.ts');
