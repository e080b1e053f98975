// A custom store: session data encrypted at rest, over any other store. The store contract
// (Persistence.PersistenceShape) is small, so a store can be a wrapper: this one seals `data` with
// AES-256-GCM before the inner store sees it and opens it on the way back, so that a dump of the
// Redis keys or SQL rows holds no user data (the user ID stays readable: the user index needs it).
// A record that does not open is "Corrupt", as the contract asks; examples/custom-store.test.ts runs
// the conformance suites of effect-sessions/testing against it.
//
// (A store over a key-value service needs no code of yours: Persistence.layerKeyValueStore() runs
// over @effect/platform's KeyValueStore, e.g. KeyValueStore.layerFileSystem(directory).)
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { pathToFileURL } from "node:url"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { Persistence, Session, Sessions } from "effect-sessions"

const SEALED = "$sealed"

/** `store` with every session's data sealed under `key` (32 bytes), bound to the session's key. */
export const encrypted = (store: Persistence.PersistenceShape, key: Redacted.Redacted<Uint8Array>): Persistence.PersistenceShape => {
  const seal = (session: Session.Session): Session.Session => {
    const iv = randomBytes(12)
    const cipher = createCipheriv("aes-256-gcm", Redacted.value(key), iv).setAAD(Buffer.from(session.key))
    const sealed = Buffer.concat([cipher.update(JSON.stringify(session.data), "utf8"), cipher.final()])
    const blob = Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString("base64")
    return new Session.Session({ ...session, data: { [SEALED]: blob } })
  }
  const open = (method: string, session: Session.Session): Either.Either<Session.Session, Persistence.SessionStoreError> =>
    Either.try({
      try: () => {
        const blob = Buffer.from(String(session.data[SEALED]), "base64")
        const decipher = createDecipheriv("aes-256-gcm", Redacted.value(key), blob.subarray(0, 12)).setAAD(Buffer.from(session.key))
        decipher.setAuthTag(blob.subarray(12, 28))
        const data = JSON.parse(Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]).toString("utf8"))
        return new Session.Session({ ...session, data })
      },
      catch: () => new Persistence.SessionStoreError({ method, reason: "Corrupt", key: session.key, cause: new Error("the session data does not open") })
    })
  const openRecord = (method: string) => (record: Option.Option<Session.TokenRecord>) =>
    Option.isSome(record) && record.value._tag === "Session"
      ? Effect.map(open(method, record.value), Option.some)
      : Effect.succeed(record)

  return {
    ...store,
    load: (tokenKey) => Effect.flatMap(store.load(tokenKey), openRecord("load")),
    loadSession: (sessionKey) =>
      Effect.flatMap(store.loadSession(sessionKey), (s) => Effect.map(openRecord("loadSession")(s), (r) => r as Option.Option<Session.Session>)),
    create: (session, expiresAt) => store.create(seal(session), expiresAt),
    save: (session, expectedVersion, expiresAt) => store.save(seal(session), expectedVersion, expiresAt),
    rotate: (rotation) => store.rotate({ ...rotation, session: seal(rotation.session) }),
    // A log-in under maxSessionsPerUser: the inner store counts and ends sessions by their keys
    // and times, which stay readable; only the data is sealed. (Everything else passes through
    // as it is — the spread above: delete, deleteToken, sweep, invalidations, and the instant of
    // logOutEveryone, revokeUntil / revokedUntil, which holds no user data.)
    rotateWithinLimit: (rotation, limit) => store.rotateWithinLimit({ ...rotation, session: seal(rotation.session) }, limit),
    // The contract: a record that does not decode is skipped, deleted and logged, never an error.
    sessionsOfUser: (userId) =>
      Effect.flatMap(store.sessionsOfUser(userId), (sessions) =>
        Effect.map(
          Effect.forEach(sessions, (s) =>
            Either.match(open("sessionsOfUser", s), {
              onLeft: () => Effect.as(Effect.zipRight(Effect.logWarning("dropped a session that does not open"), store.delete(s.key)), []),
              onRight: (opened) => Effect.succeed([opened])
            })),
          (lists) => lists.flat()
        ))
  }
}

/** The encrypted store over whichever store the layer is given (`Layer.provide(innerStore)`). */
export const layerEncrypted = (key: Redacted.Redacted<Uint8Array>): Layer.Layer<Persistence.Persistence, never, Persistence.Persistence> =>
  Layer.effect(Persistence.Persistence, Effect.map(Persistence.Persistence, (inner) => encrypted(inner, key)))

// Run it (`npx tsx examples/custom-store.ts`): the test file imports the store without this part.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const key = Redacted.make(randomBytes(32)) // in an app: from a secret store, e.g. Config.redacted
  const inner = Effect.runSync(Persistence.makeMemory)
  const store = Layer.succeed(Persistence.Persistence, encrypted(inner, key))
  const program = Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const client = Session.client({ ip: "198.51.100.4", userAgent: "example/1.0" })
    const handle = yield* sessions.create(client)
    yield* sessions.set(handle, "cart", ["book", "pen"])
    yield* sessions.clearCache
    const again = yield* sessions.resolve(Redacted.value(handle.token), client).pipe(Effect.map((r) => r.session))
    if (Option.isNone(again)) return yield* Effect.dieMessage("the session was lost")
    console.log("through the store:", JSON.stringify(again.value.session.data))
    const raw = Option.map(yield* inner.loadSession(handle.session.key), (s) => JSON.stringify(s.data))
    console.log("what the inner store holds:", `${Option.getOrElse(raw, () => "nothing").slice(0, 60)}…`)
    if (Option.isNone(raw) || raw.value.includes("book")) return yield* Effect.dieMessage("no sealed record at rest")
  })
  Effect.runPromise(program.pipe(Effect.provide(Sessions.layer({ cookie: { secure: false } }).pipe(Layer.provide(store))))).catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
