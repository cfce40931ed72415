/**
 * A map that keeps its `capacity` most recently used entries. Written here rather than depended on: a Map already
 * keeps the insertion order an LRU needs (a hit re-inserts, the first key is the oldest), so this is a dozen lines
 * for two caches of a few dozen entries each.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    private readonly capacity: number,
    /** Called with each entry pushed out by a newer one (not on clear()). */
    private readonly onEvict?: (value: V, key: K) => void,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** The entry, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    if (!this.map.has(key)) return undefined;
    const value = this.map.get(key)!;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const [oldKey, oldValue] = this.map.entries().next().value!;
      this.map.delete(oldKey);
      this.onEvict?.(oldValue, oldKey);
    }
  }

  clear(): void {
    this.map.clear();
  }
}
