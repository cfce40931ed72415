/**
 * The held-out TinyStories validation split of the corpus (../shared/corpus, or $SPECD_CORPUS), cut into stories
 * and prompts. Training never sees it. models:build reads it from the corpus (encode-corpus.ts); the benchmarks and
 * models:eval read the part of it they use from the repository, scripts/bench/heldout.json, which running this file
 * derives from the corpus:
 *
 *   npx tsx scripts/models/heldout.ts [corpus dir]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { HELDOUT_FILE, type Heldout } from '../bench/heldout.ts';
import { ROOT } from '../bench/cli.ts';
import { evalRequestFor } from './chat-requests.ts';

export const CORPUS = process.env['SPECD_CORPUS'] ?? resolve(ROOT, '..', 'shared', 'corpus');
const VALID_FILE = join('tinystories', 'ts_valid_head.txt');
/** What the committed set keeps: models:eval scores the first 60 stories; bench:memory cycles through the prompts. */
const KEEP = { stories: 60, prompts: 200, chat: 60 };

/** The validation file has no story markers; a line opening with a classic first phrase starts a new story. */
export function validStories(corpus: string): string[] {
  const stories: string[][] = [];
  for (const line of readFileSync(join(corpus, VALID_FILE), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    if (stories.length === 0 || /^(Once upon a time|Once there was|One day)/.test(line)) stories.push([]);
    stories.at(-1)!.push(line.trim());
  }
  return stories.map((s) => s.join('\n')).slice(1); // the first is the tail of a story cut by the file's start
}

/** A user's opening: the first one or two sentences of each story (those of a usable length). */
export function promptsOf(stories: readonly string[]): string[] {
  return stories
    .map((s) => (s.match(/^(.*?[.!?])\s+(.*?[.!?])/)?.[0] ?? s.slice(0, 80)).trim())
    .filter((p) => p.length >= 20 && p.length <= 240);
}

/**
 * Chat requests from the validation stories that can make one, at most two per character name: half the stories
 * star "Lily", and a model that ignores the request and tells its usual Lily story must not score for it.
 */
export function chatRequests(stories: readonly string[]): Heldout['chat'] {
  const perName = new Map<string, number>();
  const out: Heldout['chat'] = [];
  for (const story of stories) {
    const r = evalRequestFor(story);
    if (!r) continue;
    const name = r.facts.name!;
    if ((perName.get(name) ?? 0) >= 2) continue;
    perName.set(name, (perName.get(name) ?? 0) + 1);
    out.push({ user: r.user, name, object: r.facts.object!, story });
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const corpus = resolve(process.argv[2] ?? CORPUS);
  const stories = validStories(corpus);
  const heldout: Heldout = {
    source: `${VALID_FILE} of the corpus, by scripts/models/heldout.ts (first ${KEEP.stories} stories, first ${KEEP.prompts} prompts, first ${KEEP.chat} chat requests of chat-requests.ts's evaluation form, at most 2 per name)`,
    stories: stories.slice(0, KEEP.stories),
    prompts: promptsOf(stories).slice(0, KEEP.prompts),
    chat: chatRequests(stories).slice(0, KEEP.chat),
  };
  writeFileSync(HELDOUT_FILE, `${JSON.stringify(heldout, null, 1)}\n`);
  console.log(
    `wrote ${relative(ROOT, HELDOUT_FILE)}: ${heldout.stories.length} stories, ${heldout.prompts.length} prompts, ${heldout.chat.length} chat requests from ${corpus}`,
  );
}
