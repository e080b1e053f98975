/**
 * A mutable least-recently-used map with idle expiry. A JavaScript `Map` keeps insertion order,
 * so moving an entry to the end on use makes the first entry the least recently used one:
 * get, set and evict are all O(1).
 *
 * @internal
 */

interface Entry<V> {
  value: V
  usedAt: number
}

/** @internal */
export class Lru<K, V> {
  private readonly map = new Map<K, Entry<V>>()
  /**
   * @param capacity maximum entries; negative = unbounded; 0 = stores nothing
   * @param expiryMillis an entry unused this long is evicted
   */
  constructor(readonly capacity: number, readonly expiryMillis: number) {}

  get size(): number {
    return this.map.size
  }

  get(key: K, now: number): V | undefined {
    const entry = this.map.get(key)
    if (entry === undefined) return undefined
    this.map.delete(key)
    if (now - entry.usedAt >= this.expiryMillis) return undefined
    entry.usedAt = now
    this.map.set(key, entry)
    return entry.value
  }

  /** Reads without changing recency (for tests and diagnostics). */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value
  }

  set(key: K, value: V, now: number): void {
    if (this.capacity === 0) return
    this.map.delete(key)
    this.map.set(key, { value, usedAt: now })
    this.evict(now)
  }

  delete(key: K): boolean {
    return this.map.delete(key)
  }

  clear(): void {
    this.map.clear()
  }

  /** Keys from least to most recently used. */
  keys(): Array<K> {
    return [...this.map.keys()]
  }

  private evict(now: number): void {
    // Drop idle entries from the cold end, then whatever exceeds the capacity.
    for (const [key, entry] of this.map) {
      if (now - entry.usedAt < this.expiryMillis) break
      this.map.delete(key)
    }
    if (this.capacity < 0) return
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next()
      if (oldest.done) break
      this.map.delete(oldest.value)
    }
  }
}
