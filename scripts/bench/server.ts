/**
 * `npm run bench:server`: the cost of the server around the engine. The same prompts are streamed through the
 * WebSocket API and through the engine directly, alternating prompt by prompt in one process on one engine, so
 * both see the same machine. Bar (exit 1 if missed): server tokens/s ≥ 0.95 of the engine's. Prints the TTFT
 * overhead (server − engine, client-side) in ms. Writes results/server.json (--save: docs/bench/server.json).
 */
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { configFrom } from '../../src/config/index.ts';
import { createEngine, DEFAULT_ENGINE_OPTIONS, type GenerateRequest } from '../../src/engine/index.ts';
import { createMetrics } from '../../src/metrics/index.ts';
import { createServer, StreamRecorder } from '../../src/server/index.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutPrompts } from './heldout.ts';
import { dist, mean } from '../../src/lib/stats.ts';
import { table } from './table.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

const cli = benchCli('bench:server', { prompts: '20', 'new-tokens': '64', target: TARGET_DIR, draft: DRAFT_DIR });
const N = cli.num('prompts');
const MAX_TOKENS = cli.num('new-tokens');
const { target: TARGET, draft: DRAFT } = cli.opts;

const engine = await createEngine({
  ...DEFAULT_ENGINE_OPTIONS,
  targetPath: TARGET,
  draftPath: DRAFT,
  threads: 1,
  maxRunning: 2,
  maxQueue: 4,
  queueTimeoutMs: 60_000,
  maxPromptTokens: 512,
});
const config = configFrom({ port: 0, wsHeartbeatMs: 0 });
const logger = pino({ level: 'silent' });
const server = createServer({
  engine,
  config,
  metrics: createMetrics({ stats: () => engine.stats() }),
  logger,
  recorder: new StreamRecorder({ capacity: 100, logPath: undefined, logger }),
});
const { url } = await server.listen(0, '127.0.0.1');
const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/stream`);
await new Promise((r, j) => {
  ws.once('open', r);
  ws.once('error', j);
});

interface Run {
  tokens: number;
  ms: number;
  ttft: number;
}

async function viaEngine(prompt: string): Promise<Run> {
  const t0 = performance.now();
  let ttft = -1,
    tokens = 0;
  const req: GenerateRequest = {
    input: { prompt },
    maxTokens: MAX_TOKENS,
    sampling: SAMPLING_DEFAULTS,
    stop: [],
    mode: 'speculative',
    k: 'auto',
    ignoreEos: true,
  };
  for await (const ev of engine.generate(req)) {
    if (ev.type !== 'tokens' || ev.tokens.length === 0) continue;
    if (ttft < 0) ttft = performance.now() - t0;
    tokens += ev.tokens.length;
  }
  return { tokens, ms: performance.now() - t0, ttft };
}

let seq = 0;
function viaSocket(prompt: string): Promise<Run> {
  const id = `b${seq++}`;
  const t0 = performance.now();
  let ttft = -1,
    tokens = 0;
  return new Promise((resolve, reject) => {
    const onMessage = (data: Buffer) => {
      const f = JSON.parse(String(data)) as { type: string; id?: string; tokens?: unknown[]; message?: string };
      if (f.id !== id) return;
      if (f.type === 'token' && f.tokens?.length) {
        if (ttft < 0) ttft = performance.now() - t0;
        tokens += f.tokens.length;
      } else if (f.type === 'done') {
        ws.off('message', onMessage);
        resolve({ tokens, ms: performance.now() - t0, ttft });
      } else if (f.type === 'error') {
        ws.off('message', onMessage);
        reject(new Error(f.message));
      }
    };
    ws.on('message', onMessage);
    ws.send(
      JSON.stringify({
        type: 'generate',
        id,
        prompt,
        max_tokens: MAX_TOKENS,
        temperature: 0,
        mode: 'speculative',
        k: 'auto',
        ignore_eos: true,
      }),
    );
  });
}

const prompts = heldoutPrompts().slice(0, N);
await viaEngine(prompts[0]!); // warm-up
await viaSocket(prompts[0]!);
const runs = { engine: [] as Run[], server: [] as Run[] };
for (const [i, p] of prompts.entries()) {
  // Alternate which goes first so neither always follows the other.
  if (i % 2) {
    runs.server.push(await viaSocket(p));
    runs.engine.push(await viaEngine(p));
  } else {
    runs.engine.push(await viaEngine(p));
    runs.server.push(await viaSocket(p));
  }
}
const tps = (rs: Run[]) => rs.reduce((a, r) => a + r.tokens, 0) / (rs.reduce((a, r) => a + r.ms, 0) / 1000);
const rows = (['engine', 'server'] as const).map((name) => {
  const ttft = dist(runs[name].map((r) => r.ttft));
  return {
    path: name === 'engine' ? 'engine.generate() direct' : 'WebSocket /v1/stream',
    'tok/s': tps(runs[name]),
    'TTFT mean ms': mean(runs[name].map((r) => r.ttft)),
    'TTFT p50': ttft.at(50),
    'TTFT p95': ttft.at(95),
  };
});
const ratio = tps(runs.server) / tps(runs.engine);
const ttftOverhead = mean(runs.server.map((r, i) => r.ttft - runs.engine[i]!.ttft));
console.log(table(rows));
console.log(
  `\nserver/engine tokens/s = ${ratio.toFixed(3)}; TTFT overhead (server − engine) = ${ttftOverhead.toFixed(2)} ms mean over ${prompts.length} prompts`,
);
const pass = ratio >= 0.95;
console.log(`${pass ? 'PASS' : 'FAIL'}  server tokens/s ≥ 0.95 of the engine's`);
cli.writeJson('docs/bench/server.json', {
  prompts: prompts.length,
  max_tokens: MAX_TOKENS,
  rows,
  ratio,
  ttft_overhead_ms: ttftOverhead,
  pass,
});
ws.close();
await server.shutdown(0);
await engine.close();
process.exit(pass ? 0 : 1);
