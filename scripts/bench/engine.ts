/**
 * `npm run bench:engine`: specd's engine against transformers.js generate() on the bundled pair, greedy, one run,
 * configurations interleaved prompt by prompt so machine noise hits all of them alike.
 * Bars (exit 1 if missed): speculative(auto) ≥ 2.0× generate()'s tokens/s; speculative(auto) ≥ 0.85 of Leviathan's
 * bound over specd's own target mode; auto within 5% of the best fixed k; identical output in every mode but draft;
 * event-loop p99 delay during a 512-token prefill < 50 ms; under a JSON schema (response_format), speculative(auto)
 * ≥ 1.2× specd's constrained target mode, with identical output; speculative(auto) on the pooled graph (the default,
 * onnx/model_pooled.onnx) ≥ 1.3× speculative(auto) on the standard export (--graph standard, the rows marked
 * "standard graph"). Writes results/engine.json (--save: docs/bench/engine.json).
 */
import { AutoModelForCausalLM, AutoTokenizer, BaseStreamer, env } from '@huggingface/transformers';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createEngine, DEFAULT_ENGINE_OPTIONS, type DoneEvent, type GenerateRequest } from '../../src/engine/index.ts';
import { expectedTokens } from '../../src/engine/scheduler/adaptive-k.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutPrompts, heldoutStories } from './heldout.ts';
import { dist, mean } from '../../src/lib/stats.ts';
import { table } from './table.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

const cli = benchCli('bench:engine', { prompts: '20', 'new-tokens': '128', threads: '2', target: TARGET_DIR, draft: DRAFT_DIR });
const N_PROMPTS = cli.num('prompts');
const NEW_TOKENS = cli.num('new-tokens');
const THREADS = cli.num('threads');
const { target: TARGET, draft: DRAFT } = cli.opts;
const GREEDY = SAMPLING_DEFAULTS;
const HAS_Q8 = [TARGET, DRAFT].every((d) => existsSync(join(d, 'onnx', 'model_quantized.onnx')));

/** One engine configuration: its mode and k, under a JSON schema or not, on the fp32 or the q8 files. */
interface EngineConfig {
  name: string;
  mode: GenerateRequest['mode'];
  k: GenerateRequest['k'];
  constrained?: true;
  q8?: true;
  /** The standard export (onnx/model.onnx) instead of the pooled graph. */
  standard?: true;
}
type Config = EngineConfig | { name: 'transformers.js generate()'; mode: 'tjs' };
const CONFIGS: Config[] = [
  { name: 'transformers.js generate()', mode: 'tjs' },
  { name: 'specd target', mode: 'target', k: 0 },
  ...[1, 2, 4, 6, 8].map((k) => ({ name: `speculative k=${k}`, mode: 'speculative' as const, k })),
  { name: 'speculative auto', mode: 'speculative', k: 'auto' },
  { name: 'specd draft', mode: 'draft', k: 0 },
  { name: 'target, JSON schema', mode: 'target', k: 0, constrained: true },
  { name: 'speculative auto, JSON schema', mode: 'speculative', k: 'auto', constrained: true },
  // The int8 files (--dtype q8) where the model folders have them; compared with generate() on the fp32 target,
  // the baseline a Node user would pick.
  { name: 'standard graph: target', mode: 'target', k: 0, standard: true },
  { name: 'standard graph: speculative auto', mode: 'speculative', k: 'auto', standard: true },
  ...(HAS_Q8
    ? [
        { name: 'q8 target', mode: 'target' as const, k: 0, q8: true as const },
        { name: 'q8 speculative auto', mode: 'speculative' as const, k: 'auto' as const, q8: true as const },
      ]
    : []),
];
/**
 * The constrained rows' response_format: structure the grammar dictates (keys, quotes, an enum) around text the
 * model writes (two strings), so both the mask's cost and speculation on free text show. The output ends with the
 * JSON (at most NEW_TOKENS), the same in both modes.
 */
const SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string', maxLength: 40 },
    mood: { type: 'string', enum: ['happy', 'sad', 'scared', 'surprised'] },
    story: { type: 'string', maxLength: 360 },
  },
  required: ['title', 'mood', 'story'],
};

interface Run {
  tokens: number[];
  ms: number;
  ttft: number;
  itl: number[];
  done?: DoneEvent;
}

env.allowRemoteModels = false;
env.useFSCache = false;
const engineOf = (dtype: 'fp32' | 'q8', graph: 'auto' | 'standard' = 'auto') =>
  createEngine({
    ...DEFAULT_ENGINE_OPTIONS,
    targetPath: TARGET,
    draftPath: DRAFT,
    dtype,
    graph,
    threads: THREADS,
    maxRunning: 1,
    maxQueue: 4,
    queueTimeoutMs: 600_000,
    maxPromptTokens: 768,
  });
const engine = await engineOf('fp32');
const q8Engine = HAS_Q8 ? await engineOf('q8') : null;
const standardEngine = await engineOf('fp32', 'standard');
const tok = await AutoTokenizer.from_pretrained(TARGET);
const tjs = await AutoModelForCausalLM.from_pretrained(TARGET, { dtype: 'fp32', session_options: { intraOpNumThreads: THREADS } });

class TimingStreamer extends BaseStreamer {
  times: number[] = [];
  private first = true;
  override put(): void {
    if (this.first) {
      this.first = false;
      return;
    } // generate() first puts the prompt
    this.times.push(performance.now());
  }
  override end(): void {}
}

async function runTjs(prompt: string): Promise<Run> {
  const inputs = tok(prompt);
  const streamer = new TimingStreamer();
  const t0 = performance.now();
  const out = (await tjs.generate({
    ...inputs,
    max_new_tokens: NEW_TOKENS,
    min_new_tokens: NEW_TOKENS,
    do_sample: false,
    streamer: streamer as never,
  })) as { tolist(): bigint[][] };
  const ms = performance.now() - t0;
  const tokens = out.tolist()[0]!.slice(inputs.input_ids.dims[1]).map(Number);
  const t = streamer.times;
  return { tokens, ms, ttft: (t[0] ?? t0) - t0, itl: t.slice(1).map((x, i) => x - t[i]!) };
}

async function runEngine(prompt: string, { mode, k, constrained, q8, standard }: Omit<EngineConfig, 'name'>): Promise<Run> {
  const tokens: number[] = [];
  let done: DoneEvent | undefined;
  const t0 = performance.now();
  for await (const ev of (q8 ? q8Engine! : standard ? standardEngine : engine).generate({
    input: { prompt },
    maxTokens: NEW_TOKENS,
    sampling: GREEDY,
    stop: [],
    mode,
    k,
    ignoreEos: true,
    ...(constrained ? { responseFormat: { type: 'json_schema' as const, schema: SCHEMA } } : {}),
  })) {
    if (ev.type === 'tokens') tokens.push(...ev.tokens.map((t) => t.id));
    if (ev.type === 'done') done = ev;
  }
  return { tokens, ms: performance.now() - t0, ttft: done!.timings.ttftMs, itl: done!.timings.itlMs, done };
}

const prompts = heldoutPrompts().slice(0, N_PROMPTS);
const runs = new Map<string, Run[]>(CONFIGS.map((c) => [c.name, []]));
// Warm-up: the first calls of each session allocate ORT's arenas.
await runTjs(prompts[0]!);
for (const c of CONFIGS) if (c.mode !== 'tjs') await runEngine(prompts[0]!, c);
for (const [i, p] of prompts.entries()) {
  for (const c of CONFIGS) runs.get(c.name)!.push(c.mode === 'tjs' ? await runTjs(p) : await runEngine(p, c));
  process.stderr.write(`\rprompt ${i + 1}/${prompts.length}`);
}
process.stderr.write('\n');

// Cost ratio c per row, from that row's own decode passes: its mean draft pass (as the loop runs them: the first one
// of a round pays for the draft's weights having been evicted by the target pass) over a one-token target pass of
// specd's target mode in the same interleaved run. An engine-wide snapshot would mix in whichever row ran last.
const decodeTotals = (rs: Run[]) =>
  rs.reduce(
    (a, r) => {
      const d = r.done?.timings.decode;
      return d
        ? {
            draftMs: a.draftMs + d.draftMs,
            draftPasses: a.draftPasses + d.draftPasses,
            targetMs: a.targetMs + d.targetMs,
            targetPasses: a.targetPasses + d.targetPasses,
          }
        : a;
    },
    { draftMs: 0, draftPasses: 0, targetMs: 0, targetPasses: 0 },
  );
const targetTotals = decodeTotals(runs.get('specd target')!);
const targetPassMs = targetTotals.targetMs / targetTotals.targetPasses;
const tokensPerSecond = (rs: Run[]) => rs.reduce((a, r) => a + r.tokens.length, 0) / (rs.reduce((a, r) => a + r.ms, 0) / 1000);
const ref = runs.get('specd target')!;
const constrainedRef = runs.get('target, JSON schema')!;
const targetTps = tokensPerSecond(ref);
const tjsTps = tokensPerSecond(runs.get('transformers.js generate()')!);

// q8 rows are costed against the q8 target's own passes (their c and bound describe the q8 pair).
const q8Totals = HAS_Q8 ? decodeTotals(runs.get('q8 target')!) : null;
const q8PassMs = q8Totals ? q8Totals.targetMs / q8Totals.targetPasses : NaN;
const q8Tps = HAS_Q8 ? tokensPerSecond(runs.get('q8 target')!) : NaN;
// Likewise the standard-graph rows against the standard graph's own target mode.
const standardTotals = decodeTotals(runs.get('standard graph: target')!);
const standardPassMs = standardTotals.targetMs / standardTotals.targetPasses;
const standardTps = tokensPerSecond(runs.get('standard graph: target')!);

const rows = CONFIGS.map((cfg) => {
  const rs = runs.get(cfg.name)!;
  const isQ8 = cfg.mode !== 'tjs' && cfg.q8 === true;
  const isStandard = cfg.mode !== 'tjs' && cfg.standard === true;
  const passMs = isQ8 ? q8PassMs : isStandard ? standardPassMs : targetPassMs;
  const baseTps = isQ8 ? q8Tps : isStandard ? standardTps : targetTps;
  const proposed = rs.reduce((a, r) => a + (r.done?.speculative.proposed ?? 0), 0);
  const accepted = rs.reduce((a, r) => a + (r.done?.speculative.accepted ?? 0), 0);
  const rejections = rs.reduce((a, r) => a + (r.done?.speculative.rejections ?? 0), 0);
  const drafts = rs.reduce((a, r) => a + (r.done?.speculative.drafts ?? 0), 0);
  const alpha = proposed ? accepted / (accepted + rejections) : NaN;
  const k = drafts ? proposed / drafts : NaN;
  const own = decodeTotals(rs);
  const c = own.draftPasses ? own.draftMs / own.draftPasses / passMs : NaN;
  // Leviathan's bound: expected tokens per round over the round's cost in 1-token target passes.
  const bound = proposed ? expectedTokens(alpha, k) / (k * c + 1) : NaN;
  // The same bound with the verify pass at its measured cost (the row's mean target pass over a 1-token one)
  // instead of Leviathan's assumption that k + 1 tokens cost one step: what an overhead-free loop could reach here.
  const verify = own.targetPasses ? own.targetMs / own.targetPasses / passMs : NaN;
  const boundAtVerifyCost = proposed ? expectedTokens(alpha, k) / (k * c + verify) : NaN;
  const tps = tokensPerSecond(rs);
  const itl = dist(rs.flatMap((r) => r.itl));
  const same =
    cfg.mode !== 'tjs' && cfg.constrained
      ? constrainedRef
      : isQ8
        ? runs.get('q8 target')!
        : isStandard
          ? runs.get('standard graph: target')!
          : ref;
  const identical =
    cfg.mode === 'draft' || cfg.mode === 'tjs' ? 'n/a' : rs.every((r, i) => r.tokens.join() === same[i]!.tokens.join()) ? 'yes' : 'NO';
  return {
    config: cfg.name,
    'tok/s': tps,
    'vs generate()': tps / tjsTps,
    // q8 rows: against the q8 target (the model they are exact to).
    'vs target': tps / baseTps,
    'TTFT ms': mean(rs.map((r) => r.ttft)),
    'ITL p50': itl.at(50),
    'ITL p95': itl.at(95),
    'ITL p99': itl.at(99),
    'accept rate': proposed ? accepted / proposed : NaN,
    alpha,
    'mean k': k,
    c,
    bound,
    'of bound': proposed ? tps / baseTps / bound : NaN,
    'verify ×': verify,
    'of bound at verify cost': proposed ? tps / baseTps / boundAtVerifyCost : NaN,
    identical,
  };
});

// Event-loop delay on the main thread while a 512-token prompt is prefilled in the worker.
const longPrompt = tok.decode(tok.encode(heldoutStories().slice(0, 40).join('\n')).slice(1, 512), { skip_special_tokens: true });
const h = monitorEventLoopDelay({ resolution: 1 });
h.enable();
const prefill = await runEngine(longPrompt, { mode: 'target', k: 0 });
h.disable();
const loop = {
  prompt_tokens: prefill.done!.promptTokens,
  prefill_ms: prefill.done!.timings.prefillMs,
  p99_ms: h.percentile(99) / 1e6,
  max_ms: h.max / 1e6,
};

const byName = new Map(rows.map((r) => [r.config, r]));
const auto = byName.get('speculative auto')!;
const constrained = byName.get('speculative auto, JSON schema')!['tok/s'] / byName.get('target, JSON schema')!['tok/s'];
const constrainedTokens = mean(constrainedRef.map((r) => r.tokens.length));
const pooledGain = auto['tok/s'] / byName.get('standard graph: speculative auto')!['tok/s'];
const bestFixed = Math.max(...rows.filter((r) => /k=\d/.test(r.config)).map((r) => r['tok/s']));
const bars = {
  'speculative(auto) ≥ 2.0× generate()': auto['vs generate()'] >= 2.0,
  'speculative(auto) ≥ 0.85 of bound': auto['of bound'] >= 0.85,
  'auto within 5% of best fixed k': auto['tok/s'] >= 0.95 * bestFixed,
  // fp32 rows: token for token. The q8 rows are reported, not barred: int8 kernels round differently for a 1-token
  // pass and a verify pass, so q8 speculative can leave q8 target at a near-tie (bench:q8 measures where).
  'identical output': rows.filter((r) => !r.config.startsWith('q8')).every((r) => r.identical !== 'NO'),
  'event-loop p99 < 50 ms during 512-token prefill': loop.p99_ms < 50,
  'under a JSON schema, speculative(auto) ≥ 1.2× target': constrained >= 1.2,
  'speculative(auto), pooled graph ≥ 1.3× on the standard export': pooledGain >= 1.3,
};
console.log(table(rows));
console.log(
  `\nc = a row's mean draft pass / specd target's mean 1-token pass (${targetPassMs.toFixed(2)} ms); bound = (1 − α^(k+1)) / ((1 − α)(kc + 1)) at the row's mean k; 'verify ×' = the row's mean target pass ÷ that 1-token pass, and the last column puts it in the bound's denominator in place of 1`,
);
console.log(
  `event loop during a ${loop.prompt_tokens}-token prefill (${loop.prefill_ms.toFixed(0)} ms): p99 ${loop.p99_ms.toFixed(1)} ms, max ${loop.max_ms.toFixed(1)} ms`,
);
if (HAS_Q8) {
  const q8 = byName.get('q8 speculative auto')!;
  console.log(
    `int8 (--dtype q8): q8 speculative(auto) ${q8['vs generate()'].toFixed(2)}× generate() on the fp32 target, ${q8['vs target'].toFixed(2)}× q8 target (identical to q8 target: ${q8.identical}; see bench:q8); q8 target ${byName.get('q8 target')!['vs generate()'].toFixed(2)}× generate()`,
  );
}
console.log(
  `under a JSON schema (${constrainedTokens.toFixed(0)} tokens per reply on average): speculative(auto) ÷ target = ${constrained.toFixed(2)}× (unconstrained: ${auto['vs target'].toFixed(2)}×)`,
);
console.log(
  `pooled graph (onnx/model_pooled.onnx) against the standard export: speculative(auto) ${pooledGain.toFixed(2)}×, target ${(targetTps / standardTps).toFixed(2)}×`,
);
for (const [name, ok] of Object.entries(bars)) console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
cli.writeJson('docs/bench/engine.json', {
  prompts: prompts.length,
  new_tokens: NEW_TOKENS,
  threads: THREADS,
  target_pass_ms: targetPassMs,
  rows,
  event_loop: loop,
  constrained: { schema: SCHEMA, mean_tokens: constrainedTokens, speculative_over_target: constrained },
  pooled_over_standard: { speculative_auto: pooledGain, target: targetTps / standardTps },
  bars,
});
await engine.close();
await q8Engine?.close();
await standardEngine.close();
process.exit(Object.values(bars).every(Boolean) ? 0 : 1);
