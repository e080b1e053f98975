/** src/internal/lru.ts on its own: written for the mutation run (spec/MUTATION.md). */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Lru } from "../src/internal/lru.js"

describe("Lru.delete", () => {
  it("answers whether the key was there, and removes it", () => {
    const lru = new Lru<string, number>(4, 1000)
    lru.set("a", 1, 0)
    assert.isFalse(lru.delete("b"))
    assert.strictEqual(lru.size, 1)
    assert.isTrue(lru.delete("a"))
    assert.strictEqual(lru.size, 0)
    assert.isUndefined(lru.peek("a"))
    assert.isFalse(lru.delete("a"))
  })
})

describe("Lru idle expiry", () => {
  it("an entry unused for exactly expiryMillis is evicted by the next set; one millisecond less is kept", () => {
    const lru = new Lru<string, number>(-1, 100)
    lru.set("a", 1, 0)
    lru.set("b", 2, 1)
    lru.set("c", 3, 100) // a is 100 ms idle: gone; b is 99 ms idle: kept
    assert.isUndefined(lru.peek("a"))
    assert.strictEqual(lru.peek("b"), 2)
    assert.strictEqual(lru.size, 2)
    deepStrictEqual(lru.keys(), ["b", "c"])
  })
})
