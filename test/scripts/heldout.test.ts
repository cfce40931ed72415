/** The held-out set the benchmarks read from the repository (scripts/bench/heldout.json), not from the corpus. */
import { describe, expect, it } from 'vitest';
import { heldoutPrompts, heldoutStories } from '../../scripts/bench/heldout.ts';
import { promptsOf } from '../../scripts/models/heldout.ts';

describe('committed held-out set', () => {
  it('holds what models:eval and the benchmarks use by default, cut as scripts/models/heldout.ts cuts it', () => {
    const stories = heldoutStories();
    const prompts = heldoutPrompts();
    expect(stories.length).toBeGreaterThanOrEqual(60); // models:eval: perplexity over 60 stories, 60 prompts
    expect(prompts.length).toBeGreaterThanOrEqual(60);
    const fromStories = promptsOf(stories);
    expect(prompts.slice(0, fromStories.length)).toEqual(fromStories);
  });
});
