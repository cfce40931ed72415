/**
 * `npm run bench:memory`: N sequential short generations; heap and RSS after the first `warm` must stay within
 * 10% at the end (caches freed per stream, nothing retained per request). Heap is measured after a forced GC
 * when node runs with --expose-gc; RSS includes the worker's ONNX Runtime arenas.
 */
import { createEngine, DEFAULT_ENGINE_OPTIONS, type Engine } from '../../src/engine/index.ts';
import { machineLine } from '../../src/lib/machine.ts';
import { DRAFT_DIR, TARGET_DIR } from './cli.ts';
import { heldoutPrompts } from './heldout.ts';

export interface MemoryReport {
  generations: number;
  warm: number;
  heapWarmMB: number;
  heapEndMB: number;
  rssWarmMB: number;
  rssEndMB: number;
  heapGrowth: number;
  rssGrowth: number;
}

export async function sequentialGenerations(engine: Engine, n: number, warm: number, prompts: string[]): Promise<MemoryReport> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const snap = () => {
    gc?.();
    const m = process.memoryUsage();
    return { heap: m.heapUsed / 2 ** 20, rss: m.rss / 2 ** 20 };
  };
  let base = snap();
  const modes = ['speculative', 'target', 'draft'] as const;
  for (let i = 0; i < n; i++) {
    if (i === warm) base = snap();
    for await (const _ of engine.generate({
      input: { prompt: prompts[i % prompts.length]! },
      maxTokens: 8,
      mode: modes[i % 3]!,
      k: 'auto',
      sampling: { temperature: i % 2 ? 0.8 : 0, topP: 0.95, topK: 0, minP: 0, repetitionPenalty: 1, seed: i },
      stop: [],
    })) {
      /* drain */
    }
  }
  const end = snap();
  return {
    generations: n,
    warm,
    heapWarmMB: base.heap,
    heapEndMB: end.heap,
    rssWarmMB: base.rss,
    rssEndMB: end.rss,
    heapGrowth: end.heap / base.heap - 1,
    rssGrowth: end.rss / base.rss - 1,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 1000);
  console.log(`bench:memory: ${machineLine()}`);
  const engine = await createEngine({
    ...DEFAULT_ENGINE_OPTIONS,
    targetPath: TARGET_DIR,
    draftPath: DRAFT_DIR,
    maxRunning: 1,
    maxQueue: 1,
    queueTimeoutMs: 60_000,
    maxPromptTokens: 512,
  });
  const r = await sequentialGenerations(engine, n, Math.round(n / 10), heldoutPrompts());
  await engine.close();
  console.log(JSON.stringify(r, null, 2));
  const ok = r.heapGrowth < 0.1 && r.rssGrowth < 0.1;
  console.log(
    `${ok ? 'PASS' : 'FAIL'}  heap ${(r.heapGrowth * 100).toFixed(1)}%, RSS ${(r.rssGrowth * 100).toFixed(1)}% after the first ${r.warm}`,
  );
  process.exit(ok ? 0 : 1);
}
