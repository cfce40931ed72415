import { describe, expect, it } from 'vitest';
import { Lru } from '../../src/lib/lru.ts';

describe('Lru', () => {
  it('keeps the most recently used entries, evicting the oldest with a callback; a hit refreshes', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number | null>(2, (v, k) => evicted.push(`${k}=${v}`));
    lru.set('a', 1);
    lru.set('b', null);
    expect(lru.get('a')).toBe(1); // a is now newer than b
    lru.set('c', 3);
    expect(evicted).toEqual(['b=null']);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    lru.set('a', 4); // replacing an entry evicts nothing
    expect(evicted).toEqual(['b=null']);
    expect(lru.size).toBe(2);
    lru.clear();
    expect(lru.size).toBe(0);
    expect(evicted).toEqual(['b=null']);
  });
});
