/**
 * The chat-following training mix: every named training story becomes, twice, the assistant's reply to a request
 * built from its own facts (chat-requests.ts) that asks for its character by a new name (from RENAMES, the story
 * renamed to match), rendered with the bundled chat template, with a loss mask on the reply alone. Renamed because
 * TinyStories' names are so few (Lily, Tom, Tim, …) that with the stories' own names the cheapest way to fit the
 * data is to ignore the request and say "Lily" (runs 1 and 2 in scripts/models/README.md). For the same reason the reply's tokens that spell a requested fact
 * (the name, the object, the kind, the place) weigh more in the loss: they are a few percent of a story's tokens, and
 * a first run with every reply token weighing the same had not learnt to copy them after 1,500 requests seen (6 of 20
 * held-out replies named the character, those named Lily or Tim). Only a fact's first mention in the reply has to be
 * copied from the request (every later one can copy the reply itself), so the first has its own weight, FIRST_WEIGHT,
 * beside the later ones' COPY_WEIGHT.
 */
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { factsOf, requestsFor, type ChatRequest } from './chat-requests.ts';

const BOS = 1,
  EOS = 2,
  IM_END = 4;

/**
 * Frequent TinyStories names (none asked for by the held-out requests). Moving characters between these teaches the
 * model to override its prior for the names it has seen most (Lily, Tim), which the unusual names of RENAMES alone
 * did not (run 4 in scripts/models/README.md: unseen names copied, common ones not).
 */
const COMMON = (
  'John Joe Bob Andy Molly Grace Mary Anna Sophie Rosie Polly Emma Bobby Alex Susie Lisa Jimmy Jim Jill James ' +
  'Jake Henry Gary Fred Emily Danny Cindy Bella Ann'
).split(' ');

/** Names a renamed copy may take: none of them is a name of the held-out chat requests (a test checks). */
export const RENAMES = [
  ...COMMON,
  ...COMMON,
  ...(
    'Ava Ben Cleo Dan Ella Gus Hana Ivan Jade Kai Luna Milo Nora Omar Pia Quinn Rosa Tara Uma Vic Wren Xena Yara ' +
    'Zane Abby Bruno Cora Dex Eva Felix Gina Hugo Iris Kira Leo Maya Nico Olive Pete Ruby Seth Tess Ugo Vera Will ' +
    'Zoe Alma Bea Coco Drew Emil Faye Gabe Hope Ida Joel Liam Mae Ned Opal Paul Rhea Stan Tia Ursa Vince Wade Yuki ' +
    'Zara Amir Beth Carl Dora Eli Fern Glen Hazel Ike Juno Kent Lola Nell Otto Reed Sky Theo Val Walt Ada Biff Cal ' +
    'Dot Enzo Flo Gwen Hal Ivy Jax Kim Lars Mona Nate Oona Pip Rex Sid Tilly Wally Zed'
  ).split(' '),
];

/** Loss weight of a reply token in a later mention of one of the request's facts (an ordinary reply token weighs 1). */
export const COPY_WEIGHT = 8;
/**
 * Loss weight of the tokens of a requested fact's first mention in the reply: the ones copied from the request. The
 * same as the later mentions' (run 6, the best measured): run 7 with 64 here and 2 above copied no better and lost
 * perplexity (scripts/models/README.md).
 */
export const FIRST_WEIGHT = 8;

export interface ChatMix {
  ids: Uint16Array;
  /**
   * The loss weight of predicting each token: 0 on the request, 1 on the reply and its <|im_end|>, FIRST_WEIGHT on
   * the first mention of each requested fact in the reply, COPY_WEIGHT on the tokens of later mentions.
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

/** The first index at which `part` occurs in `whole` as a contiguous run, or −1. */
function indexOf(whole: readonly number[], part: readonly number[]): number {
  for (let i = 0; i + part.length <= whole.length; i++) if (part.every((t, j) => whole[i + j] === t)) return i;
  return -1;
}

/** The loss weights of a requested fact's mentions in a reply: its first (copied from the request) and the later ones. */
export interface FactWeights {
  first: number;
  later: number;
}

export function chatMix(
  tok: PreTrainedTokenizer,
  stories: readonly string[],
  perStory = 2,
  weight: FactWeights = { first: FIRST_WEIGHT, later: COPY_WEIGHT },
): ChatMix {
  const ids: number[] = [],
    mask: number[] = [];
  let examples = 0;
  const push = (req: ChatRequest, story: string) => {
    const prompt = tok.apply_chat_template(messages(req), { tokenize: false, add_generation_prompt: true }) as string;
    const head = tok.encode(prompt, { add_special_tokens: false });
    if (head[0] !== BOS) throw new Error('the chat template no longer opens with <s>');
    const reply = [...tok.encode(story, { add_special_tokens: false }), IM_END];
    const spelt = Object.values(req.facts)
      .filter((f): f is string => typeof f === 'string' && req.user.includes(f))
      .map((f) => tok.encode(` ${f}`, { add_special_tokens: false }));
    const asked = new Set(spelt.flat());
    const weights = reply.map((t) => (asked.has(t) ? weight.later : 1));
    for (const fact of spelt) {
      const at = indexOf(reply, fact);
      for (let j = 0; at >= 0 && j < fact.length; j++) weights[at + j] = weight.first;
    }
    ids.push(...head, ...reply, EOS);
    mask.push(...head.map(() => 0), ...weights, 0);
    examples++;
  };
  stories.forEach((story, i) => {
    const name = factsOf(story).name;
    if (!name) return;
    for (let c = 0; c < perStory; c++) {
      let to = RENAMES[(i * 37 + c * 11 + 3) % RENAMES.length]!;
      if (to === name) to = RENAMES[(i * 37 + c * 11 + 4) % RENAMES.length]!;
      const renamed = rename(story, name, to);
      // Only a request that asks for the new name teaches anything.
      const asking = requestsFor(renamed, i * 3 + c, 8).find((r) => r.user.includes(to));
      if (asking) push(asking, renamed);
    }
  });
  return { ids: Uint16Array.from(ids), mask: Uint8Array.from(mask), examples, lossTokens: mask.filter((w) => w > 0).length };
}
