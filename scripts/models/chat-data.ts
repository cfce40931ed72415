/**
 * The chat-following training mix: every training story becomes the assistant's reply to requests built from its
 * own facts (chat-requests.ts), rendered with the bundled chat template, with a loss mask on the reply alone. A
 * named story is also used once with its character renamed (a name drawn from a fixed list, the request asking
 * for that name): TinyStories' names are so few (Lily, Tom, Tim, …) that without this the cheapest way to fit the
 * data is to ignore the request and say "Lily". For the same reason the reply's tokens that spell a requested fact
 * (the name, the object, the kind, the place) weigh COPY_WEIGHT in the loss: they are a few percent of a story's
 * tokens, and a first run with every reply token weighing the same had not learnt to copy them after 1,500
 * requests seen (6 of 20 held-out replies named the character, those named Lily or Tim).
 */
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { factsOf, requestsFor, type ChatRequest } from './chat-requests.ts';

const BOS = 1,
  EOS = 2,
  IM_END = 4;

const NAMES = (
  'Ava Ben Cleo Dan Ella Finn Gus Hana Ivan Jade Kai Luna Milo Nora Omar Pia Quinn Rosa Sam Tara Uma Vic Wren Xena ' +
  'Yara Zane Abby Bruno Cora Dex Eva Felix Gina Hugo Iris Jack Kira Leo Maya Nico Olive Pete Ruby Seth Tess Ugo ' +
  'Vera Will Zoe Alma Bea Coco Drew Emil Faye Gabe Hope Ida Joel Kate Liam Mae Ned Opal Paul Rhea Stan Tia Ursa ' +
  'Vince Wade Yuki Zara Amir Beth Carl Dora Eli Fern Glen Hazel Ike Juno Kent Lola Max Nell Otto Penny Reed Sky ' +
  'Theo Val Walt Ada Biff Cal Dot Enzo Flo Gwen Hal Ivy Jax Kim Lars Mona Nate Oona Pip Rex Sid Tilly Wally Zed'
).split(' ');

/** Loss weight of a reply token that spells one of the request's facts (an ordinary reply token weighs 1). */
export const COPY_WEIGHT = 4;

export interface ChatMix {
  ids: Uint16Array;
  /**
   * The loss weight of predicting each token: 0 on the request, 1 on the reply and its <|im_end|>, COPY_WEIGHT on
   * reply tokens that spell a requested fact.
   */
  mask: Uint8Array;
  examples: number;
  lossTokens: number;
}

/** The story with its character called `to` instead (whole words, possessives included). */
export function rename(story: string, from: string, to: string): string {
  return story.replace(new RegExp(`\\b${from}\\b`, 'g'), to);
}

function messages(req: ChatRequest) {
  return [...(req.system ? [{ role: 'system', content: req.system }] : []), { role: 'user', content: req.user }];
}

export function chatMix(tok: PreTrainedTokenizer, stories: readonly string[], perStory = 2): ChatMix {
  const ids: number[] = [],
    mask: number[] = [];
  let examples = 0;
  const push = (req: ChatRequest, story: string) => {
    const prompt = tok.apply_chat_template(messages(req), { tokenize: false, add_generation_prompt: true }) as string;
    const head = tok.encode(prompt, { add_special_tokens: false });
    if (head[0] !== BOS) throw new Error('the chat template no longer opens with <s>');
    const reply = [...tok.encode(story, { add_special_tokens: false }), IM_END];
    const asked = new Set(
      Object.values(req.facts)
        .filter((f): f is string => typeof f === 'string' && req.user.includes(f))
        .flatMap((f) => tok.encode(` ${f}`, { add_special_tokens: false })),
    );
    ids.push(...head, ...reply, EOS);
    mask.push(...head.map(() => 0), ...reply.map((t) => (asked.has(t) ? COPY_WEIGHT : 1)), 0);
    examples++;
  };
  stories.forEach((story, i) => {
    for (const req of requestsFor(story, i, perStory)) push(req, story);
    const name = factsOf(story).name;
    if (name) {
      let to = NAMES[(i * 31 + 7) % NAMES.length]!;
      if (to === name) to = NAMES[(i * 31 + 8) % NAMES.length]!;
      const renamed = rename(story, name, to);
      // The renamed copy only teaches anything if its request asks for the new name.
      const asking = requestsFor(renamed, i + 1_000_003, 6).find((r) => r.user.includes(to));
      if (asking) push(asking, renamed);
    }
  });
  return { ids: Uint16Array.from(ids), mask: Uint8Array.from(mask), examples, lossTokens: mask.filter((w) => w > 0).length };
}
