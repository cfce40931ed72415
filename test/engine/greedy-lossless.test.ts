import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineEvent, type GenerateRequest } from '../../src/engine/index.ts';
import { describeWithModels, engineOptions, GREEDY, PROMPTS, TARGET_DIR } from '../helpers/models.ts';

const MAX_TOKENS = 24;

async function tokensOf(engine: Engine, req: Partial<GenerateRequest> & Pick<GenerateRequest, 'input'>): Promise<number[]> {
  const ids: number[] = [];
  let last: EngineEvent | undefined;
  for await (const ev of engine.generate({ maxTokens: MAX_TOKENS, sampling: GREEDY, stop: [], mode: 'speculative', k: 'auto', ...req })) {
    if (ev.type === 'tokens') ids.push(...ev.tokens.map((t) => t.id));
    last = ev;
  }
  expect(last?.type).toBe('done');
  return ids;
}

describeWithModels('greedy speculative decoding is lossless', () => {
  let engine: Engine;
  const reference = new Map<string, number[]>();

  beforeAll(async () => {
    engine = await createEngine(engineOptions({ maxRunning: 4, maxQueue: 64, queueTimeoutMs: 60_000, maxPromptTokens: 512 }));
    for (const p of PROMPTS) reference.set(p, await tokensOf(engine, { input: { prompt: p }, mode: 'target', k: 0 }));
  });
  afterAll(() => engine?.close());

  it('target mode matches transformers.js generate() greedy', async () => {
    env.allowRemoteModels = false;
    env.useFSCache = false;
    const tok = await AutoTokenizer.from_pretrained(TARGET_DIR);
    const model = await AutoModelForCausalLM.from_pretrained(TARGET_DIR, { dtype: 'fp32' });
    for (const p of PROMPTS) {
      const inputs = tok(p);
      const out = (await model.generate({ ...inputs, max_new_tokens: MAX_TOKENS, do_sample: false })) as { tolist(): bigint[][] };
      const generated = out.tolist()[0]!.slice(inputs.input_ids.dims[1]).map(Number);
      const eos = new Set([model.generation_config?.eos_token_id].flat());
      const firstEos = generated.findIndex((t) => eos.has(t));
      expect(reference.get(p), p).toEqual(firstEos >= 0 ? generated.slice(0, firstEos) : generated);
    }
    await model.dispose();
  });

  it('runs the pooled graph by default; the standard export gives the same greedy tokens', async () => {
    const info = (engine as Engine & { info(): { target: { layout: { file: string; pooled: boolean } } } }).info();
    expect(info.target.layout).toMatchObject({ file: 'onnx/model_pooled.onnx', pooled: true });
    const standard = await createEngine(engineOptions({ graph: 'standard', maxRunning: 4, maxQueue: 64, maxPromptTokens: 512 }));
    try {
      const layout = (standard as Engine & { info(): { target: { layout: { file: string } } } }).info().target.layout;
      expect(layout.file).toBe('onnx/model.onnx');
      for (const p of PROMPTS)
        expect(await tokensOf(standard, { input: { prompt: p }, mode: 'target', k: 0 }), p).toEqual(reference.get(p));
    } finally {
      await standard.close();
    }
  });

  for (const k of [1, 2, 4, 8, 'auto'] as const) {
    it(`speculative k=${k} is token-identical to target mode on ${PROMPTS.length} prompts`, async () => {
      for (const p of PROMPTS) expect(await tokensOf(engine, { input: { prompt: p }, k }), `${p} (k=${k})`).toEqual(reference.get(p));
    });
  }

  it('draft mode runs the draft alone and reports no proposals', async () => {
    const events: EngineEvent[] = [];
    for await (const ev of engine.generate({
      input: { prompt: PROMPTS[0]! },
      maxTokens: MAX_TOKENS,
      sampling: GREEDY,
      stop: [],
      mode: 'draft',
      k: 'auto',
    }))
      events.push(ev);
    const done = events.at(-1);
    expect(done?.type === 'done' && done.completionTokens).toBeGreaterThan(0);
    expect(done?.type === 'done' && done.speculative.proposed).toBe(0);
    expect(events.flatMap((e) => (e.type === 'tokens' ? e.tokens.map((t) => t.source) : [])).every((s) => s === 'draft')).toBe(true);
  });
});

describeWithModels('the bundled pair in int8 (--dtype q8)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await createEngine(engineOptions({ dtype: 'q8', maxRunning: 8, maxQueue: 64, queueTimeoutMs: 60_000, maxPromptTokens: 512 }));
  });
  afterAll(() => engine?.close());

  // int8 kernels round a verify pass's rows differently from a 1-token pass, so q8 speculative is not token-exact
  // (bench:q8 measures it); what holds is that it can only leave target mode where the target nearly ties.
  it('loads onnx/model_quantized.onnx; speculative leaves q8 target mode only at a near-tie', async () => {
    const info = (engine as Engine & { info(): { target: { layout: { file: string } } } }).info();
    expect(info.target.layout.file).toBe('onnx/model_quantized.onnx');
    const run = async (prompt: string, mode: 'target' | 'speculative') => {
      const out: { id: number; margin: number }[] = [];
      for await (const ev of engine.generate({
        input: { prompt },
        maxTokens: MAX_TOKENS,
        sampling: GREEDY,
        stop: [],
        mode,
        k: mode === 'target' ? 0 : 'auto',
        ignoreEos: true,
        logprobs: 2,
      }))
        if (ev.type === 'tokens')
          for (const t of ev.tokens) out.push({ id: t.id, margin: t.logprobs!.top[0]!.logprob - t.logprobs!.top[1]!.logprob });
      return out;
    };
    let equal = 0;
    for (const p of PROMPTS.slice(0, 8)) {
      const [target, spec] = await Promise.all([run(p, 'target'), run(p, 'speculative')]);
      const at = target.findIndex((t, j) => spec[j]!.id !== t.id);
      if (at < 0) equal++;
      else expect(target[at]!.margin, `${p}: parted at token ${at}`).toBeLessThan(0.05);
    }
    expect(equal).toBeGreaterThanOrEqual(4);
  }, 120_000);
});
