/**
 * Chat requests built from what a story contains, for training the bundled pair to follow them and for scoring
 * whether it does (models:eval). A story yields facts (its main character's name and kind, an object and a place
 * it mentions); a request asks for a story with some of those facts, so the story itself is a reply that does
 * what was asked. Lexicons rather than a tagger: TinyStories' vocabulary is small and the words that matter
 * (animals, toys, places) are few, and a fixed list keeps the data reproducible with no model in the loop.
 */

/** Who a story can be about ("a little {kind} named {Name}"). */
const KINDS = new Set(
  (
    'girl boy dog bird bunny bear fish mouse cat rabbit duck monkey kid frog crab puppy parrot car baby elephant ant ' +
    'turtle pirate penguin goat bee witch squirrel spider pig otter kitten kangaroo fairy elf lion tiger owl fox ' +
    'horse cow sheep chicken dragon robot deer hippo giraffe zebra snake lamb pony whale dolphin butterfly ladybug ' +
    'bug snail wolf squirrel dinosaur unicorn princess prince king queen man woman lady kitty doggy truck train boat ' +
    'plane toy doll teddy'
  ).split(' '),
);

/** Things a character can find, have or want: concrete and mostly portable. */
const OBJECTS = (
  'ball toy box kite hat key book cake flower balloon doll rock stick bag bucket bowl jar coin penny treasure map ' +
  'shell feather leaf apple banana cookie candy pie sandwich carrot egg crayon pencil paint brush picture letter ' +
  'ring necklace crown star bell drum whistle guitar piano blanket pillow sock shoe boot scarf coat dress shirt ' +
  'umbrella bike wagon truck car boat train plane robot puzzle block blocks rope ladder basket bottle cup plate ' +
  'spoon fork button needle mirror lamp clock watch phone camera ticket gift present card seed acorn nut berry ' +
  'stone pebble bone bubble sticker ribbon bow glove mitten jacket teddy marble slide swing sled shovel pail net ' +
  'flag sword shield wand magnet telescope compass lantern candle mask costume medal trophy snowman pumpkin honey'
).split(' ');

const PLACES = (
  'park forest garden beach house school sea river lake pond farm zoo town city jungle mountain hill cave castle ' +
  'kitchen yard field meadow playground library store shop sky ocean island desert barn tree nest'
).split(' ');

export interface StoryFacts {
  name?: string;
  kind?: string;
  object?: string;
  place?: string;
}

const words = (s: string) => s.toLowerCase().match(/[a-z]+/g) ?? [];

/** Capitalised words that start sentences or address family, never a character's name. */
const NOT_NAMES = new Set(
  (
    'I Mom Dad Mommy Daddy Mama Papa Grandma Grandpa Granny Mr Mrs Miss Sir Once One Yes No Oh Hi Hello Wow Thank ' +
    'Thanks Okay OK Please Sorry Look Come Let Good Bye Goodbye Hooray Yay Ouch Hey Help Stop Wait Sure Maybe Why ' +
    'What Where When Who How The A An She He They It We You But And So Then This That There These Those Her His ' +
    'Their Our My Your After Before Every Some All In On At As If Soon Now Today Later Finally Suddenly From With'
  ).split(' '),
);

/** The word of `lexicon` the story uses most (ties: the one it uses first), or undefined. */
function mostUsed(story: string, lexicon: readonly string[], except?: string): string | undefined {
  const counts = new Map<string, { n: number; first: number }>();
  const allowed = new Set(lexicon);
  words(story).forEach((w, i) => {
    if (!allowed.has(w) || w === except) return;
    const c = counts.get(w) ?? { n: 0, first: i };
    c.n++;
    counts.set(w, c);
  });
  return [...counts].sort((x, y) => y[1].n - x[1].n || x[1].first - y[1].first)[0]?.[0];
}

/**
 * The main character (the first "a … {kind} named {Name}", else the most frequent capitalised word that the story
 * never writes in lower case, with its kind from "{Name} was a … {kind}"), and the object and place it mentions most.
 */
export function factsOf(story: string): StoryFacts {
  const facts: StoryFacts = {};
  const named = /\b(?:a|an|the)\s+(?:[a-z]+\s+){0,2}?([a-z]+)\s+named\s+([A-Z][a-z]+)/.exec(story);
  if (named) {
    facts.name = named[2]!;
    if (KINDS.has(named[1]!)) facts.kind = named[1]!;
  } else {
    const lower = new Set(words(story.replace(/\b[A-Z][a-z]*\b/g, '')));
    const counts = new Map<string, number>();
    for (const w of story.match(/\b[A-Z][a-z]+\b/g) ?? []) {
      if (NOT_NAMES.has(w) || lower.has(w.toLowerCase())) continue;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const best = [...counts].sort((x, y) => y[1] - x[1])[0];
    if (best && best[1] >= 2) {
      facts.name = best[0];
      const kind = new RegExp(`\\b${best[0]}\\s+(?:was|is)\\s+(?:a|an)\\s+(?:[a-z]+\\s+){0,2}?([a-z]+)\\b`).exec(story)?.[1];
      if (kind && KINDS.has(kind)) facts.kind = kind;
    }
  }
  facts.object = mostUsed(story, OBJECTS, facts.kind);
  facts.place = mostUsed(story, PLACES);
  return facts;
}

/** "a" or "an" before a lowercase noun. */
const a = (noun: string) => `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;

type Template = (f: Required<StoryFacts>) => string;
/** Phrasings by the facts they need; the first of each list is the form models:eval asks. */
const TEMPLATES: { needs: (keyof StoryFacts)[]; say: Template }[] = [
  { needs: ['kind', 'name', 'object'], say: (f) => `Tell me a story about ${a(f.kind)} named ${f.name} who finds ${a(f.object)}.` },
  { needs: ['kind', 'name', 'object'], say: (f) => `Write a short story where ${f.name} the ${f.kind} finds ${a(f.object)}.` },
  {
    needs: ['kind', 'name', 'object'],
    say: (f) => `Can you tell me a bedtime story about ${a(f.kind)} called ${f.name} and ${a(f.object)}?`,
  },
  { needs: ['kind', 'name', 'place'], say: (f) => `Tell me a story about ${a(f.kind)} named ${f.name} at the ${f.place}.` },
  { needs: ['name', 'object'], say: (f) => `Write a story about ${f.name} and ${a(f.object)}.` },
  { needs: ['name', 'object'], say: (f) => `I want a story. It should be about ${f.name}, and there should be ${a(f.object)} in it.` },
  { needs: ['kind', 'name'], say: (f) => `Tell me a story about ${a(f.kind)} named ${f.name}.` },
  { needs: ['kind', 'name'], say: (f) => `Please write a short story for a child about ${f.name}, ${a(f.kind)}.` },
  { needs: ['name'], say: (f) => `Can you tell me a story about ${f.name}?` },
  { needs: ['name'], say: (f) => `Write a short story about a character named ${f.name}.` },
  { needs: ['object'], say: (f) => `Tell me a story about ${a(f.object)}.` },
  { needs: ['object', 'place'], say: (f) => `Write a bedtime story about ${a(f.object)} in the ${f.place}.` },
  { needs: ['place'], say: (f) => `Tell me a story that happens at the ${f.place}.` },
  { needs: [], say: () => 'Tell me a story.' },
  { needs: [], say: () => 'Write a short story for a child.' },
  { needs: [], say: () => 'Can you tell me a bedtime story?' },
];

const SYSTEMS = [
  'You are a helpful assistant.',
  'You are a storyteller. You write short, simple stories for children.',
  'You write bedtime stories.',
  'Answer the user.',
];

export interface ChatRequest {
  system?: string;
  user: string;
  facts: StoryFacts;
}

/** Deterministic integer hash, so a story's phrasings do not depend on the order stories are processed in. */
function mix(i: number, salt: number): number {
  let h = (i * 0x9e3779b1) ^ (salt * 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * `count` different requests for story number `i`, each satisfiable by the story: the phrasings whose facts the
 * story has, the most specific ones first-choice, with a system message on about a third of them.
 */
export function requestsFor(story: string, i: number, count: number): ChatRequest[] {
  const facts = factsOf(story);
  const usable = TEMPLATES.filter((t) => t.needs.every((k) => facts[k] !== undefined));
  // Specific requests are what the model has to learn to honour; generic ones keep "Tell me a story." working.
  const specific = usable.filter((t) => t.needs.length > 0);
  const pool = specific.length > 0 ? specific : usable;
  const out: ChatRequest[] = [];
  for (let j = 0; j < count; j++) {
    const from = j === 0 || mix(i, 7 + j) % 5 !== 0 ? pool : usable;
    const t = from[mix(i, j) % from.length]!;
    const req: ChatRequest = { user: t.say(facts as Required<StoryFacts>), facts };
    if (mix(i, 100 + j) % 3 === 0) req.system = SYSTEMS[mix(i, 200 + j) % SYSTEMS.length]!;
    if (!out.some((r) => r.user === req.user)) out.push(req);
  }
  return out;
}

/** The form models:eval asks ("… a {kind} named {Name} who finds a {object}."), or undefined if the story lacks a fact. */
export function evalRequestFor(story: string): ChatRequest | undefined {
  const facts = factsOf(story);
  if (!facts.name || !facts.kind || !facts.object) return undefined;
  return { user: TEMPLATES[0]!.say(facts as Required<StoryFacts>), facts };
}

/** Whether a reply does what the request asked: names the character, mentions the object (singular or plural). */
export function follows(reply: string, facts: StoryFacts): { name: boolean; object: boolean } {
  const w = new Set(words(reply));
  return {
    name: facts.name !== undefined && new RegExp(`\\b${facts.name}\\b`).test(reply),
    object: facts.object !== undefined && (w.has(facts.object) || w.has(`${facts.object}s`) || w.has(`${facts.object}es`)),
  };
}
