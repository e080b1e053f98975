// A custom store: the Persistence contract implemented over @effect/platform's KeyValueStore
// (here its in-memory layer; `KeyValueStore.layerFileSystem(dir)` would make it durable).
//
// A KeyValueStore has no compare-and-set, so this store serialises its writes with a semaphore:
// correct for one process, which is all a KeyValueStore can serve. Records go through the
// library's versioned Codec, and a record that does not decode is reported as "Corrupt".
import { KeyValueStore } from "@effect/platform"
import { Clock, Effect, Either, Layer, Option, Redacted, Stream } from "effect"
import { Codec, Persistence, Session, Sessions } from "effect-sessions"

const makeKeyValuePersistence = Effect.gen(function*() {
  const kv = yield* KeyValueStore.KeyValueStore
  const lock = yield* Effect.makeSemaphore(1)
  const fail = (method: string, reason: "Unavailable" | "Corrupt", cause: unknown, key?: string) =>
    new Persistence.SessionStoreError({ method, reason, cause, ...(key === undefined ? {} : { key }) })

  // Layout: t:<tokenKey> → "c:<sessionKey>" or a redirect; s:<sessionKey> → session; u:<userId> → keys
  const get = (method: string, key: string) => Effect.mapError(kv.get(key), (e) => fail(method, "Unavailable", e))
  const put = (method: string, key: string, value: string) => Effect.mapError(kv.set(key, value), (e) => fail(method, "Unavailable", e))
  const del = (method: string, key: string) => Effect.mapError(kv.remove(key), (e) => fail(method, "Unavailable", e))

  const readSession = (method: string, sessionKey: string) =>
    Effect.gen(function*() {
      const text = yield* get(method, `s:${sessionKey}`)
      if (Option.isNone(text)) return Option.none<Session.Session>()
      const decoded = Codec.decodeSession(text.value)
      if (Either.isLeft(decoded)) return yield* Effect.fail(fail(method, "Corrupt", decoded.left, sessionKey))
      // Expired records may linger (no TTL here); hide them like the built-in stores do.
      const now = yield* Clock.currentTimeMillis
      const deadline = Number((yield* get(method, `e:${sessionKey}`)).pipe(Option.getOrElse(() => "Infinity")))
      return deadline <= now ? Option.none<Session.Session>() : Option.some(decoded.right)
    })

  const users = (method: string, userId: string) =>
    Effect.map(get(method, `u:${userId}`), (v) => new Set<string>(Option.match(v, { onNone: () => [], onSome: (s) => JSON.parse(s) })))
  const index = (method: string, before: Option.Option<string>, after: Session.Session | undefined, key: string) =>
    Effect.gen(function*() {
      const nextUser = after === undefined ? Option.none<string>() : after.userId
      if (Option.isSome(before) && !Option.contains(nextUser, before.value)) {
        const set = yield* users(method, before.value)
        set.delete(key)
        yield* put(method, `u:${before.value}`, JSON.stringify([...set]))
      }
      if (Option.isSome(nextUser)) {
        const set = yield* users(method, nextUser.value)
        set.add(key)
        yield* put(method, `u:${nextUser.value}`, JSON.stringify([...set]))
      }
    })
  const write = (method: string, session: Session.Session, expiresAt: number) =>
    Effect.zipRight(put(method, `s:${session.key}`, Codec.encodeSession(session)), put(method, `e:${session.key}`, String(expiresAt)))

  const removeSession = (method: string, sessionKey: string) =>
    Effect.gen(function*() {
      const stored = yield* readSession(method, sessionKey)
      if (Option.isNone(stored)) return
      yield* del(method, `s:${sessionKey}`)
      yield* del(method, `e:${sessionKey}`)
      yield* del(method, `t:${stored.value.tokenKey}`)
      yield* index(method, stored.value.userId, undefined, sessionKey)
    })

  const store: Persistence.PersistenceShape = {
    load: (tokenKey) =>
      Effect.gen(function*() {
        const entry = yield* get("load", `t:${tokenKey}`)
        if (Option.isNone(entry)) return Option.none()
        if (entry.value.startsWith("c:")) return yield* readSession("load", entry.value.slice(2))
        const decoded = Codec.decode(entry.value)
        if (Either.isLeft(decoded)) return yield* Effect.fail(fail("load", "Corrupt", decoded.left, tokenKey))
        const now = yield* Clock.currentTimeMillis
        const record = decoded.right
        return record._tag === "Redirect" && record.expiresAt <= now ? Option.none() : Option.some(record)
      }),
    loadSession: (sessionKey) => readSession("loadSession", sessionKey),
    create: (session, expiresAt) =>
      lock.withPermits(1)(Effect.gen(function*() {
        yield* write("create", session, expiresAt)
        yield* put("create", `t:${session.tokenKey}`, `c:${session.key}`)
        yield* index("create", Option.none(), session, session.key)
      })),
    save: (session, expectedVersion, expiresAt) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const stored = yield* readSession("save", session.key)
        if (Option.isNone(stored) || stored.value.version !== expectedVersion || stored.value.tokenKey !== session.tokenKey) return false
        yield* write("save", session, expiresAt)
        yield* index("save", stored.value.userId, session, session.key)
        return true
      })),
    rotate: ({ expectedVersion, expiresAt, redirect, session }) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const stored = yield* readSession("rotate", session.key)
        if (Option.isNone(stored) || stored.value.version !== expectedVersion || stored.value.tokenKey !== redirect.tokenKey) return false
        yield* write("rotate", session, expiresAt)
        yield* put("rotate", `t:${redirect.tokenKey}`, Codec.encode(redirect))
        yield* put("rotate", `t:${session.tokenKey}`, `c:${session.key}`)
        yield* index("rotate", stored.value.userId, session, session.key)
        return true
      })),
    delete: (sessionKey) => lock.withPermits(1)(removeSession("delete", sessionKey)),
    deleteToken: (tokenKey) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const entry = yield* get("deleteToken", `t:${tokenKey}`)
        if (Option.isSome(entry) && entry.value.startsWith("c:")) yield* removeSession("deleteToken", entry.value.slice(2))
        yield* del("deleteToken", `t:${tokenKey}`)
      })),
    // A record that does not decode is skipped and deleted (the contract): one bad session must
    // not stop a user from logging out everywhere.
    sessionsOfUser: (userId) =>
      Effect.gen(function*() {
        const keys = yield* users("sessionsOfUser", userId)
        const sessions = yield* Effect.forEach([...keys], (k) =>
          readSession("sessionsOfUser", k).pipe(
            Effect.catchIf((e) => e.reason === "Corrupt", () =>
              lock.withPermits(1)(Effect.gen(function*() {
                yield* Effect.logWarning("dropped a corrupt session record")
                yield* del("sessionsOfUser", `s:${k}`)
                yield* del("sessionsOfUser", `e:${k}`)
                yield* index("sessionsOfUser", Option.some(userId), undefined, k)
                return Option.none<Session.Session>()
              })))
          ))
        return sessions.flatMap(Option.toArray)
      }),
    // A KeyValueStore cannot list its keys, so expired records are only hidden, never swept.
    sweep: Effect.succeed(0),
    // One process only: no other process to tell about a refreshed user, nothing to hear.
    publishUserInvalidation: () => Effect.void,
    invalidations: Stream.empty
  }
  return store
})

const layerKeyValuePersistence = Layer.effect(Persistence.Persistence, makeKeyValuePersistence)

// Use it like any store.
const program = Effect.gen(function*() {
  const sessions = yield* Sessions.Sessions
  const client = Session.client({ ip: "198.51.100.4", userAgent: "example/1.0" })
  const handle = yield* sessions.create(client)
  yield* sessions.set(handle, "cart", ["book", "pen"])
  const loggedIn = yield* sessions.logIn(handle, "ada")
  const again = yield* sessions.resolve(Redacted.value(loggedIn.token), client).pipe(Effect.map((r) => r.session))
  const data = Option.map(again, (a) => a.session.data)
  console.log("custom store round trip:", JSON.stringify(Option.getOrNull(data)))
  console.log("sessions of ada:", (yield* sessions.listSessions("ada")).length)
  if (Option.isNone(again)) return yield* Effect.dieMessage("the session was lost")
})

Effect.runPromise(
  program.pipe(
    Effect.provide(Sessions.layer({ cookie: { secure: false } })),
    Effect.provide(layerKeyValuePersistence),
    Effect.provide(KeyValueStore.layerMemory),
    Effect.scoped
  )
).catch((e) => {
  console.error(e)
  process.exit(1)
})
