/** The chat-following data and its scoring (scripts/models/chat-requests.ts, chat-data.ts). */
import { AutoTokenizer } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { chatMix, rename, RENAMES } from '../../scripts/models/chat-data.ts';
import { evalRequestFor, factsOf, follows, requestsFor } from '../../scripts/models/chat-requests.ts';
import { heldoutChat } from '../../scripts/bench/heldout.ts';
import { tokenizerPath } from '../helpers/tokenizer-path.ts';

const STORY =
  'Once upon a time, there was a little dog named Spot. Spot liked to play in the park. One day, Spot found a red ball ' +
  'under a tree. He took the ball home and showed it to his mom. "Look, a ball!" said Spot.';

describe('facts of a story', () => {
  it('takes the named character, its kind, and the object and place it mentions most', () => {
    expect(factsOf(STORY)).toEqual({ name: 'Spot', kind: 'dog', object: 'ball', place: 'park' });
  });

  it('finds an unintroduced main character by the capitalised word the story never writes in lower case', () => {
    const f = factsOf('Tom had a kite. Tom ran to the hill with his kite. The kite flew high and Tom laughed.');
    expect(f.name).toBe('Tom');
    expect(f.object).toBe('kite');
    expect(factsOf('The sun was hot. The birds sang.').name).toBeUndefined(); // "The" is written in lower case too
  });

  it('builds requests the story satisfies, varied by story, and the evaluation form', () => {
    const reqs = requestsFor(STORY, 3, 3);
    expect(reqs.length).toBeGreaterThan(0);
    for (const r of reqs) expect(r.user).toMatch(/Spot|ball|park/);
    expect(new Set([0, 1, 2, 3, 4, 5].map((i) => requestsFor(STORY, i, 1)[0]!.user)).size).toBeGreaterThan(1);
    expect(evalRequestFor(STORY)?.user).toBe('Tell me a story about a dog named Spot who finds a ball.');
    expect(evalRequestFor('Once upon a time, there was a tree.')).toBeUndefined();
  });

  it('scores a reply by whole words: the name exactly, the object or its plural', () => {
    const facts = { name: 'Spot', object: 'box' };
    expect(follows('Spot found two boxes.', facts)).toEqual({ name: true, object: true });
    expect(follows('Spotty found a boxer.', facts)).toEqual({ name: false, object: false });
  });
});

describe('chat mix', () => {
  it('renders requests with the chat template and takes the loss on the reply and its <|im_end|> only', async () => {
    const tok = await AutoTokenizer.from_pretrained(tokenizerPath());
    // Distinct weights for a fact's first and later mentions, so the test tells them apart whatever the defaults.
    const weight = { first: 64, later: 2 };
    const mix = chatMix(tok, [STORY], 2, weight);
    expect(mix.ids.length).toBe(mix.mask.length);
    expect(mix.examples).toBe(2); // two renamed copies, each asking for its new name
    const docs: { ids: number[]; mask: number[] }[] = [];
    mix.ids.forEach((id, i) => {
      if (id === 1) docs.push({ ids: [], mask: [] });
      docs.at(-1)!.ids.push(id);
      docs.at(-1)!.mask.push(mix.mask[i]!);
    });
    for (const d of docs) {
      const prompt = tok.decode(d.ids.filter((_, i) => d.mask[i] === 0));
      const reply = tok.decode(d.ids.filter((_, i) => d.mask[i]! > 0));
      expect(prompt).toMatch(
        /^<s><\|im_start\|>(system\n[^<]+<\|im_end\|>\n<\|im_start\|>)?user\n.+<\|im_end\|>\n<\|im_start\|>assistant\n<\/s>$/s,
      );
      expect(reply.endsWith('<|im_end|>')).toBe(true);
      const story = reply.slice(0, -'<|im_end|>'.length);
      expect([STORY, rename(STORY, 'Spot', story.match(/named (\w+)/)![1]!)]).toContain(story);
      const asked = follows(story, factsOf(story));
      expect(asked.name).toBe(true);
      // The tokens that spell a requested fact weigh more, its first mention in the reply (the one copied from the
      // request) with its own weight; the name is asked for in the renamed copies at least.
      const weighed = (w: number) => d.ids.filter((_, i) => d.mask[i] === w);
      const name = story.match(/named (\w+)/)![1]!;
      const nameIds = tok.encode(` ${name}`, { add_special_tokens: false });
      if (prompt.includes(name)) {
        const replyStart = d.mask.findIndex((w) => w > 0);
        const first = d.ids.findIndex((id, i) => i >= replyStart && id === nameIds[0]);
        nameIds.forEach((_, j) => expect(d.mask[first + j]).toBe(weight.first));
        const later = d.ids.findIndex((id, i) => i > first && id === nameIds[0]); // "Spot" is mentioned again
        expect(later).toBeGreaterThan(first);
        expect(d.mask[later]).toBe(weight.later);
      }
      for (const id of [...weighed(weight.later), ...weighed(weight.first)]) expect(prompt).toContain(tok.decode([id]).trim());
    }
    expect(docs.some((d) => !tok.decode(d.ids).includes('Spot'))).toBe(true); // the renamed copy
  });
});

describe('committed chat requests', () => {
  it('holds at least 50, at most two per name, each asking for its own name and object', () => {
    const chat = heldoutChat();
    expect(chat.length).toBeGreaterThanOrEqual(50);
    const perName = new Map<string, number>();
    for (const c of chat) {
      perName.set(c.name, (perName.get(c.name) ?? 0) + 1);
      expect(c.user).toContain(` named ${c.name} who finds `);
      expect(follows(c.user, c)).toEqual({ name: true, object: true });
    }
    expect(Math.max(...perName.values())).toBeLessThanOrEqual(2);
    // Training renames characters; a held-out name among the renames would score copying it never had to do.
    expect(RENAMES.filter((n) => perName.has(n))).toEqual([]);
  });
});
