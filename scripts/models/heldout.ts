/**
 * The held-out TinyStories validation split, cut into stories and prompts. Shared by the corpus encoder, the model
 * eval and the benchmarks so they all measure on the same text, which training never sees.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CORPUS = process.env['SPECD_CORPUS'] ?? resolve(ROOT, '..', 'shared', 'corpus');

/** The validation file has no story markers; a line opening with a classic first phrase starts a new story. */
export function validStories(corpus = CORPUS): string[] {
  const stories: string[][] = [];
  for (const line of readFileSync(join(corpus, 'tinystories', 'ts_valid_head.txt'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    if (stories.length === 0 || /^(Once upon a time|Once there was|One day)/.test(line)) stories.push([]);
    stories.at(-1)!.push(line.trim());
  }
  return stories.map((s) => s.join('\n')).slice(1); // the first is the tail of a story cut by the file's start
}

/** A user's opening: the first one or two sentences of each held-out story. */
export function heldoutPrompts(corpus = CORPUS): string[] {
  return validStories(corpus)
    .map((s) => (s.match(/^(.*?[.!?])\s+(.*?[.!?])/)?.[0] ?? s.slice(0, 80)).trim())
    .filter((p) => p.length >= 20 && p.length <= 240);
}
