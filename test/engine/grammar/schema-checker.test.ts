/**
 * The schema checker turns XGrammar's verdict into a reason a 400 can carry, and survives what a hostile client
 * can send: XGrammar aborts its WebAssembly instance on every bad schema, and an instance that has aborted a
 * thousand times corrupts its memory, so the checker must replace it each time (in its own thread).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SchemaChecker } from '../../../src/engine/grammar/schema-checker.ts';

const strict = (schema: unknown) => ({ schema: typeof schema === 'string' ? schema : JSON.stringify(schema), strict: true });

describe('SchemaChecker', () => {
  const checker = new SchemaChecker();
  afterAll(() => checker.close());

  it('accepts what XGrammar can constrain to, and says in its words why not otherwise', async () => {
    expect(await checker.check(strict({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }))).toBeNull();
    expect(await checker.check(strict({ enum: ['red', 'green'] }))).toBeNull();
    expect(await checker.check(strict({ type: 'foo' }))).toBe('Unsupported type "foo"');
    expect(await checker.check(strict({ $ref: '#/definitions/nope' }))).toMatch(/Cannot find field definitions/);
    expect(await checker.check(strict({ type: 'string', pattern: '[a-' }))).toMatch(/^Regex parsing error/);
  });

  it('stays sound after many bad schemas in a row (each abort gets a fresh instance)', async () => {
    const bad = Array.from({ length: 150 }, (_, i) =>
      checker.check(strict({ type: 'object', properties: { [`k${i}`]: { type: 'nope' } } })),
    );
    expect(new Set(await Promise.all(bad))).toEqual(new Set(['Unsupported type "nope"']));
    expect(await checker.check(strict({ type: 'array', items: { type: 'number' }, maxItems: 3 }))).toBeNull();
  }, 60_000);

  it('remembers verdicts: a repeated schema is answered without a conversion', async () => {
    const schema = strict({ type: 'object', properties: { remembered: { type: 'boolean' } } });
    expect(await checker.check(schema)).toBeNull();
    const before = checker.conversions;
    for (let i = 0; i < 20; i++) expect(await checker.check(schema)).toBeNull();
    expect(await checker.check(strict({ type: 'foo' }))).toBe('Unsupported type "foo"');
    expect(checker.conversions).toBe(before);
  });

  it('cuts off a conversion that runs past its limit', async () => {
    const hasty = new SchemaChecker(1);
    try {
      expect(await hasty.check(strict({ type: 'integer' }))).toMatch(/took longer than 1 ms/);
    } finally {
      hasty.close();
    }
  });
});
