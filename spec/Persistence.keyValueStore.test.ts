/**
 * `Persistence.layerKeyValueStore` through both conformance suites of `effect-sessions/testing`
 * (the public entry, as a user runs them), over `KeyValueStore.layerMemory` and over
 * `KeyValueStore.layerFileSystem`; plus what only this store has: one lock per KeyValueStore
 * (a KeyValueStore has no compare-and-set), its key prefix, its expiry index, and errors without
 * keys.
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { SystemError } from "@effect/platform/Error"
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Clock, Context, Effect, Exit, Layer, Option } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Persistence from "../src/Persistence.js"
import { Redirect, Session } from "../src/Session.js"
import { userIndexKey } from "../src/internal/keyValueStore.js"
import { manualClock } from "../src/internal/testing/clock.js"
import { type PersistenceConformanceOptions, persistenceConformance, sessionsConformance } from "../src/testing.js"

const PREFIX = "sess:"

/** The hooks into the KeyValueStore under the store: raw records, by the layout of src/internal/keyValueStore.ts. */
const hooks: PersistenceConformanceOptions<KeyValueStore.KeyValueStore> = {
  corrupt: (tokenKey, garbage) =>
    Effect.gen(function*() {
      const kv = yield* KeyValueStore.KeyValueStore
      const entry = yield* kv.get(`${PREFIX}t:${tokenKey}`)
      if (Option.isNone(entry)) return yield* Effect.dieMessage(`no token ${tokenKey} to corrupt`)
      if (entry.value.startsWith("c:")) yield* kv.set(`${PREFIX}s:${entry.value.slice(2)}`, garbage)
      else yield* kv.set(`${PREFIX}t:${tokenKey}`, garbage)
    }),
  residue: (r) =>
    Effect.gen(function*() {
      const kv = yield* KeyValueStore.KeyValueStore
      let n = 0
      for (const key of [`s:${r.sessionKey}`, `m:${r.sessionKey}`, ...r.tokenKeys.map((t) => `t:${t}`)]) {
        if (yield* kv.has(PREFIX + key)) n++
      }
      if (r.userId !== undefined) {
        const index = yield* kv.get(PREFIX + userIndexKey(r.userId))
        if (Option.isSome(index) && (JSON.parse(index.value) as Array<string>).includes(r.sessionKey)) n++
      }
      return n
    })
}

const overMemory = (options: Persistence.KeyValueStoreOptions = {}) =>
  Persistence.layerKeyValueStore(options).pipe(Layer.provideMerge(KeyValueStore.layerMemory))

// The contract's expiry tests run with no retention past deadlines (a record is hidden at its deadline).
persistenceConformance("KeyValueStore (memory)", overMemory({ retention: 0 }), hooks)

{
  const dir = mkdtempSync(join(tmpdir(), "effect-sessions-kv-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const files = Persistence.layerKeyValueStore({ retention: 0 }).pipe(
    Layer.provideMerge(KeyValueStore.layerFileSystem(dir)),
    Layer.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
  )
  persistenceConformance("KeyValueStore (file system)", files, { ...hooks, numRuns: 10 })
}

const kvStore = () => Persistence.layerKeyValueStore().pipe(Layer.provide(KeyValueStore.layerMemory))
sessionsConformance("KeyValueStore", kvStore(), { fresh: kvStore })

// ---------------------------------------------------------------------------------------------
// what only this store has
// ---------------------------------------------------------------------------------------------

/** A KeyValueStore over a Map that yields to other fibers before every call, as one on a disk or a network does. */
const yieldingKeyValueStore = () => {
  const map = new Map<string, string>()
  const op = <A>(f: () => A) => Effect.zipRight(Effect.yieldNow(), Effect.sync(f))
  return {
    map,
    kv: KeyValueStore.makeStringOnly({
      get: (key) => op(() => Option.fromNullable(map.get(key))),
      set: (key, value) => op(() => void map.set(key, value)),
      remove: (key) => op(() => void map.delete(key)),
      clear: op(() => map.clear()),
      size: op(() => map.size)
    })
  }
}

const storeOver = (kv: KeyValueStore.KeyValueStore, options: Persistence.KeyValueStoreOptions = {}) =>
  Effect.map(
    Layer.build(Persistence.layerKeyValueStore(options).pipe(Layer.provide(Layer.succeed(KeyValueStore.KeyValueStore, kv)))),
    (context) => Context.get(context, Persistence.Persistence)
  )

const HOUR = 3_600_000

const session = (key: string, now: number, patch: Partial<ConstructorParameters<typeof Session>[0]> = {}) =>
  new Session({
    key,
    tokenKey: `tok-${key}`,
    createdAt: now,
    idIssuedAt: now,
    lastAccessAt: now,
    userId: Option.none(),
    ip: Option.none(),
    userAgentHash: Option.none(),
    data: { n: 0 },
    version: 0,
    authenticatedAt: Option.none(),
    persistent: Option.none(),
    ...patch
  })

describe("Persistence.layerKeyValueStore", () => {
  it.scoped("compare-and-set is atomic over a KeyValueStore that yields between calls: of 50 concurrent saves through two stores over it, exactly one wins", () =>
    Effect.gen(function*() {
      const { kv } = yieldingKeyValueStore()
      const a = yield* storeOver(kv)
      const b = yield* storeOver(kv)
      const now = yield* Clock.currentTimeMillis
      const s = session("cas", now)
      yield* a.create(s, now + HOUR)
      const results = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).save(new Session({ ...s, version: 1, data: { writer: i } }), 0, now + HOUR)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter((won) => won).length, 1)
      assertSome(yield* b.loadSession(s.key), new Session({ ...s, version: 1, data: { writer: results.indexOf(true) } }))
    }))

  it.scoped("of concurrent rotations of one token through two stores over one KeyValueStore, exactly one wins", () =>
    Effect.gen(function*() {
      const { kv } = yieldingKeyValueStore()
      const stores = [yield* storeOver(kv), yield* storeOver(kv)]
      const now = yield* Clock.currentTimeMillis
      const s = session("rot", now)
      yield* stores[0]!.create(s, now + HOUR)
      const results = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => {
          const next = new Session({ ...s, tokenKey: `next-${i}`, version: 1 })
          const redirect = new Redirect({
            tokenKey: s.tokenKey,
            sessionKey: s.key,
            rotatedAt: now,
            expiresAt: now + 60_000,
            ip: Option.none(),
            userAgentHash: Option.none(),
            successorKey: next.tokenKey,
            sealedSuccessor: `sealed-${i}`
          })
          return stores[i % 2]!.rotate({ session: next, expectedVersion: 0, redirect, expiresAt: now + HOUR })
        }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter((won) => won).length, 1)
      const winner = results.indexOf(true)
      const stored = yield* stores[1]!.load(s.tokenKey)
      assert.isTrue(Option.isSome(stored) && stored.value._tag === "Redirect" && stored.value.successorKey === `next-${winner}`)
      for (let i = 0; i < 20; i++) {
        const record = yield* stores[0]!.load(`next-${i}`)
        assert.strictEqual(Option.isSome(record), i === winner, `next-${i}`)
      }
    }))

  it.scoped("the prefix keeps two stores over one KeyValueStore apart, and every key it writes carries it", () =>
    Effect.gen(function*() {
      const { kv, map } = yieldingKeyValueStore()
      const a = yield* storeOver(kv, { prefix: "a/" })
      const b = yield* storeOver(kv, { prefix: "b/" })
      const now = yield* Clock.currentTimeMillis
      const s = session("shared-key", now, { userId: Option.some("ada") })
      yield* a.create(s, now + HOUR)
      assertSome(yield* a.load(s.tokenKey), s)
      assertNone(yield* b.load(s.tokenKey))
      assertNone(yield* b.loadSession(s.key))
      deepStrictEqual(yield* b.sessionsOfUser("ada"), [])
      assert.isAbove(map.size, 0)
      for (const key of map.keys()) assert.isTrue(key.startsWith("a/"), key)
      // No user ID in a key: the user index is keyed by a hash.
      for (const key of map.keys()) assert.notInclude(key, "ada")
    }))

  it.scoped("sweep leaves nothing behind: after every record's retention ends, the KeyValueStore is empty (expiry index included)", () => {
    const now = 10 * HOUR
    const time = manualClock(now)
    return Effect.gen(function*() {
      const { kv, map } = yieldingKeyValueStore()
      const store = yield* storeOver(kv, { retention: "1 minute" })
      const sessions = Array.from({ length: 6 }, (_, i) => session(`sweep-${i}`, now, { userId: Option.some(`user-${i % 2}`) }))
      for (const s of sessions) yield* store.create(s, now + 5 * 60_000)
      // a save that moves the deadline by hours (another bucket of the expiry index)
      assert.isTrue(yield* store.save(new Session({ ...sessions[0]!, version: 1 }), 0, now + 3 * HOUR))
      // a rotation: a redirect with its own deadline
      const next = new Session({ ...sessions[1]!, tokenKey: "tok-sweep-1b", version: 1 })
      const redirect = new Redirect({
        tokenKey: sessions[1]!.tokenKey,
        sessionKey: sessions[1]!.key,
        rotatedAt: now,
        expiresAt: now + 2 * 60_000,
        ip: Option.none(),
        userAgentHash: Option.none(),
        successorKey: next.tokenKey,
        sealedSuccessor: "sealed"
      })
      assert.isTrue(yield* store.rotate({ session: next, expectedVersion: 0, redirect, expiresAt: now + 30 * 60_000 }))
      yield* store.delete(sessions[2]!.key)

      // Past the deadline but within the retention: still there; hidden when the retention ends.
      yield* time.advance(5 * 60_000 + 30_000)
      assertSome(yield* store.loadSession(sessions[3]!.key), sessions[3]!)
      assert.strictEqual(yield* store.sweep, 1, "only the redirect's retention has ended")
      yield* time.advance(60_000)
      assertNone(yield* store.loadSession(sessions[3]!.key))
      assert.strictEqual(yield* store.sweep, 3, "sessions 3, 4 and 5")
      assert.strictEqual(yield* store.sweep, 0)
      yield* time.advance(HOUR)
      assert.strictEqual(yield* store.sweep, 1, "session 1 (rotated)")
      assertSome(yield* store.loadSession(sessions[0]!.key), new Session({ ...sessions[0]!, version: 1 }))
      yield* time.advance(3 * HOUR)
      assert.strictEqual(yield* store.sweep, 1, "session 0 (saved with a later deadline)")
      deepStrictEqual([...map.keys()], [])
    }).pipe(Effect.withClock(time.clock))
  })

  it.scoped("a failing KeyValueStore: a typed Unavailable error that names the method, never the key (a file name holds it)", () =>
    Effect.gen(function*() {
      const token = "secret-token-value"
      const failing = KeyValueStore.makeStringOnly({
        get: (key) =>
          Effect.fail(new SystemError({ module: "FileSystem", method: "readFileString", reason: "PermissionDenied", pathOrDescriptor: `/data/${key}`, description: `EACCES: open '/data/${key}'` })),
        set: () => Effect.void,
        remove: () => Effect.void,
        clear: Effect.void,
        size: Effect.succeed(0)
      })
      const store = yield* storeOver(failing)
      const exit = yield* Effect.exit(store.load(token))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Option.getOrThrow(Cause.failureOption(exit.cause)) : undefined
      assert.isTrue(Persistence.isSessionStoreError(error))
      assert.strictEqual(error!.method, "load")
      assert.strictEqual(error!.reason, "Unavailable")
      assert.notInclude(error!.message, token)
      assert.notInclude(String((error!.cause as Error).stack), token)
      assert.notInclude(JSON.stringify(error), token)
    }))
})
