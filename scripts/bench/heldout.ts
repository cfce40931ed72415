/**
 * The held-out stories and prompts every benchmark and models:eval measure on, read from the repository
 * (scripts/bench/heldout.json, derived from the corpus's TinyStories validation split by scripts/models/heldout.ts),
 * so that no benchmark needs the corpus. Training never sees this text.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './cli.ts';

export const HELDOUT_FILE = join(ROOT, 'scripts', 'bench', 'heldout.json');

export interface Heldout {
  /** Where the text came from and how it was cut. */
  source: string;
  /** Whole validation stories, in file order. */
  stories: string[];
  /** The first one or two sentences of each story, in the same order. */
  prompts: string[];
  /**
   * Chat requests built from validation stories that name a character of a known kind and mention a known object
   * ("Tell me a story about a dog named Spot who finds a ball."), with the facts a reply should contain and the
   * story itself (a reply that does what was asked, for teacher-forced probes).
   */
  chat: { user: string; name: string; object: string; story: string }[];
}

let cached: Heldout | undefined;
const heldout = (): Heldout => (cached ??= JSON.parse(readFileSync(HELDOUT_FILE, 'utf8')) as Heldout);

export const heldoutStories = (): string[] => heldout().stories;
export const heldoutPrompts = (): string[] => heldout().prompts;
export const heldoutChat = (): Heldout['chat'] => heldout().chat;
