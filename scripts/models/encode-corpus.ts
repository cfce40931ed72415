/**
 * Tokenises the training and held-out text with the project's tokenizer (through transformers.js, the same code
 * that serves it) into flat uint16 token files the Python trainer memory-maps:
 *   train.bin  TinyStories train stories as <s> story </s>, plus a chat-shaped copy of ~1 in 6 stories
 *   valid.bin  the held-out validation stories, same framing (never trained on)
 *   prompts.json  held-out prompts (first sentence or two of validation stories) for distillation and eval
 *   chat.bin + chat.mask  the chat-following mix (chat-data.ts): requests built from each training story's own
 *                 facts, the story as the assistant's reply; the mask (one byte per token) marks the tokens the loss
 *                 is taken on, the assistant turn only
 */
import { AutoTokenizer, env } from '@huggingface/transformers';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promptsOf, validStories } from './heldout.ts';
import { chatMix } from './chat-data.ts';

env.allowRemoteModels = false;
env.useFSCache = false;

const [tokDir, corpusArg, out] = process.argv.slice(2);
if (!tokDir || !corpusArg || !out) throw new Error('usage: encode-corpus.ts <tokenizer dir> <corpus dir> <out dir>');
const corpus: string = corpusArg;
mkdirSync(out, { recursive: true });
const tok = await AutoTokenizer.from_pretrained(tokDir);
const BOS = 1,
  EOS = 2;

function trainStories(): string[] {
  const files = ['ts_train_head_cased.txt', 'ts_train_tail_truecased.txt'];
  return files
    .flatMap((f) => readFileSync(join(corpus, 'tinystories', f), 'utf8').split('<|endoftext|>'))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function chatPrompt(story: string, i: number): string {
  const name = /named (\w+)/.exec(story)?.[1];
  const asks = name
    ? [`Tell me a story about ${name}.`, `Write a short story about a character named ${name}.`, `Can you tell me a story about ${name}?`]
    : ['Tell me a story.', 'Write a short story for a child.', 'Tell me a bedtime story.'];
  return asks[i % asks.length]!;
}

function encodeDocs(docs: string[], chatEvery: number): Uint16Array {
  const ids: number[] = [];
  docs.forEach((story, i) => {
    ids.push(BOS, ...tok.encode(story, { add_special_tokens: false }), EOS);
    if (chatEvery > 0 && i % chatEvery === 0) {
      const text = tok.apply_chat_template(
        [
          { role: 'user', content: chatPrompt(story, i) },
          { role: 'assistant', content: story },
        ],
        { tokenize: false },
      ) as string;
      ids.push(...tok.encode(text, { add_special_tokens: false }), EOS);
    }
  });
  return Uint16Array.from(ids);
}

const stories = trainStories();
const train = encodeDocs(stories, 6);
const chat = chatMix(tok, stories);
writeFileSync(join(out, 'chat.bin'), Buffer.from(chat.ids.buffer));
writeFileSync(join(out, 'chat.mask'), Buffer.from(chat.mask.buffer));
const validDocs = validStories(corpus);
const valid = encodeDocs(validDocs, 0);
writeFileSync(join(out, 'train.bin'), Buffer.from(train.buffer));
writeFileSync(join(out, 'valid.bin'), Buffer.from(valid.buffer));
const prompts = promptsOf(validDocs);
writeFileSync(join(out, 'prompts.json'), JSON.stringify(prompts, null, 0));
console.log(
  JSON.stringify({
    train_tokens: train.length,
    chat_tokens: chat.ids.length,
    chat_examples: chat.examples,
    chat_loss_tokens: chat.lossTokens,
    valid_tokens: valid.length,
    valid_stories: validDocs.length,
    prompts: prompts.length,
  }),
);
