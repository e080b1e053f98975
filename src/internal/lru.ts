/**
 * A mutable least-recently-used map with idle expiry: a `Map` from keys to the nodes of a doubly
 * linked list ordered by use (head = least recently used). get, set and evict are O(1) pointer
 * moves — the `Map` itself only changes when keys come and go, so it never fills with deleted
 * slots the way a delete-and-reinsert LRU does.
 *
 * @internal
 */

interface Node<K, V> {
  readonly key: K
  value: V
  usedAt: number
  prev: Node<K, V> | undefined
  next: Node<K, V> | undefined
}

/** @internal */
export class Lru<K, V> {
  private readonly map = new Map<K, Node<K, V>>()
  private head: Node<K, V> | undefined = undefined
  private tail: Node<K, V> | undefined = undefined
  /**
   * @param capacity maximum entries; negative = unbounded; 0 = stores nothing
   * @param expiryMillis an entry unused this long is evicted
   */
  constructor(readonly capacity: number, readonly expiryMillis: number) {}

  get size(): number {
    return this.map.size
  }

  get(key: K, now: number): V | undefined {
    const node = this.map.get(key)
    if (node === undefined) return undefined
    if (now - node.usedAt >= this.expiryMillis) {
      this.remove(node)
      return undefined
    }
    node.usedAt = now
    this.toTail(node)
    return node.value
  }

  /** Reads without changing recency (for tests and diagnostics). */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value
  }

  set(key: K, value: V, now: number): void {
    if (this.capacity === 0) return
    const existing = this.map.get(key)
    if (existing !== undefined) {
      existing.value = value
      existing.usedAt = now
      this.toTail(existing)
    } else {
      const node: Node<K, V> = { key, value, usedAt: now, prev: this.tail, next: undefined }
      if (this.tail) this.tail.next = node
      else this.head = node
      this.tail = node
      this.map.set(key, node)
    }
    this.evict(now)
  }

  delete(key: K): boolean {
    const node = this.map.get(key)
    if (node === undefined) return false
    this.remove(node)
    return true
  }

  clear(): void {
    this.map.clear()
    this.head = this.tail = undefined
  }

  /** Keys from least to most recently used. */
  keys(): Array<K> {
    const out: Array<K> = []
    for (let n = this.head; n; n = n.next) out.push(n.key)
    return out
  }

  private unlink(node: Node<K, V>): void {
    if (node.prev) node.prev.next = node.next
    else this.head = node.next
    if (node.next) node.next.prev = node.prev
    else this.tail = node.prev
    node.prev = node.next = undefined
  }

  private toTail(node: Node<K, V>): void {
    if (this.tail === node) return
    this.unlink(node)
    node.prev = this.tail
    if (this.tail) this.tail.next = node
    else this.head = node
    this.tail = node
  }

  private remove(node: Node<K, V>): void {
    this.unlink(node)
    this.map.delete(node.key)
  }

  private evict(now: number): void {
    // Idle entries sit at the cold end (use order is time order); then whatever exceeds the capacity.
    while (this.head && now - this.head.usedAt >= this.expiryMillis) this.remove(this.head)
    if (this.capacity < 0) return
    while (this.map.size > this.capacity && this.head) this.remove(this.head)
  }
}
