/**
 * `npm run models:eval`: the two numbers that decide whether speculation pays on the bundled pair, measured side by
 * side in one run, plus held-out perplexity of both models.
 *  - acceptance on ≥ 50 held-out prompts, 48 new tokens each, greedy speculative loop at k = 4 (the engine's own
 *    step code, in-process): accepted/proposed (vLLM) and per-token α = accepted / (accepted + rejections);
 *  - cost ratio: mean target / draft time of a 1-token decode at a 128-token context, interleaved.
 * Prints JSON; exits 1 when α < 0.75 or the cost ratio < 6.
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { logProb } from '../bench/stats.ts';
import { StreamState } from '../../src/engine/spec/stream-state.ts';
import { DRAFT_DIR, TARGET_DIR, heldoutPrompts, validStories } from './heldout.ts';

const BARS = { alpha: 0.75, costRatio: 6 };
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const targetDir = args.get('target') ?? TARGET_DIR;
const draftDir = args.get('draft') ?? DRAFT_DIR;
const nPrompts = Number(args.get('prompts') ?? 60);
const newTokens = Number(args.get('new-tokens') ?? 48);
const K = Number(args.get('k') ?? 4);
const threads = Number(args.get('threads') ?? 2);

env.allowRemoteModels = false;
env.useFSCache = false;
const tok = await AutoTokenizer.from_pretrained(targetDir);
const load = { dtype: 'fp32' as const, threads };
// As the engine runs them: the draft single-threaded (its ops are too small to split), the target on `threads`.
const [target, draft] = [await DecoderModel.load(targetDir, load), await DecoderModel.load(draftDir, { ...load, threads: 1 })];
const models = { target, draft };
const eos = new Set(target.info.eosIds);

/** Held-out perplexity over the first `maxTokens` tokens of the validation stories, in 256-token windows. */
async function perplexity(m: DecoderModel, ids: number[], window = 256): Promise<number> {
  let nll = 0, count = 0;
  for (let s = 0; s + 1 < ids.length; s += window) {
    const chunk = ids.slice(s, s + window + 1);
    const logits = await m.forward(m.newCache(), chunk.slice(0, -1));
    const V = m.info.vocabSize;
    for (let i = 0; i + 1 < chunk.length; i++) {
      nll -= logProb(logits.subarray(i * V, (i + 1) * V), chunk[i + 1]!);
      count++;
    }
  }
  return Math.exp(nll / count);
}

async function acceptance() {
  let proposed = 0, accepted = 0, rejections = 0, rounds = 0, produced = 0;
  const prompts = heldoutPrompts().slice(0, nPrompts);
  for (const prompt of prompts) {
    const s = new StreamState(models, tok.encode(prompt), 'speculative', { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1, seed: 0 }, eos, 512);
    let made = 0;
    while (made < newTokens) {
      const r = await s.step(K, newTokens - made);
      if (r.prefill) continue;
      if (r.proposed > 0) {
        rounds++; proposed += r.proposed; accepted += r.accepted;
        if (r.accepted < r.proposed) rejections++;
      }
      made += r.tokens.length;
      if (r.eos) break;
    }
    produced += made;
  }
  return { prompts: prompts.length, new_tokens_each: newTokens, k: K, rounds, proposed, accepted, rejections,
    acceptance_rate: accepted / proposed, alpha: accepted / (accepted + rejections),
    tokens_per_target_pass: produced / rounds };
}

/** 1-token decode at a 128-token context, alternating target and draft so both see the same machine state. */
async function costRatio(reps = 200) {
  const ctx = tok.encode(validStories()[0]!).slice(0, 128);
  const caches = [target.newCache(), draft.newCache()];
  await target.forward(caches[0]!, ctx);
  await draft.forward(caches[1]!, ctx);
  const ms = [0, 0];
  for (let r = 0; r < reps + 20; r++) {
    for (const [i, m] of [target, draft].entries()) {
      const t0 = performance.now();
      await m.forward(caches[i]!, [ctx[r % ctx.length]!]);
      if (r >= 20) ms[i]! += performance.now() - t0; // the first rounds warm ORT's allocator
      caches[i]!.truncate(128);
    }
  }
  return { context: 128, reps, target_step_ms: ms[0]! / reps, draft_step_ms: ms[1]! / reps, ratio: ms[0]! / ms[1]! };
}

const valText = validStories().slice(0, 60).join('\n');
const valIds = tok.encode(valText).slice(0, 8192);
const result = {
  target: targetDir, draft: draftDir, threads,
  heldout: { tokens: valIds.length, target_ppl: await perplexity(target, valIds), draft_ppl: await perplexity(draft, valIds) },
  acceptance: await acceptance(),
  cost: await costRatio(),
  bars: BARS,
};
const pass = result.acceptance.alpha >= BARS.alpha && result.cost.ratio >= BARS.costRatio && result.heldout.target_ppl < result.heldout.draft_ppl;
const report = JSON.stringify({ date: new Date().toISOString(), ...result, pass }, null, 2);
console.log(report);
const out = args.get('out');
if (out) { mkdirSync(dirname(out), { recursive: true }); writeFileSync(out, report + '\n'); }
process.exit(pass ? 0 : 1);
