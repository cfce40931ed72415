/**
 * `npm run bench:context`: what a long prompt costs one stream. Speculative (k auto) and target on the engine
 * directly, greedy, 128 tokens with ignore_eos, on held-out stories cut to ~20, ~250 and ~760 prompt tokens,
 * the modes alternating prompt by prompt in one run: TTFT, mean ITL ((e2e − TTFT) / (tokens − 1)) and tok/s.
 *
 * Bars (the batched engine core's "step cost that does not grow with the context"; exit 1 if missed):
 * speculative ITL at ~760 ≤ 1.5× its ITL at ~20; speculative ≥ 1.6× target tok/s at every length; speculative
 * TTFT ≤ 1.1× target TTFT at every length. Writes results/context.json (--save: docs/bench/context.json).
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { createEngine, DEFAULT_ENGINE_OPTIONS, type GenerateRequest } from '../../src/engine/index.ts';
import { mean, round } from '../../src/lib/stats.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutStories } from './heldout.ts';
import { table } from './table.ts';

const cli = benchCli('bench:context', { prompts: '8', 'new-tokens': '128', lengths: '20,250,760', target: TARGET_DIR, draft: DRAFT_DIR });
const N = cli.num('prompts');
const NEW_TOKENS = cli.num('new-tokens');
const LENGTHS = cli.opts.lengths.split(',').map(Number);
const MODES = ['speculative', 'target'] as const;

env.allowRemoteModels = false;
env.useFSCache = false;
const tokenizer = await AutoTokenizer.from_pretrained(cli.opts.target);
const engine = await createEngine({
  ...DEFAULT_ENGINE_OPTIONS,
  targetPath: cli.opts.target,
  draftPath: cli.opts.draft,
  maxRunning: 1,
  queueTimeoutMs: 600_000,
  maxPromptTokens: Math.max(...LENGTHS) + 8,
});

/** Story i cut to about n tokens (decoded back to text, so the engine tokenizes it as a client's prompt). */
function promptOf(i: number, n: number): string {
  const stories = heldoutStories();
  let ids: number[] = [];
  for (let j = i; ids.length < n; j++) ids = [...ids, ...tokenizer.encode(stories[j % stories.length]!, { add_special_tokens: false })];
  return tokenizer.decode(ids.slice(0, n), { skip_special_tokens: true });
}

interface Run {
  promptTokens: number;
  ttftMs: number;
  itlMs: number;
  tokS: number;
  /** Draft acceptance and mean k (speculative only): a long prompt can cost agreement as well as pass time. */
  acceptance: number | null;
  meanK: number | null;
}

async function run(prompt: string, mode: (typeof MODES)[number]): Promise<Run> {
  const req: GenerateRequest = {
    input: { prompt },
    maxTokens: NEW_TOKENS,
    sampling: SAMPLING_DEFAULTS,
    stop: [],
    mode,
    k: 'auto',
    ignoreEos: true,
  };
  const t0 = performance.now();
  let ttft = -1;
  let tokens = 0;
  let promptTokens = 0;
  let acceptance: number | null = null,
    meanK: number | null = null;
  for await (const ev of engine.generate(req)) {
    if (ev.type === 'start') promptTokens = ev.promptTokens;
    if (ev.type === 'done') ({ acceptanceRate: acceptance, meanK } = ev.speculative);
    if (ev.type !== 'tokens' || ev.tokens.length === 0) continue;
    if (ttft < 0) ttft = performance.now() - t0;
    tokens += ev.tokens.length;
  }
  const e2e = performance.now() - t0;
  return { promptTokens, ttftMs: ttft, itlMs: (e2e - ttft) / Math.max(1, tokens - 1), tokS: tokens / (e2e / 1000), acceptance, meanK };
}

await run(promptOf(0, 20), 'speculative'); // warm-up
const rows: {
  mode: string;
  length: number;
  prompt_tokens: number;
  ttft_ms: number;
  itl_ms: number;
  tok_s: number;
  acceptance: number | '—';
  mean_k: number | '—';
}[] = [];
const meanOf = (xs: (number | null)[], digits: number) => (xs.every((x) => x !== null) ? round(mean(xs as number[]), digits) : '—');
for (const n of LENGTHS) {
  const runs: Record<string, Run[]> = { speculative: [], target: [] };
  for (let i = 0; i < N; i++) {
    const prompt = promptOf(i * 3, n);
    for (const mode of i % 2 === 0 ? MODES : [...MODES].reverse()) runs[mode]!.push(await run(prompt, mode));
  }
  for (const mode of MODES) {
    const rs = runs[mode]!;
    rows.push({
      mode,
      length: n,
      prompt_tokens: round(mean(rs.map((r) => r.promptTokens)), 0),
      ttft_ms: round(mean(rs.map((r) => r.ttftMs)), 1),
      itl_ms: round(mean(rs.map((r) => r.itlMs)), 2),
      tok_s: round(mean(rs.map((r) => r.tokS)), 1),
      acceptance: meanOf(
        rs.map((r) => r.acceptance),
        3,
      ),
      mean_k: meanOf(
        rs.map((r) => r.meanK),
        2,
      ),
    });
  }
  process.stdout.write(`~${n} tokens done\n`);
}
await engine.close();
console.log(table(rows));

const get = (mode: string, n: number) => rows.find((r) => r.mode === mode && r.length === n)!;
const [shortest, longest] = [Math.min(...LENGTHS), Math.max(...LENGTHS)];
const bars: Record<string, { value: number; pass: boolean }> = {};
const barIf = (name: string, value: number, pass: boolean) => {
  bars[name] = { value: round(value, 3), pass: Number.isFinite(value) && pass };
};
const itlGrowth = get('speculative', longest).itl_ms / get('speculative', shortest).itl_ms;
barIf(`speculative ITL at ~${longest} ÷ at ~${shortest} ≤ 1.5`, itlGrowth, itlGrowth <= 1.5);
for (const n of LENGTHS) {
  const speed = get('speculative', n).tok_s / get('target', n).tok_s;
  barIf(`speculative ÷ target tok/s at ~${n} ≥ 1.6`, speed, speed >= 1.6);
  const ttft = get('speculative', n).ttft_ms / get('target', n).ttft_ms;
  barIf(`speculative ÷ target TTFT at ~${n} ≤ 1.1`, ttft, ttft <= 1.1);
}
for (const [name, b] of Object.entries(bars)) console.log(`${b.pass ? 'PASS' : 'FAIL'}  ${name}: ${b.value}`);
cli.writeJson('docs/bench/context.json', { prompts_per_length: N, new_tokens: NEW_TOKENS, rows, bars });
process.exit(Object.values(bars).every((b) => b.pass) ? 0 : 1);
