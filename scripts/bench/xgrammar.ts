/**
 * `npm run bench:xgrammar`: the XGrammar facts structured output is designed around, on the bundled vocabulary.
 * A diagnostic with no bar (it prints and records):
 * - compiling a JSON schema against the vocabulary (the model worker's cost, once per schema), and the first
 *   start of XGrammar's tokenizer info;
 * - one token mask (`getNextTokenBitmask`) and its application to a logits row, per position;
 * - what aborts do to one instance: `--aborts` bad schemas in a row on the same instance, then a good one. If the
 *   good one fails, an instance must not be kept after an abort (why the schema checker replaces it every time).
 * Writes results/xgrammar.json (--save: docs/bench/xgrammar.json).
 */
import { Grammars } from '../../src/engine/grammar/grammars.ts';
import { loadXGrammar } from '../../src/engine/grammar/xgrammar.ts';
import { PromptCodec } from '../../src/engine/prompt.ts';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, TARGET_DIR } from './cli.ts';

const cli = benchCli('bench:xgrammar', { aborts: '1000', positions: '200', target: TARGET_DIR });
const SCHEMA = JSON.stringify({
  type: 'object',
  properties: { name: { type: 'string', maxLength: 16 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
});

const codec = await PromptCodec.load(cli.opts.target);
const vocab = codec.grammarVocabulary();
const V = vocab.tokens.length;
const grammars = new Grammars(vocab, V, [2, 4]);
let t0 = performance.now();
await grammars.constraint({ schema: '{"type": "integer"}', strict: true });
const startMs = performance.now() - t0;
t0 = performance.now();
let g = await grammars.constraint({ schema: SCHEMA, strict: true });
const compileMs = performance.now() - t0;

// Walk greedy paths over random logits, timing the mask and its application at each position; a finished document
// starts another (the compiled grammar is cached by then).
const maskMs: number[] = [];
const applyMs: number[] = [];
const raw = new Float32Array(V);
for (let i = 0; i < cli.num('positions'); i++) {
  for (let v = 0; v < V; v++) raw[v] = Math.random();
  let t = performance.now();
  await g.prepare(0);
  maskMs.push(performance.now() - t);
  t = performance.now();
  const row = g.row(raw, 0);
  applyMs.push(performance.now() - t);
  let best = 0;
  for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
  g.settle(0, [best]);
  if (best === 2 || best === 4) {
    g.dispose();
    g = await grammars.constraint({ schema: SCHEMA, strict: true });
  }
}

// Aborts on one instance: XGrammar prints why on stderr each time; keep it quiet here.
const quiet = console.error;
console.error = () => {};
const xg = loadXGrammar();
let aborted = 0;
for (let i = 0; i < cli.num('aborts'); i++) {
  try {
    (await xg.Grammar.fromJSONSchema(`{"type": "object", "properties": {"k${i}": {"type": "nope"}}}`)).dispose();
  } catch {
    aborted++;
  }
}
let afterAborts: string;
try {
  (await xg.Grammar.fromJSONSchema('{"type": "integer"}')).dispose();
  afterAborts = 'ok';
} catch (e) {
  afterAborts = `failed: ${e instanceof Error ? e.message : String(e)}`;
}
console.error = quiet;

const med = (xs: number[]) => round(percentile(xs, 50), 4);
const result = {
  vocab: V,
  first_start_and_compile_ms: round(startMs, 1),
  compile_ms: round(compileMs, 1),
  positions: maskMs.length,
  mask_ms: { p50: med(maskMs), p99: round(percentile(maskMs, 99), 4) },
  apply_ms: { p50: med(applyMs), p99: round(percentile(applyMs, 99), 4) },
  aborts: aborted,
  good_schema_after_aborts: afterAborts,
};
console.log(JSON.stringify(result, null, 2));
cli.writeJson('docs/bench/xgrammar.json', result);
process.exit(0);
