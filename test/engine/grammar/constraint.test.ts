/**
 * A stream's grammar state on the bundled vocabulary, with the real XGrammar: masks follow the tokens, rolled-back
 * proposals leave no trace, and masking touches nothing the grammar allows.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Grammars } from '../../../src/engine/grammar/grammars.ts';
import { PromptCodec } from '../../../src/engine/prompt.ts';
import { TARGET_DIR } from '../../helpers/models.ts';

const V = 8192;
const STOP = [2, 4];
const PERSON = JSON.stringify({
  type: 'object',
  properties: { name: { type: 'string', maxLength: 16 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
});

const allowed = (row: Float32Array) => [...row.keys()].filter((i) => row[i] !== -Infinity);

describe('GrammarConstraint', () => {
  let codec: PromptCodec;
  let grammars: Grammars;
  const ids = (text: string) => codec.encodePlain(text);

  beforeAll(async () => {
    codec = await PromptCodec.load(TARGET_DIR);
    grammars = new Grammars(codec.grammarVocabulary(), V, STOP);
  });

  /** The mask at each position of `text`'s tokens, committing them one at a time. */
  async function walk(spec: { schema: string; strict: boolean }, tokens: number[]) {
    const g = await grammars.constraint(spec);
    const rows: number[][] = [];
    for (const t of tokens) {
      await g.prepare(0);
      const row = g.row(new Float32Array(V), 0);
      rows.push(allowed(row));
      expect(row[t], `token ${t} (${JSON.stringify(codec.decodeAll([t]))}) is allowed`).toBe(0);
      g.settle(0, [t]);
    }
    await g.prepare(0);
    return { g, rows, end: allowed(g.row(new Float32Array(V), 0)) };
  }

  it('a valid document is allowed token by token, and after it only the stop tokens are', async () => {
    const { end } = await walk({ schema: PERSON, strict: true }, ids('{"name": "Sue", "age": 7}'));
    expect(end).toEqual(STOP);
  });

  it('what the schema forbids is masked: the opening brace first, the required key next', async () => {
    const { rows } = await walk({ schema: PERSON, strict: true }, ids('{"name": "Sue"'));
    expect(rows[0]!.map((t) => codec.decodeAll([t])).every((s) => s.startsWith('{'))).toBe(true);
    expect(rows[0]).not.toContain(ids('[')[0]);
    expect(rows[0]).not.toContain(STOP[0]);
  });

  it('json_object (strict off) takes any keys; a non-object is refused at the first token', async () => {
    const spec = { schema: '{"type": "object"}', strict: false };
    const { end } = await walk(spec, ids('{"anything": [1, {"b": null}], "c": "x"}'));
    expect(end).toEqual(STOP);
    const g = await grammars.constraint(spec);
    await g.prepare(0);
    expect(g.row(new Float32Array(V), 0)[ids('[')[0]!]).toBe(-Infinity);
  });

  it('rolled-back proposals leave the state where the accepted ones put it', async () => {
    const text = ids('{"name": "Tom", "age": 12}');
    const spec = { schema: PERSON, strict: true };
    const direct = await walk(spec, text.slice(0, 4));
    // The same 4 tokens as one round: 2 committed, then 3 proposals of which 1 stands, then the correction.
    const g = await grammars.constraint(spec);
    for (const t of text.slice(0, 2)) {
      await g.prepare(0);
      g.settle(0, [t]);
    }
    for (let j = 0; j < 3; j++) {
      await g.prepare(j);
      g.propose(text[2 + j]!);
    }
    g.settle(1, [text[2]!, text[3]!]);
    await g.prepare(0);
    expect(allowed(g.row(new Float32Array(V), 0))).toEqual(direct.end);
  });

  it('masking copies: allowed logits keep their values, the raw row is untouched', async () => {
    const g = await grammars.constraint({ schema: PERSON, strict: true });
    await g.prepare(0);
    const raw = Float32Array.from({ length: V }, (_, i) => Math.sin(i));
    const before = raw.slice();
    const row = g.row(raw, 0);
    expect(raw).toEqual(before);
    for (const i of allowed(row)) expect(row[i]).toBe(raw[i]);
    expect(allowed(row).length).toBeGreaterThan(0);
    expect(allowed(row).length).toBeLessThan(V / 10);
  });

  it('refuses a proposal the grammar forbids (the core fails that stream alone)', async () => {
    const g = await grammars.constraint({ schema: PERSON, strict: true });
    await g.prepare(0);
    expect(() => g.propose(ids('[')[0]!)).toThrow(/not allowed/);
  });
});
