/**
 * `npm run bench:prefill`: what computing the LM head on the kept rows only saves in prefill. The bundled
 * exports take `num_logits_to_keep` (scripts/models/logits_to_keep.py); the engine asks for 1 row on prefill
 * chunks, where the old graphs computed all of them. Same graph, same run: keep = 0 (every row: what the
 * engine did before) against keep = 1, interleaved, for the target and the draft at ~20, ~250 and ~760 prompt
 * tokens (the held-out stories, cut to length). Bars (exit 1 if missed): at ~760 tokens, keep = 1 costs
 * ≤ 0.9× keep = 0 for the target (its head is ~1/5 of the arithmetic; 0.75 on a quiet 2-core machine) and
 * ≤ 0.6× for the draft, whose LM head is most of its work (0.41 there).
 * Writes results/prefill.json (--save: docs/bench/prefill.json).
 */
import { AutoTokenizer } from '@huggingface/transformers';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { percentile, round } from '../../src/lib/stats.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutStories } from './heldout.ts';
import { table } from './table.ts';

const cli = benchCli('bench:prefill', { reps: '9', target: TARGET_DIR, draft: DRAFT_DIR });
const REPS = cli.num('reps');
const LENGTHS = [20, 250, 760];

const tokenizer = await AutoTokenizer.from_pretrained(cli.opts.target);
const text = heldoutStories().join('\n');
const ids = tokenizer.encode(text).slice(0, Math.max(...LENGTHS));
if (ids.length < Math.max(...LENGTHS)) throw new Error(`the held-out text has only ${ids.length} tokens`);

const models = {
  target: await DecoderModel.load(cli.opts.target, { dtype: 'fp32', threads: 2 }),
  draft: await DecoderModel.load(cli.opts.draft, { dtype: 'fp32', threads: 1 }),
};

async function prefillMs(m: DecoderModel, prompt: number[], keep: number): Promise<number> {
  const t0 = performance.now();
  await m.forward(m.newCache(), prompt, keep);
  return performance.now() - t0;
}

const rows: Record<string, string | number>[] = [];
const figures: { model: string; tokens: number; all_ms: number; last_ms: number; ratio: number }[] = [];
for (const [name, m] of Object.entries(models)) {
  for (const n of LENGTHS) {
    const prompt = ids.slice(0, n);
    await prefillMs(m, prompt, 0); // warm-up
    const all: number[] = [];
    const last: number[] = [];
    for (let r = 0; r < REPS; r++) {
      all.push(await prefillMs(m, prompt, 0));
      last.push(await prefillMs(m, prompt, 1));
    }
    const a = percentile(all, 50);
    const l = percentile(last, 50);
    figures.push({ model: name, tokens: n, all_ms: round(a, 2), last_ms: round(l, 2), ratio: round(l / a, 3) });
    rows.push({
      model: name,
      'prompt tokens': n,
      'all rows (ms)': round(a, 1),
      'last row (ms)': round(l, 1),
      'last ÷ all': round(l / a, 3),
    });
  }
}
console.log(table(rows));
const at = (model: string) => figures.find((f) => f.model === model && f.tokens === 760)!.ratio;
const bars = {
  'target prefill at ~760 tokens: last row ≤ 0.9× all rows': at('target') <= 0.9,
  'draft prefill at ~760 tokens: last row ≤ 0.6× all rows': at('draft') <= 0.6,
};
for (const [name, ok] of Object.entries(bars)) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
cli.writeJson('docs/bench/prefill.json', { reps: REPS, rows: figures, bars });
process.exit(Object.values(bars).every(Boolean) ? 0 : 1);
