/**
 * `npm run bench:frontier`: the latency–accuracy frontier of specd's own pair, measured side by side in one run.
 * Points: draft, speculative k = 1…8 and auto, target; greedy and temperature 0.8 (3 samples per prompt). Per
 * point: ms/token (decode time per token after the first), p95 ITL, TTFT, and quality against the target: (a) agreement with the target's greedy
 * continuation (exact-match prefix length, token match rate), (b) mean log-likelihood of the produced tokens under
 * the target (an offline scoring pass here, never on the serving path). Writes results/frontier.json and
 * results/frontier.svg (with --save: docs/bench/frontier.json and docs/frontier.svg), prints the verdict on the
 * seed's claims, and exits 1 if speculative is not lossless (greedy agreement 100%) or not faster than target.
 */
import { AutoTokenizer } from '@huggingface/transformers';
import { writeFileSync } from 'node:fs';
import { createEngine, DEFAULT_ENGINE_OPTIONS, type DoneEvent, type GenerateRequest } from '../../src/engine/index.ts';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutPrompts } from './heldout.ts';
import { dist, logProb, mean } from '../../src/lib/stats.ts';
import { pareto, renderChart, type Point } from '../../src/lib/svg-chart.ts';
import { table } from './table.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

// samples: per prompt for the sampled setting; one sample per prompt leaves ±0.1 nats/token of noise between points.
const cli = benchCli('bench:frontier', { prompts: '20', 'new-tokens': '48', samples: '3', target: TARGET_DIR, draft: DRAFT_DIR });
const N = cli.num('prompts');
const NEW = cli.num('new-tokens');
const SAMPLES = cli.num('samples');
const { target: TARGET, draft: DRAFT } = cli.opts;

type Point_ = { name: string; mode: GenerateRequest['mode']; k: GenerateRequest['k'] };
const POINTS: Point_[] = [
  { name: 'draft', mode: 'draft', k: 0 },
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((k) => ({ name: `spec k=${k}`, mode: 'speculative' as const, k })),
  { name: 'spec auto', mode: 'speculative', k: 'auto' },
  { name: 'target', mode: 'target', k: 0 },
];
const SETTINGS = [
  { name: 'greedy', sampling: SAMPLING_DEFAULTS },
  { name: 'T=0.8', sampling: { temperature: 0.8, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1 } },
];

const engine = await createEngine({
  ...DEFAULT_ENGINE_OPTIONS,
  targetPath: TARGET,
  draftPath: DRAFT,
  threads: 1,
  maxRunning: 1,
  maxQueue: 2,
  queueTimeoutMs: 600_000,
  maxPromptTokens: 512,
});
const scorer = await DecoderModel.load(TARGET, { dtype: 'fp32', threads: 1 });
const tok = await AutoTokenizer.from_pretrained(TARGET);

/** Mean log-probability of `out` under the target (raw distribution), given the prompt. */
async function logLikelihood(promptIds: number[], out: number[]): Promise<number> {
  if (out.length === 0) return NaN;
  const ids = [...promptIds, ...out];
  const logits = await scorer.forward(scorer.newCache(), ids.slice(0, -1));
  const V = scorer.info.vocabSize;
  let sum = 0;
  for (let i = promptIds.length - 1; i < ids.length - 1; i++) sum += logProb(logits.subarray(i * V, (i + 1) * V), ids[i + 1]!);
  return sum / out.length;
}

interface Run {
  ids: number[];
  done: DoneEvent;
  prompt: number;
}
async function run(prompt: string, p: Point_, sampling: GenerateRequest['sampling'], seed: number): Promise<Run> {
  const ids: number[] = [];
  let done: DoneEvent | undefined;
  for await (const ev of engine.generate({
    input: { prompt },
    maxTokens: NEW,
    sampling: { ...sampling, seed },
    stop: [],
    mode: p.mode,
    k: p.k,
    ignoreEos: true,
  })) {
    if (ev.type === 'tokens') ids.push(...ev.tokens.map((t) => t.id));
    if (ev.type === 'done') done = ev;
  }
  return { ids, done: done!, prompt: -1 };
}

const prompts = heldoutPrompts().slice(0, N);
const rows: Record<string, string | number>[] = [];
const chart: Point[] = [];
const results: Record<string, unknown>[] = [];
await run(prompts[0]!, POINTS[0]!, SETTINGS[0]!.sampling, 0); // warm-up
for (const setting of SETTINGS) {
  const runs = new Map<string, Run[]>(POINTS.map((p) => [p.name, []]));
  const refGreedy: number[][] = [];
  for (const [i, prompt] of prompts.entries()) {
    refGreedy.push((await run(prompt, POINTS.at(-1)!, SETTINGS[0]!.sampling, 0)).ids);
    const samples = setting.sampling.temperature > 0 ? SAMPLES : 1;
    for (const p of POINTS) {
      for (let j = 0; j < samples; j++)
        runs.get(p.name)!.push({ ...(await run(prompt, p, setting.sampling, 1000 * (j + 1) + i)), prompt: i });
    }
    process.stderr.write(`\r${setting.name}: prompt ${i + 1}/${prompts.length}`);
  }
  process.stderr.write('\n');
  for (const p of POINTS) {
    const rs = runs.get(p.name)!;
    const msPerToken = mean(rs.map((r) => (r.done.timings.e2eMs - r.done.timings.ttftMs) / Math.max(1, r.ids.length - 1)));
    const itl = dist(rs.flatMap((r) => r.done.timings.itlMs));
    let prefix = 0,
      match = 0,
      total = 0;
    rs.forEach((r) => {
      const ref = refGreedy[r.prompt]!;
      let k = 0;
      while (k < r.ids.length && k < ref.length && r.ids[k] === ref[k]) k++;
      prefix += k;
      for (let j = 0; j < Math.min(r.ids.length, ref.length); j++) {
        total++;
        if (r.ids[j] === ref[j]) match++;
      }
    });
    const lls = await Promise.all(rs.map(async (r) => logLikelihood(tok.encode(prompts[r.prompt]!), r.ids)));
    const ll = mean(lls);
    const llSe = Math.sqrt(lls.reduce((a, x) => a + (x - ll) ** 2, 0) / Math.max(1, lls.length - 1) / lls.length);
    const row = {
      setting: setting.name,
      point: p.name,
      'ms/token': msPerToken,
      'ITL p95': itl.at(95),
      'TTFT ms': mean(rs.map((r) => r.done.timings.ttftMs)),
      'agree prefix': prefix / rs.length,
      'agree rate': match / total,
      'target loglik': ll,
      'loglik ± se': llSe,
      runs: rs.length,
    };
    rows.push(row);
    results.push(row);
    chart.push({ x: msPerToken, y: ll, label: p.name.replace('spec ', ''), series: setting.name });
  }
}

const get = (setting: string, point: string) => rows.find((r) => r.setting === setting && r.point === point)!;
const verdict = SETTINGS.map(({ name }) => {
  const t = get(name, 'target'),
    d = get(name, 'draft'),
    s = get(name, 'spec auto');
  return {
    setting: name,
    draft_speedup_vs_target: (t['ms/token'] as number) / (d['ms/token'] as number),
    draft_agreement: d['agree rate'],
    draft_loglik_delta: (d['target loglik'] as number) - (t['target loglik'] as number),
    speculative_speedup_vs_target: (t['ms/token'] as number) / (s['ms/token'] as number),
    speculative_agreement: s['agree rate'],
    speculative_loglik_delta: (s['target loglik'] as number) - (t['target loglik'] as number),
  };
});
console.log(table(rows));
for (const v of verdict) {
  console.log(
    `\n[${v.setting}] draft is ${v.draft_speedup_vs_target.toFixed(2)}× faster per token than target, at ${(100 * (v.draft_agreement as number)).toFixed(1)}% token agreement with the target's greedy output and ${v.draft_loglik_delta.toFixed(3)} nats/token of target log-likelihood.`,
  );
  console.log(
    `[${v.setting}] speculative (auto) is ${v.speculative_speedup_vs_target.toFixed(2)}× faster per token than target, at ${(100 * (v.speculative_agreement as number)).toFixed(1)}% agreement and ${v.speculative_loglik_delta.toFixed(3)} nats/token.`,
  );
}
const greedy = verdict[0]!;
const bars = {
  'speculative is lossless under greedy (100% agreement at every k)': rows
    .filter((r) => r.setting === 'greedy' && String(r.point).startsWith('spec'))
    .every((r) => r['agree rate'] === 1),
  'speculative (auto) is faster than target': greedy.speculative_speedup_vs_target > 1,
};
for (const [name, ok] of Object.entries(bars)) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
const frontier = Object.fromEntries(SETTINGS.map(({ name }) => [name, pareto(chart.filter((p) => p.series === name)).map((p) => p.label)]));
const jsonOut = cli.writeJson('docs/bench/frontier.json', {
  prompts: prompts.length,
  new_tokens: NEW,
  rows: results,
  frontier,
  verdict,
  bars,
});
const svgOut = cli.output('docs/frontier.svg');
writeFileSync(
  svgOut,
  renderChart({
    kind: 'scatter',
    points: chart,
    title: 'specd latency–accuracy frontier (bundled pair)',
    xLabel: 'ms per token (decode, lower is faster)',
    yLabel: 'mean log-likelihood under the target (nats/token)',
  }),
);
console.log(`wrote ${svgOut} (and ${jsonOut})`);
await engine.close();
process.exit(Object.values(bars).every(Boolean) ? 0 : 1);
