/**
 * Known answers for src/internal/hash.ts. The hashes end up at rest (token keys, user-agent
 * hashes, sealed successors) and in logs (logHash): a change of label, length or algorithm would
 * orphan every stored session and break log correlation across a deploy, so the values are pinned.
 */
import { assert, describe, it } from "@effect/vitest"
import { logHash, publicId, safeEqual, seal, seededBlock, sha256, sha256Hex, tokenKey, unseal, userAgentBinding, userAgentHash } from "../src/internal/hash.js"

describe("hash: known answers", () => {
  it("sha256 / sha256Hex are SHA-256 in base64url / hex", () => {
    assert.strictEqual(sha256("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0")
    assert.strictEqual(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  })

  it("tokenKey hashes only when hashIdsAtRest, keeping the token's routing tag in front", () => {
    assert.strictEqual(tokenKey("tok", true), "tokGnZ0607njffhrEOak8P6jjyUV4TU3sn9jjARc4svHWI")
    assert.strictEqual(tokenKey("Ab9zXYZ", true), "Ab9z" + sha256("Ab9zXYZ"))
    assert.strictEqual(tokenKey("tok", false), "tok")
  })

  it("userAgentHash and logHash are pinned, and stay so once memoised", () => {
    for (let i = 0; i < 2; i++) {
      assert.strictEqual(userAgentHash("Mozilla/5.0"), "DROR37rTbPx7eUt4rFcXIB")
      assert.strictEqual(logHash("tok"), "j1NRPqOs")
    }
    // a long user agent (not memoised) hashes the same on every call
    const long = "x".repeat(2000)
    assert.strictEqual(userAgentHash(long), userAgentHash(long))
    assert.strictEqual(userAgentHash(long).length, 22)
  })

  it("seal is pinned over more than one keystream block, and unseal undoes it", () => {
    const successor = "A".repeat(68) // 51 bytes: two HMAC blocks of keystream
    const sealed = seal(successor, "pred")
    assert.strictEqual(sealed, "ZR4_evx36RdjrHqrqPxaW6xbGkNJf_WHMEDRxTWbQ63l6mvc47_XBCr2pp_MXlTHMwfi")
    assert.strictEqual(unseal(sealed, "pred"), successor)
    assert.notStrictEqual(unseal(sealed, "other"), successor)
  })

  it("publicId (the session's ID in listings) is pinned: 16 characters of SHA-256 over a label", () => {
    assert.strictEqual(publicId("k"), "hjOAJiC5WXOrztXe")
    assert.strictEqual(publicId("session-key"), "yVDM2oZss190GBBd")
  })

  it("seededBlock is pinned", () => {
    assert.strictEqual(seededBlock("s", 1).toString("hex"), "37422758fa89084d641eae3cfee7506b1f916122924f776f614563da124bd985")
  })

  it("safeEqual: equal strings only; different lengths are false, not a throw", () => {
    assert.isTrue(safeEqual("abc", "abc"))
    assert.isFalse(safeEqual("abc", "abd"))
    assert.isFalse(safeEqual("abc", "abcd"))
    assert.isFalse(safeEqual("", "a"))
  })

  // The memo is what lets the sessions of one browser share their binding value (the memory
  // bench's "session value" figure counts on it): one object per user agent, bounded in count and
  // in the length of what it keeps.
  it("the user-agent binding is one shared value per user agent of up to 1,024 characters, in a memo cleared at 512 user agents", () => {
    const a = userAgentBinding("Mozilla/5.0 (memo)")
    assert.strictEqual(userAgentBinding("Mozilla/5.0 (memo)"), a)
    const longest = "x".repeat(1024)
    assert.strictEqual(userAgentBinding(longest), userAgentBinding(longest))
    const over = "y".repeat(1025)
    assert.notStrictEqual(userAgentBinding(over), userAgentBinding(over))
    assert.strictEqual(userAgentBinding(over).value, userAgentHash(over))
    // Count the new user agents it takes until `probe` is forgotten (the memo was cleared). The
    // first count depends on what the memo held; after a clear it holds the user agent that
    // caused it and `probe`, so the next clear comes 511 user agents later (at 512 entries).
    let fresh = 0
    const forgottenAfter = (probe: string): number => {
      const held = userAgentBinding(probe)
      for (let n = 1; n <= 2048; n++) {
        userAgentBinding(`memo-test/${fresh++}`)
        if (userAgentBinding(probe) !== held) return n
      }
      return Infinity
    }
    assert.isAtMost(forgottenAfter("probe"), 512)
    assert.strictEqual(forgottenAfter("probe"), 511)
    assert.strictEqual(forgottenAfter("probe"), 511)
  })
})
