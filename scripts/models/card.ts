/**
 * Writes the model cards (README.md in each bundled folder) from what the pipeline measured: the trainers'
 * summaries (work/<kind>/ and work/<kind>-chat/train_summary.json, kept next to the card as training.json) and
 * `models:eval`'s JSON (docs/bench/models-eval.json), plus greedy samples (a completion of "Once upon a time" and
 * a reply to a chat request) taken with the exported ONNX model.
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecoderModel } from '../../src/engine/model/decoder.ts';
import { PromptCodec } from '../../src/engine/prompt.ts';
import { StreamState } from '../../src/engine/speculation/stream-state.ts';
import { DRAFT_DIR, ROOT, TARGET_DIR } from '../bench/cli.ts';
import { SAMPLING_DEFAULTS } from '../../src/server/to-engine.ts';

const work = process.argv[2] ?? join(ROOT, 'scripts', 'models', 'work');
/** Optional notes about a run that its summary cannot show (e.g. a schedule changed on resume): CARD_NOTE_TARGET / _DRAFT. */
const NOTES = { target: process.env['CARD_NOTE_TARGET'], draft: process.env['CARD_NOTE_DRAFT'] };
env.allowRemoteModels = false;
env.useFSCache = false;
const evalReport = JSON.parse(readFileSync(join(ROOT, 'docs', 'bench', 'models-eval.json'), 'utf8'));
const tok = await AutoTokenizer.from_pretrained(TARGET_DIR);

const CHAT_SAMPLE = 'Tell me a story about a dog named Max who finds a red ball.';

async function greedySample(dir: string, prompt: string, n = 96): Promise<string> {
  return prompt + (await greedyIds(dir, tok.encode(prompt), n));
}

async function greedyIds(dir: string, promptIds: number[], n: number): Promise<string> {
  const m = await DecoderModel.load(dir, { dtype: 'fp32', threads: 2 });
  const s = new StreamState(
    { target: m, draft: null },
    promptIds,
    'target',
    { ...SAMPLING_DEFAULTS, seed: 0 },
    new Set(m.info.eosIds),
    512,
  );
  const ids: number[] = [];
  while (ids.length < n) {
    const r = await s.step(0, n - ids.length);
    ids.push(...r.tokens);
    if (r.eos) break;
  }
  return tok.decode(ids, { skip_special_tokens: true });
}

/** The base run's summary (work/<kind>/) if it is there, else the one kept beside the card from an earlier build. */
function baseSummary(kind: 'target' | 'draft', dir: string) {
  const fresh = join(work, kind, 'train_summary.json');
  if (existsSync(fresh)) return JSON.parse(readFileSync(fresh, 'utf8'));
  const kept = JSON.parse(readFileSync(join(dir, 'training.json'), 'utf8'));
  return kept.base ?? kept;
}

function card(kind: 'target' | 'draft', dir: string, sample: string, chatSample: string): string {
  const base = baseSummary(kind, dir);
  const summary = JSON.parse(readFileSync(join(work, `${kind}-chat`, 'train_summary.json'), 'utf8'));
  writeFileSync(join(dir, 'training.json'), `${JSON.stringify({ base, chat: summary }, null, 1)}\n`);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const e = evalReport;
  const ppl = kind === 'target' ? e.heldout.target_ppl : e.heldout.draft_ppl;
  const data =
    kind === 'target'
      ? "two stages. Base: TinyStories train split from `../shared/corpus` (5,117 stories, 1.21M tokens), each story framed as `<s> story </s>`, plus a chat-shaped copy of every sixth story, in 512-token windows. Chat: the base model continued on the chat mix (`chat-data.ts`: every story as the reply to requests built from its own facts — its character's name and kind, an object, a place — in varied phrasings, a third with a system message, plus a renamed copy of every named story; loss on the reply only) together with the plain stories; reply tokens that spell a requested fact weigh 4 in the loss."
      : "two stages, both on the target's own outputs (distillation): base, for every training document the target's greedy continuation of an opening of 4–64 tokens (72 tokens) and one in six again sampled at temperature 1, twice, plus the corpus; then continued on the chat-trained target's continuations and its greedy replies to half of the chat mix's requests (`distill_data.py --chat`), twice, plus the corpus.";
  return `# ${cfg._name_or_path ?? dir.split('/').at(-1)}

${kind === 'target' ? 'The **target** model bundled with specd: the accuracy reference whose output speculative decoding reproduces exactly.' : 'The **draft** model bundled with specd: proposes tokens for the target to verify. Trained to agree with the target, not merely on the corpus.'}
Built by \`npm run models:build\` (scripts/models/); reproducible from the seed below.

| | |
|---|---|
| architecture | Llama: RMSNorm, RoPE (θ = ${cfg.rope_theta}), SwiGLU, grouped-query attention; tied input/output embedding |
| shape | ${cfg.hidden_size} wide, ${cfg.num_hidden_layers} layers, ${cfg.num_attention_heads} heads, ${cfg.num_key_value_heads} KV heads × ${cfg.head_dim}, MLP ${cfg.intermediate_size}, context ${cfg.max_position_embeddings} (trained on 512-token windows) |
| parameters | ${summary.params.toLocaleString('en-US')} |
| tokenizer | byte-level BPE, ${cfg.vocab_size} tokens, trained by \`tokenizer_train.py\` on the corpus; shared byte for byte by target and draft; ChatML chat template |
| data | ${data} |
| tokens seen | base ${(base.tokens_seen / 1e6).toFixed(2)}M (${base.steps} steps × ${base.batch} × ${base.seq}), then chat ${(summary.tokens_seen / 1e6).toFixed(2)}M (${summary.steps} steps × ${summary.batch} × ${summary.seq}) |
| training | ${base.train_minutes} + ${summary.train_minutes} min on a 2-core x86-64 CPU (torch 1.13, fp32), AdamW cosine to 10% (lr ${base.lr}, then ${summary.lr}), seed ${summary.seed} |
| held-out loss | ${summary.heldout_loss} (perplexity ${summary.heldout_ppl}) on the TinyStories validation file (trainer, first 200k tokens) |
| held-out perplexity (models:eval) | ${ppl.toFixed(2)} (ONNX, ${e.heldout.tokens} tokens of held-out stories) |
| chat following (models:eval) | ${kind === 'target' ? `greedy replies to ${e.chat.requests} held-out requests ("Tell me a story about a dog named Spot who finds a ball.", built from validation stories, at most two per name): name the character in **${(100 * e.chat.named).toFixed(0)} %**, mention the object in **${(100 * e.chat.object_mentioned).toFixed(0)} %**` : `α on those chat requests ${e.chat.alpha.toFixed(3)}`} |
| acceptance (models:eval) | accepted/proposed ${e.acceptance.acceptance_rate.toFixed(3)}; per-token α ${e.acceptance.alpha.toFixed(3)}; ${e.acceptance.tokens_per_target_pass.toFixed(2)} tokens per target pass (greedy, k = ${e.acceptance.k}, ${e.acceptance.prompts} held-out prompts × ${e.acceptance.new_tokens_each} tokens) |
| cost ratio (models:eval) | target ${e.cost.target_step_ms.toFixed(2)} ms / draft ${e.cost.draft_step_ms.toFixed(2)} ms per 1-token decode at a ${e.cost.context}-token context, timed as the loop runs them (${e.cost.pattern}) = **${e.cost.ratio.toFixed(1)}×**; strict 1:1 alternation (every draft step right after a target pass, its weights evicted from L3) ${e.cost.alternating_1_to_1.ratio.toFixed(1)}×; draft steps back to back ${e.cost.draft_warm_blocks.ratio.toFixed(1)}× |
| files | \`onnx/model.onnx\` (fp32, ${cfg.num_hidden_layers}-layer decoder with past: \`input_ids\`, \`attention_mask\`, \`position_ids\`, \`past_key_values.{i}.key\\|value\`, \`num_logits_to_keep\` (HF's: 0 = every row, N = the last N) → \`logits\`, \`present.{i}.key\\|value\`), \`onnx/model_quantized.onnx\` (the same with int8 weights, \`--dtype q8\`: \`scripts/models/quantize.py\`; \`npm run bench:q8\` compares the two), \`config.json\`, \`generation_config.json\`, tokenizer files, \`training.json\` (loss curve) |

${NOTES[kind] ? `Note: ${NOTES[kind]}\n\n` : ''}Export parity (ONNX Runtime vs torch logits, with and without a past) is checked by \`parity.ts\` at build time: max abs diff < 1e-3.

## Greedy sample

Prompt "Once upon a time", greedy, ${kind} alone:

> ${sample.replace(/\n/g, '\n> ')}

Chat request "${CHAT_SAMPLE}", greedy, ${kind} alone:

> ${chatSample.replace(/\n/g, '\n> ')}

Figures from \`models:eval\` run on ${e.date.slice(0, 10)}; rerun \`npm run models:eval\` to reproduce them.
`;
}

for (const [kind, dir] of [
  ['target', TARGET_DIR],
  ['draft', DRAFT_DIR],
] as const) {
  const codec = await PromptCodec.load(dir);
  const chatIds = codec.encode({ messages: [{ role: 'user', content: CHAT_SAMPLE }] });
  const chat = await greedyIds(dir, chatIds, 160);
  writeFileSync(join(dir, 'README.md'), card(kind, dir, await greedySample(dir, 'Once upon a time'), chat));
  console.log(`wrote ${join(dir, 'README.md')}`);
}
