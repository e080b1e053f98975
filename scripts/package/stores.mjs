// Each store entry of the installed package, under plain node. Run in a scratch project:
//   node stores.mjs missing <Entry>...  the memory store works; each named entry imports fine
//                                       and building its layer fails with the message that
//                                       names the packages to install
//   node stores.mjs present             every driver is installed: SQLite (:memory:) serves a
//                                       session; Redis and PostgreSQL load their drivers and fail
//                                       to connect to a closed port ("Unavailable")
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { Persistence, SecureRandom, Session, Sessions } from "effect-sessions"

const entries = {
  Redis: {
    load: () => import("effect-sessions/Persistence/Redis"),
    build: (m) => m.layer({ url: "redis://127.0.0.1:1", connectTimeout: 500 }),
    message: 'effect-sessions/Persistence/Redis needs the package "ioredis": npm install ioredis@^5.11.1'
  },
  Pg: {
    load: () => import("effect-sessions/Persistence/Pg"),
    build: (m) => m.layer({ url: "postgres://nobody@127.0.0.1:1/none", client: { connectTimeout: "2 seconds" } }),
    message: 'effect-sessions/Persistence/Pg needs the packages "@effect/sql" and "@effect/sql-pg": ' +
      "npm install @effect/sql@^0.52.1 @effect/sql-pg@^0.53.0"
  },
  Sqlite: {
    load: () => import("effect-sessions/Persistence/Sqlite"),
    build: (m) => m.layer({ filename: ":memory:" }),
    message: 'effect-sessions/Persistence/Sqlite needs the packages "@effect/sql", "@effect/sql-sqlite-node" and ' +
      '"better-sqlite3": npm install @effect/sql@^0.52.1 @effect/sql-sqlite-node@^0.53.0 better-sqlite3@^12.11.1'
  },
  Sql: {
    load: () => import("effect-sessions/Persistence/Sql"),
    build: (m) => m.layer(),
    message: 'effect-sessions/Persistence/Sql needs the package "@effect/sql": npm install @effect/sql@^0.52.1'
  }
}

const fail = (text) => {
  console.error(`FAIL ${text}`)
  process.exitCode = 1
}

// A session written and read back through the service, on the given store.
const roundTrip = (store) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const persistence = yield* Persistence.Persistence
    const client = Session.client({ ip: "203.0.113.9", userAgent: "check-package" })
    const first = Option.getOrThrow(yield* sessions.resolve("", client, { create: true }).pipe(Effect.map((r) => r.session)))
    yield* sessions.set(first, "n", 41)
    yield* sessions.clearCache
    const again = Option.getOrThrow(yield* sessions.resolve(Redacted.value(first.token), client).pipe(Effect.map((r) => r.session)))
    const n = yield* sessions.get(again, "n")
    yield* persistence.sweep
    return n
  }).pipe(
    Effect.provide(Sessions.layer({ cookie: { secure: false } }).pipe(Layer.provideMerge(store))),
    Effect.provide(SecureRandom.layer),
    Effect.scoped
  )

const checkRoundTrip = async (name, store) => {
  const n = await Effect.runPromise(roundTrip(store))
  if (Option.isSome(n) && n.value === 41) console.log(`ok   ${name}: a session written and read back`)
  else fail(`${name}: read back ${JSON.stringify(n)}`)
}

// Builds a layer and returns its failure (or undefined if it was built).
const buildError = (layer) =>
  Effect.runPromise(Layer.build(layer).pipe(Effect.provide(SecureRandom.layer), Effect.scoped, Effect.either)).then(
    (result) => (Either.isLeft(result) ? result.left : undefined)
  )

const mode = process.argv[2]
await checkRoundTrip("memory store", Persistence.layerMemory)

if (mode === "missing") {
  for (const name of process.argv.slice(3)) {
    const entry = entries[name]
    const module = await entry.load() // importing never loads the driver
    const error = await buildError(entry.build(module))
    if (error === undefined) fail(`${name}: the layer was built without its driver`)
    else if (!Persistence.isSessionStoreError(error)) fail(`${name}: not a SessionStoreError: ${error}`)
    else if (!error.message.includes(entry.message)) fail(`${name}: unexpected message: ${error.message}`)
    else console.log(`ok   ${name} without its driver: ${error.message}`)
  }
} else if (mode === "present") {
  const Sqlite = await entries.Sqlite.load()
  await checkRoundTrip("Sqlite (:memory:)", Sqlite.layer({ filename: ":memory:" }))
  for (const name of ["Redis", "Pg"]) {
    const entry = entries[name]
    const error = await buildError(entry.build(await entry.load()))
    if (error === undefined) fail(`${name}: connected to a closed port`)
    else if (!Persistence.isSessionStoreError(error) || error.reason !== "Unavailable" || error.message.includes("needs the package")) {
      fail(`${name}: expected an "Unavailable" connection error from the driver, got: ${error.message ?? error}`)
    } else console.log(`ok   ${name} loads its driver (a closed port is "Unavailable": ${error.message.slice(0, 90)}…)`)
  }
} else {
  fail(`usage: node stores.mjs missing <Entry>... | present (got ${mode})`)
}
