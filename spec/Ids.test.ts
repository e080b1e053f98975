import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, FastCheck as fc, Layer, Redacted, TestClock } from "effect"
import * as Ids from "../src/Ids.js"
import * as SecureRandom from "../src/SecureRandom.js"
import { manualClock } from "../src/internal/testing/clock.js"
import { numRuns, underMutation } from "./helpers/runs.js"

const RUNS = { fastCheck: { numRuns: numRuns(1000) } }

// The alphabets, written out independently of the module under test.
const range = (from: string, to: string): string =>
  Array.from({ length: to.charCodeAt(0) - from.charCodeAt(0) + 1 }, (_, i) => String.fromCharCode(from.charCodeAt(0) + i)).join("")
const BASE62 = range("0", "9") + range("A", "Z") + range("a", "z")
const BASE64URL = new Set(range("A", "Z") + range("a", "z") + range("0", "9") + "-_")
const EPOCH_2017 = Date.UTC(2017, 0, 1)

const run = <A>(effect: Effect.Effect<A, never, SecureRandom.SecureRandom>, layer = SecureRandom.layer): A =>
  Effect.runSync(Effect.provide(effect, layer))

/** Pearson's chi-square statistic of observed counts against a uniform distribution. */
const chiSquare = (counts: ReadonlyArray<number>): number => {
  const total = counts.reduce((a, b) => a + b, 0)
  const expected = total / counts.length
  return counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0)
}

// The 0.999 quantile of the chi-square distribution with 61 degrees of freedom (62 symbols):
// 100.888 (scipy.stats.chi2.ppf(0.999, 61) = 100.8879; Wilson–Hilferty gives 100.96). A fair
// generator exceeds it with probability 0.1%.
const CHI2_61_Q999 = 100.888

describe("Ids.sessionId and isWellFormedToken", () => {
  const BASE62_SET = new Set(BASE62)
  /** The expected format, written out: 4 base62 characters, then `n` base64url ones. */
  const wellFormed = (s: string, n: number) =>
    s.length === 4 + n && [...s.slice(0, 4)].every((c) => BASE62_SET.has(c)) && [...s.slice(4)].every((c) => BASE64URL.has(c))

  it("a session ID is a 4-character base62 routing tag, then 43 base64url characters (32 bytes, canonical), and well formed", () => {
    for (let i = 0; i < 1000; i++) {
      const id = Redacted.value(run(Ids.sessionId()))
      assert.strictEqual(id.length, 47)
      assert.isTrue(wellFormed(id, 43), id)
      assert.isTrue(Ids.isWellFormedToken(id))
      assert.strictEqual(Ids.routingTag(id), id.slice(0, 4))
      const bytes = Buffer.from(id.slice(4), "base64url")
      assert.strictEqual(bytes.length, 32)
      assert.strictEqual(bytes.toString("base64url"), id.slice(4))
    }
  })

  it("feature: a token of a given routing tag keeps the tag in front, with fresh random bytes after it", () => {
    const a = Redacted.value(run(Ids.sessionId(32, "Ab9z")))
    const b = Redacted.value(run(Ids.sessionId(32, "Ab9z")))
    assert.isTrue(a.startsWith("Ab9z") && b.startsWith("Ab9z"))
    assert.notStrictEqual(a.slice(4), b.slice(4))
    assert.strictEqual(Ids.routingTag(a), "Ab9z")
  })

  it("the random part is at least 32 bytes (256 bits, the tag not counted) and follows the requested size", () => {
    for (const [bytes, length] of [[16, 47], [8, 47], [0, 47], [32, 47], [33, 48], [48, 68], [64, 90]] as const) {
      const id = Redacted.value(run(Ids.sessionId(bytes)))
      assert.strictEqual(id.length, length, `sessionId(${bytes})`)
      assert.isTrue(Ids.isWellFormedToken(id, Math.max(32, bytes)))
    }
    assert.strictEqual(Ids.MIN_TOKEN_BYTES, 32)
  })

  it("tokenLength(n) is the tag's length plus the length of n bytes in base64url", () => {
    for (let n = 0; n <= 64; n++) assert.strictEqual(Ids.tokenLength(n), 4 + Buffer.alloc(n).toString("base64url").length, `n = ${n}`)
  })

  it("the routing tags of new tokens are uniform over base62 (chi-square, 0.1% level)", () => {
    const counts = new Map<string, number>([...BASE62].map((c) => [c, 0]))
    run(Effect.gen(function*() {
      for (let i = 0; i < 5000; i++) {
        for (const c of Ids.routingTag(Redacted.value(yield* Ids.sessionId()))) counts.set(c, counts.get(c)! + 1)
      }
    }))
    assert.isBelow(chiSquare([...counts.values()]), CHI2_61_Q999)
  })

  it("the token is redacted when printed", () => {
    const id = run(Ids.sessionId())
    assert.notInclude(String(id), Redacted.value(id))
    assert.notInclude(JSON.stringify({ id }), Redacted.value(id))
  })

  /** Strings close to a token: base64url of length 44–50, sometimes with a foreign character. */
  const arbNearToken = fc
    .record({
      chars: fc.array(fc.constantFrom(...BASE64URL), { minLength: 44, maxLength: 50 }),
      foreign: fc.option(fc.tuple(fc.nat(), fc.oneof(fc.constantFrom("+", "/", "=", " ", ".", "%", "é", "\u0000", "\n"), fc.string({ minLength: 1, maxLength: 1 })))),
    })
    .map(({ chars, foreign }) => {
      const c = [...chars]
      if (foreign !== null) c[foreign[0] % c.length] = foreign[1][0]!
      return c.join("")
    })

  it.prop(
    "isWellFormedToken accepts exactly the strings of 4 base62 characters and 43 base64url ones",
    { s: fc.oneof(arbNearToken, fc.string({ maxLength: 60 }), fc.string({ minLength: 47, maxLength: 47 })) },
    ({ s }) => {
      const expected = wellFormed(s, 43)
      assert.strictEqual(Ids.isWellFormedToken(s), expected, JSON.stringify(s))
    },
    RUNS
  )

  it.prop(
    "isWellFormedToken(s, 48) accepts exactly the strings of 4 base62 characters and 64 base64url ones",
    { s: fc.array(fc.constantFrom(...BASE64URL, "+", "/", "="), { minLength: 66, maxLength: 70 }).map((a) => a.join("")) },
    ({ s }) => {
      assert.strictEqual(Ids.isWellFormedToken(s, 48), wellFormed(s, 64))
    },
    RUNS
  )

  it("1,000,000 IDs from the live SecureRandom never repeat", () => {
    // 10,000 under mutation (spec/helpers/runs.ts): enough to see a generator that repeats.
    const N = underMutation ? 10_000 : 1_000_000
    const seen = new Set<string>()
    run(Effect.gen(function*() {
      for (let i = 0; i < N; i++) seen.add(Redacted.value(yield* Ids.sessionId()))
    }))
    assert.strictEqual(seen.size, N)
  }, 60_000)
})

describe("SecureRandom.layerSeeded", () => {
  const draw = (seed: string | number) =>
    run(
      Effect.all([Ids.sessionId(), Ids.sessionId(16), Ids.randomId(12), SecureRandom.bytes(5)]).pipe(
        Effect.map(([a, b, c, d]) => [Redacted.value(a), Redacted.value(b), c, Buffer.from(d).toString("hex")])
      ),
      SecureRandom.layerSeeded(seed)
    )

  it.prop("the same seed gives the same IDs; different seeds give different IDs", {
    a: fc.oneof(fc.string(), fc.integer().map(String)),
    b: fc.oneof(fc.string(), fc.integer().map(String))
  }, ({ a, b }) => {
    const first = draw(a)
    deepStrictEqual(draw(a), first)
    if (a !== b) {
      const other = draw(b)
      for (let i = 0; i < first.length; i++) assert.notStrictEqual(other[i], first[i])
    }
  }, RUNS)

  it("a seeded generator does not repeat itself within a run, and differs from the live one", () => {
    const ids = run(Effect.all(Array.from({ length: 10_000 }, () => Ids.sessionId())), SecureRandom.layerSeeded(7)).map(Redacted.value)
    assert.strictEqual(new Set(ids).size, ids.length)
    const live = run(Ids.sessionId()).pipe(Redacted.value)
    assert.notInclude(ids, live)
  })

  it("each provision of the seeded layer starts over", () => {
    const layer = SecureRandom.layerSeeded("x")
    const a = run(Ids.sessionId(), layer)
    const b = run(Ids.sessionId(), layer)
    assert.strictEqual(Redacted.value(a), Redacted.value(b))
  })
})

describe("Ids.randomId", () => {
  it.prop(
    "randomId(n) has n characters, all base62",
    { n: fc.integer({ min: 0, max: 300 }), seed: fc.string() },
    ({ n, seed }) => {
      const id = run(Ids.randomId(n), SecureRandom.layerSeeded(seed))
      assert.strictEqual(id.length, n)
      assert.isTrue([...id].every((c) => BASE62.includes(c)), id)
    },
    RUNS
  )

  it("randomId of a negative or fractional length", () => {
    assert.strictEqual(run(Ids.randomId(-3)), "")
    assert.strictEqual(run(Ids.randomId(2.7)).length, 2)
  })

  it("randomId rejects bytes >= 248 instead of folding them (scripted bytes)", () => {
    const script = [255, 248, 0, 61, 247, 62, 123, 250, 1, 249, 200]
    let i = 0
    const scripted = Layer.succeed(SecureRandom.SecureRandom, {
      bytes: (n) => Effect.sync(() => Uint8Array.from({ length: n }, () => script[i++ % script.length]!))
    })
    const expected = script.filter((b) => b < 248).map((b) => BASE62[b % 62]).join("")
    assert.strictEqual(run(Ids.randomId(expected.length), scripted), expected)
  })

  it("randomId draws ceil(missing × 1.1) + 4 bytes at a time, and draws again after a chunk of rejected bytes", () => {
    // Each draw answers `rejected` bytes of 255 first, then accepted ones (0, 1, 2 …).
    const draws: Array<number> = []
    const scriptedWith = (rejected: ReadonlyArray<number>) =>
      Layer.succeed(SecureRandom.SecureRandom, {
        bytes: (n) =>
          Effect.sync(() => {
            const r = rejected[draws.length] ?? 0
            draws.push(n)
            return Uint8Array.from({ length: n }, (_, k) => (k < r ? 255 : k % 62))
          })
      })
    // A whole chunk rejected: a second draw of the same size.
    assert.strictEqual(run(Ids.randomId(20), scriptedWith([26])), BASE62.slice(0, 20))
    deepStrictEqual(draws, [26, 26])
    // 11 of 15 rejected: 4 characters from the first draw, then ceil(6 × 1.1) + 4 = 11 bytes.
    draws.length = 0
    assert.strictEqual(run(Ids.randomId(10), scriptedWith([11])), BASE62.slice(11, 15) + BASE62.slice(0, 6))
    deepStrictEqual(draws, [15, 11])
  })

  it("the live base62 characters are uniform (chi-square over 620,000 characters, 61 degrees of freedom)", () => {
    // 6,200 IDs of 100 characters: the pooled path of the live generator, as in real use.
    const sample = (): number => {
      const ids = run(Effect.gen(function*() {
        const out: Array<string> = []
        for (let i = 0; i < 6_200; i++) out.push(yield* Ids.randomId(100))
        return out
      }))
      const index = new Map([...BASE62].map((c, k) => [c.charCodeAt(0), k]))
      const counts = new Array<number>(62).fill(0)
      let total = 0
      for (const id of ids) {
        for (let j = 0; j < id.length; j++) {
          const k = index.get(id.charCodeAt(j))
          if (k === undefined) assert.fail(`not base62: ${id[j]}`)
          counts[k]!++
          total++
        }
      }
      assert.strictEqual(total, 620_000)
      const stat = chiSquare(counts)
      console.log(`chi-square of live randomId over ${total} characters: ${stat.toFixed(2)} (limit ${CHI2_61_Q999})`)
      return stat
    }
    // A fair generator exceeds the 0.999 quantile once in a thousand samples; a second, fresh
    // sample makes a false alarm a one-in-a-million event, while a biased mapping (about 4,100,
    // see below) fails both by a factor of forty.
    const first = sample()
    if (first < CHI2_61_Q999) return
    assert.isBelow(sample(), CHI2_61_Q999, `two samples in a row above the limit (first: ${first.toFixed(2)})`)
  })

  it("the same test rejects the biased mapping byte % 62 without rejection (the test has power)", () => {
    const total = 620_000
    const bytes = run(SecureRandom.bytes(total))
    const counts = new Array<number>(62).fill(0)
    for (const b of bytes) counts[b % 62]!++
    const stat = chiSquare(counts)
    // Expected about 4,100: symbols 0–7 come up 5/256 of the time instead of 4/256.
    console.log(`chi-square of the biased mapping over ${total} characters: ${stat.toFixed(2)}`)
    assert.isAbove(stat, CHI2_61_Q999)
  })
})

/**
 * A property whose runs are effects, each with a fresh manual clock (src/internal/testing/clock.ts: the
 * cuid properties run 1,000 times each with several clock moves per run, too many for TestClock).
 */
const effectProp = <A>(name: string, arb: fc.Arbitrary<A>, body: (a: A, setTime: (t: number) => Effect.Effect<void>) => Effect.Effect<void>) =>
  it(name, () => {
    fc.assert(
      fc.property(arb, (a) => {
        const { clock, setTime } = manualClock()
        Effect.runSync(Effect.withClock(body(a, setTime), clock))
      }),
      { numRuns: numRuns(1000) }
    )
  })

describe("Ids.cuid", () => {
  const isBase62 = (s: string) => [...s].every((c) => BASE62.includes(c))

  it("when the counter runs out within a millisecond, the next cuid is the next millisecond's first", () => {
    // Machine 0xffff leaves 256 counter values (0xffff00 … 0xffffff) per millisecond.
    for (const start of [EPOCH_2017 + 1_000_000, EPOCH_2017 + 1_000_001]) {
      const { clock } = manualClock(start)
      const generator = Ids.makeCuid(0xffff)
      const cuids = Effect.runSync(Effect.withClock(Effect.all(Array.from({ length: 258 }, () => generator)), clock))
      const millis = start - EPOCH_2017
      deepStrictEqual(Ids.decodeCuid(cuids[0]!), { millis, machineAndCounter: 0xffff00 })
      deepStrictEqual(Ids.decodeCuid(cuids[255]!), { millis, machineAndCounter: 0xffffff })
      deepStrictEqual(Ids.decodeCuid(cuids[256]!), { millis: millis + 1, machineAndCounter: 0xffff00 })
      deepStrictEqual(Ids.decodeCuid(cuids[257]!), { millis: millis + 1, machineAndCounter: 0xffff01 })
    }
  })

  it.effect("is 11 base62 characters and strictly increasing over 100,000 calls while the clock stands still", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2024, 5, 1, 12))
      let prev = yield* Ids.cuid()
      // 10,000 under mutation: the spilling generator below still spills about 40 times.
      const calls = underMutation ? 10_000 : 100_000
      for (let i = 0; i < calls; i++) {
        const next = yield* Ids.cuid()
        if (!(prev < next) || next.length !== 11) assert.fail(`cuid ${i}: ${prev} then ${next}`)
        prev = next
      }
      assert.isTrue(isBase62(prev))
      // The largest machine hash leaves the counter 255 steps per millisecond: it spills into
      // the time field about 400 times here, and the order still holds.
      const spilling = Ids.makeCuid(0xffff)
      prev = yield* spilling
      for (let i = 0; i < calls; i++) {
        const next = yield* spilling
        if (!(prev < next) || next.length !== 11) assert.fail(`cuid ${i}: ${prev} then ${next}`)
        prev = next
      }
      assert.isAbove(Ids.decodeCuid(prev).millis, Date.UTC(2024, 5, 1, 12) - EPOCH_2017)
    }))

  it.effect("stays strictly increasing when the clock steps backwards", () =>
    Effect.gen(function*() {
      const t = Date.UTC(2030, 0, 1)
      yield* TestClock.setTime(t)
      const seen: Array<string> = []
      for (const back of [0, 1, 1000, 86_400_000, 1, 0]) {
        yield* TestClock.setTime(t - back)
        for (let i = 0; i < 300; i++) seen.push(yield* Ids.cuid())
      }
      for (let i = 1; i < seen.length; i++) assert.isTrue(seen[i - 1]! < seen[i]!, `${seen[i - 1]} then ${seen[i]}`)
    }))

  effectProp(
    "a fresh generator stays strictly increasing under any clock moves, for any machine hash",
    fc.record({
      machine: fc.integer({ min: 0, max: 0xffff }),
      start: fc.integer({ min: EPOCH_2017, max: Date.UTC(2050, 0, 1) }),
      moves: fc.array(
        fc.tuple(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -5000, max: 5000 })), fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 250, max: 300 }))),
        { maxLength: 5 }
      )
    }),
    ({ machine, moves, start }, setTime) =>
      Effect.gen(function*() {
        const next = Ids.makeCuid(machine)
        yield* setTime(start)
        let prev = yield* next
        let t = start
        for (const [dt, calls] of moves) {
          t = Math.max(EPOCH_2017, t + dt)
          yield* setTime(t)
          for (let i = 0; i < calls; i++) {
            const c = yield* next
            if (c.length !== 11 || !(prev < c)) assert.fail(`${prev} then ${c}`)
            prev = c
          }
        }
      })
  )

  effectProp(
    "sorts by time across milliseconds, whatever the machines, and decodeCuid gives back the milliseconds",
    fc.record({
      t1: fc.integer({ min: EPOCH_2017, max: Date.UTC(2050, 0, 1) }),
      dt: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 1_000_000_000 })),
      m1: fc.integer({ min: 0, max: 0xffff }),
      m2: fc.integer({ min: 0, max: 0xffff }),
      calls1: fc.integer({ min: 1, max: 255 })
    }),
    ({ calls1, dt, m1, m2, t1 }, setTime) =>
      Effect.gen(function*() {
        const g1 = Ids.makeCuid(m1)
        const g2 = Ids.makeCuid(m2)
        yield* setTime(t1)
        const first = yield* g1
        const d = Ids.decodeCuid(first)
        assert.strictEqual(d.millis, t1 - EPOCH_2017)
        assert.strictEqual(d.machineAndCounter >> 8, m1)
        let last = first
        for (let i = 1; i < calls1; i++) last = yield* g1
        assert.strictEqual(Ids.decodeCuid(last).millis, t1 - EPOCH_2017)
        yield* setTime(t1 + dt)
        const second = yield* g2
        assert.strictEqual(Ids.decodeCuid(second).millis, t1 + dt - EPOCH_2017)
        assert.isTrue(last < second, `${last} (t=${t1}) should sort before ${second} (t=${t1 + dt})`)
      })
  )

  it.effect("the process-wide cuid decodes to the clock's milliseconds", () =>
    Effect.gen(function*() {
      const t = Date.UTC(2099, 0, 1)
      yield* TestClock.setTime(t)
      const c = yield* Ids.cuid()
      assert.strictEqual(Ids.decodeCuid(c).millis, t - EPOCH_2017)
      yield* TestClock.adjust("1 second")
      const c2 = yield* Ids.cuid()
      assert.strictEqual(Ids.decodeCuid(c2).millis, t + 1000 - EPOCH_2017)
    }))
})
