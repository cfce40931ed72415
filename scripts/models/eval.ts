/**
 * `npm run models:eval`: the two numbers that decide whether speculation pays on the bundled pair, measured side by
 * side in one run, plus held-out perplexity of both models.
 *  - acceptance on ≥ 50 held-out prompts, 48 new tokens each, greedy speculative loop at k = 4 (the engine's own
 *    step code, in-process): accepted/proposed (vLLM) and per-token α = accepted / (accepted + rejections);
 *  - cost ratio: mean target / draft time of a 1-token decode at a 128-token context, in the loop's pattern (one target
 *    step, then k draft steps), with the strict 1:1 alternation and warm draft blocks reported beside it.
 *  - chat following: the greedy reply to each held-out chat request ("Tell me a story about a dog named Spot who
 *    finds a ball.", built from validation stories, at most two per name) names the character / mentions the object;
 *    the replies come from the speculative loop, which is token-identical to the target's greedy decoding, so the
 *    same run gives α on chat prompts; a teacher-forced copy probe beside it (no bar) sees learning sooner.
 * Prints JSON and writes it to results/models-eval.json (with --save to docs/bench/models-eval.json, which the model
 * cards quote); exits 1 when a bar in BARS is missed.
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { StreamState } from '../../src/engine/speculation/stream-state.ts';
import { logProb } from '../../src/lib/stats.ts';
import { argmax } from '../../src/engine/sampling/index.ts';
import { benchCli, DRAFT_DIR, TARGET_DIR } from '../bench/cli.ts';
import { heldoutChat, heldoutPrompts, heldoutStories } from '../bench/heldout.ts';
import { follows } from './chat-requests.ts';
import { PromptCodec } from '../../src/engine/prompt.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

/**
 * α on plain and chat prompts; the draft pass at most 0.12 of a target pass in the loop's pattern; target perplexity
 * within 5 % of the pair before chat training (16.85); chat replies that name the character and mention the object.
 */
const BARS = { alpha: 0.82, costRatio: 1 / 0.12, targetPplMax: 16.85 * 1.05, chatNamed: 0.8, chatObject: 0.6 };
const cli = benchCli('models:eval', {
  prompts: '60',
  'new-tokens': '48',
  'chat-tokens': '256',
  k: '4',
  threads: '2',
  target: TARGET_DIR,
  draft: DRAFT_DIR,
});
const { target: targetDir, draft: draftDir } = cli.opts;
const nPrompts = cli.num('prompts');
const newTokens = cli.num('new-tokens');
const K = cli.num('k');
const threads = cli.num('threads');
const chatTokens = cli.num('chat-tokens');

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
  let nll = 0,
    count = 0;
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

/** Greedy speculative decoding of each prompt (ids) for up to `maxNew` tokens: the replies and the loop's counts. */
async function speculate(promptIds: readonly number[][], maxNew: number) {
  let proposed = 0,
    accepted = 0,
    rejections = 0,
    rounds = 0,
    produced = 0;
  const replies: number[][] = [];
  for (const ids of promptIds) {
    const s = new StreamState(models, ids, 'speculative', { ...SAMPLING_DEFAULTS, seed: 0 }, eos, 512);
    const reply: number[] = [];
    while (reply.length < maxNew) {
      const r = await s.step(K, maxNew - reply.length);
      if (r.prefill) continue;
      if (r.proposed > 0) {
        rounds++;
        proposed += r.proposed;
        accepted += r.accepted;
        if (r.accepted < r.proposed) rejections++;
      }
      reply.push(...r.tokens);
      if (r.eos) break;
    }
    produced += reply.length;
    replies.push(reply);
  }
  return {
    replies,
    counts: {
      rounds,
      proposed,
      accepted,
      rejections,
      acceptance_rate: accepted / proposed,
      alpha: accepted / (accepted + rejections),
      tokens_per_target_pass: produced / rounds,
    },
  };
}

async function acceptance() {
  const prompts = heldoutPrompts().slice(0, nPrompts);
  const { counts } = await speculate(
    prompts.map((p) => tok.encode(p)),
    newTokens,
  );
  return { prompts: prompts.length, new_tokens_each: newTokens, k: K, ...counts };
}

/** Chat requests through the chat template as the server renders them; replies decoded and checked for the facts. */
async function chatFollowing() {
  const codec = await PromptCodec.load(targetDir);
  const requests = heldoutChat();
  const { replies, counts } = await speculate(
    requests.map((r) => codec.encode({ messages: [{ role: 'user', content: r.user }] })),
    chatTokens,
  );
  const scored = requests.map((r, i) => {
    const reply = tok.decode(replies[i]!, { skip_special_tokens: true });
    return { ...r, ...follows(reply, { name: r.name, object: r.object }), reply };
  });
  return {
    requests: requests.length,
    max_new_tokens: chatTokens,
    named: scored.filter((s) => s.name).length / scored.length,
    object_mentioned: scored.filter((s) => s.object).length / scored.length,
    k: K,
    ...counts,
    examples: scored.slice(0, 3).map((s) => ({ request: s.user, reply: s.reply })),
  };
}

/**
 * Teacher-forced copy probe (informational, no bar): each held-out request as the prompt and its own story as the
 * reply; at the story's first mention of the requested name and object, is the fact's first token the target's
 * top-1, and at what loss. It moves long before greedy replies do (scripts/models/README.md), so a chat-training
 * run can be judged from a checkpoint's export in seconds.
 */
async function copyProbe() {
  const codec = await PromptCodec.load(targetDir);
  const V = target.info.vocabSize;
  const facts = { name: { n: 0, top1: 0, nll: 0 }, object: { n: 0, top1: 0, nll: 0 } };
  for (const r of heldoutChat()) {
    const head = codec.encode({ messages: [{ role: 'user', content: r.user }] });
    const reply = tok.encode(r.story, { add_special_tokens: false }).slice(0, 200);
    const logits = await target.forward(target.newCache(), [...head, ...reply]);
    for (const kind of ['name', 'object'] as const) {
      const t = tok.encode(` ${r[kind]}`, { add_special_tokens: false });
      const at = reply.findIndex((_, j) => t.every((id, k) => reply[j + k] === id));
      if (at < 0) continue;
      const row = logits.subarray((head.length + at - 1) * V, (head.length + at) * V);
      const f = facts[kind];
      f.n++;
      if (argmax(row) === t[0]) f.top1++;
      f.nll -= logProb(row, t[0]!);
    }
  }
  const summary = (f: { n: number; top1: number; nll: number }) => ({ mentions: f.n, top1: f.top1 / f.n, mean_nll: f.nll / f.n });
  return { name: summary(facts.name), object: summary(facts.object) };
}

/**
 * 1-token decodes at a 128-token context, timed in the pattern the speculative loop runs them: one target pass, then
 * K draft steps in a row. The bar uses this pattern. The draft's weights (5.8 MB, most of it the 8,192-row LM head)
 * sit in L3 while it runs but are evicted by each target pass, so its first step of a round is the slowest; the
 * strict 1:1 alternation (every draft step cold) and back-to-back blocks (every step warm) are reported beside it.
 */
async function costRatio(reps = 200) {
  const ctx = tok.encode(heldoutStories()[0]!).slice(0, 128);
  const caches = [target.newCache(), draft.newCache()] as const;
  await target.forward(caches[0], ctx);
  await draft.forward(caches[1], ctx);
  const step = async (i: 0 | 1, r: number) => {
    const t0 = performance.now();
    await [target, draft][i]!.forward(caches[i], [ctx[r % ctx.length]!]);
    const ms = performance.now() - t0;
    caches[i].truncate(128);
    return ms;
  };
  // draftsPerTarget drafts after each target step; the first 20 rounds warm ORT's allocator and are not counted.
  const pattern = async (draftsPerTarget: number) => {
    const sum = [0, 0],
      n = [0, 0];
    for (let r = 0; r < reps + 20; r++) {
      const t = await step(0, r);
      let d = 0;
      for (let j = 0; j < draftsPerTarget; j++) d += await step(1, r + j);
      if (r < 20) continue;
      sum[0]! += t;
      n[0]!++;
      sum[1]! += d;
      n[1]! += draftsPerTarget;
    }
    const target_step_ms = sum[0]! / n[0]!,
      draft_step_ms = sum[1]! / n[1]!;
    return { target_step_ms, draft_step_ms, ratio: target_step_ms / draft_step_ms };
  };
  const inLoop = await pattern(K);
  return {
    context: 128,
    reps,
    pattern: `one target step, then ${K} draft steps, as at k = ${K}`,
    ...inLoop,
    alternating_1_to_1: await pattern(1),
    draft_warm_blocks: await pattern(16),
  };
}

const valText = heldoutStories().slice(0, 60).join('\n');
const valIds = tok.encode(valText).slice(0, 8192);
const result = {
  target: targetDir,
  draft: draftDir,
  threads,
  heldout: { tokens: valIds.length, target_ppl: await perplexity(target, valIds), draft_ppl: await perplexity(draft, valIds) },
  acceptance: await acceptance(),
  chat: await chatFollowing(),
  copy_probe: await copyProbe(),
  cost: await costRatio(),
  bars: BARS,
};
const misses = [
  result.acceptance.alpha < BARS.alpha && `α on plain prompts ${result.acceptance.alpha.toFixed(3)} < ${BARS.alpha}`,
  result.chat.alpha < BARS.alpha && `α on chat prompts ${result.chat.alpha.toFixed(3)} < ${BARS.alpha}`,
  result.cost.ratio < BARS.costRatio &&
    `draft pass ${(1 / result.cost.ratio).toFixed(3)} of a target pass > ${(1 / BARS.costRatio).toFixed(2)}`,
  result.heldout.target_ppl > BARS.targetPplMax &&
    `target perplexity ${result.heldout.target_ppl.toFixed(2)} > ${BARS.targetPplMax.toFixed(2)}`,
  result.heldout.target_ppl >= result.heldout.draft_ppl && 'the target is no better than the draft on held-out text',
  result.chat.named < BARS.chatNamed && `chat replies naming the character ${result.chat.named.toFixed(2)} < ${BARS.chatNamed}`,
  result.chat.object_mentioned < BARS.chatObject &&
    `chat replies mentioning the object ${result.chat.object_mentioned.toFixed(2)} < ${BARS.chatObject}`,
].filter((m): m is string => typeof m === 'string');
const pass = misses.length === 0;
console.log(JSON.stringify({ ...result, pass, misses }, null, 2));
cli.writeJson('docs/bench/models-eval.json', { ...result, pass, misses });
for (const m of misses) console.error(`models:eval: missed: ${m}`);
process.exit(pass ? 0 : 1);
