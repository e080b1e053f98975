/** src/internal/lru.ts on its own: written for the mutation run (spec/MUTATION.md). */
import { assert, describe, it } from "@effect/vitest"
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
