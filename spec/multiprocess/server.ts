/**
 * A small session server for the multi-process and fault tests (one of several processes that
 * share one store): `node --import tsx spec/multiprocess/server.ts`.
 *
 * Environment:
 * - `STORE`: `redis`, `redis-cluster` or `postgres`;
 * - `REDIS_URL` / `REDIS_CLUSTER_NODES` (`host:port,host:port,…`) / `DATABASE_URL`: where the
 *   store is (a PostgreSQL URL may carry `?application_name=…`, which names this process's
 *   connections);
 * - `PREFIX`: the Redis key prefix or the SQL table prefix;
 * - `ORIGIN_ID` (optional): this process's id in invalidation messages;
 * - `ROTATION`, `GRACE`, `TOUCH` (optional): the token rotation interval, grace period and touch
 *   interval (defaults: 300 millis, 10 seconds, 100 millis);
 * - `MAX_CACHE_SIZE` (optional): the local cache's capacity (default: the library's; 0: no cache).
 * - `MAX_SESSIONS_PER_USER`, `ON_SESSION_LIMIT` (optional): the limit on a user's sessions and its
 *   policy (default: no limit).
 *
 * Routes (all behind `Http.middleware()`):
 * - `POST /api/counter` → `{ "count": n }` (increments through `CurrentSession.update`)
 * - `GET /api/counter` → `{ "count": n }`
 * - `POST /api/login` with `{ "user": "…" }` → `{ "user": "…", "keys": [...] }` (the data keys
 *   right after the log-in)
 * - `POST /api/logout-everywhere` → `{ "ended": n }`
 * - `GET /api/me` → `{ "user": string | null, "count": n }`
 * - `POST /api/mark` with `{ "key": "…" }` → sets `key` to `true`, then `{ "user": string | null }`
 *   (the user as read after the write)
 * - `GET /api/data` → `{ "user": string | null, "keys": [...] | null }`
 * - `GET /api/sessions?user=…` → `{ "count": n }` (the user's live sessions, as this process lists them)
 *
 * A log-in refused by `maxSessionsPerUser` answers 409 `{ "error": "session limit" }`.
 *
 * Listens on 127.0.0.1, port 0, and prints `Listening on http://127.0.0.1:PORT`. SIGTERM or
 * SIGINT close the server and the store connections.
 */
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Layer, Logger, LogLevel, Option, Schema } from "effect"
import { createServer } from "node:http"
import * as Http from "../../src/Http.js"
import type { ConfigError } from "effect"
import type { Persistence, SessionStoreError } from "../../src/Persistence.js"
import * as Pg from "../../src/Persistence/Pg.js"
import * as Redis from "../../src/Persistence/Redis.js"
import * as SecureRandom from "../../src/SecureRandom.js"
import type { Json } from "../../src/Session.js"
import * as Sessions from "../../src/Sessions.js"

const env = (name: string): string | undefined => {
  const value = process.env[name]
  return value === undefined || value === "" ? undefined : value
}

const required = (name: string): string => {
  const value = env(name)
  if (value === undefined) throw new Error(`${name} is required`)
  return value
}

/** A duration from the environment (e.g. `300 millis`); invalid text fails at start-up. */
const duration = (name: string, fallback: Duration.DurationInput): Duration.Duration => {
  const text = env(name)
  if (text === undefined) return Duration.decode(fallback)
  const parsed = Duration.decodeUnknown(text)
  if (Option.isNone(parsed)) throw new Error(`${name}: not a duration: ${JSON.stringify(text)}`)
  return parsed.value
}

const store = (): Layer.Layer<Persistence, SessionStoreError | ConfigError.ConfigError> => {
  const kind = required("STORE")
  const prefix = required("PREFIX")
  const originId = env("ORIGIN_ID")
  switch (kind) {
    case "redis":
      return Redis.layer({ url: required("REDIS_URL"), prefix, originId }).pipe(Layer.provide(SecureRandom.layer))
    case "redis-cluster":
      return Redis.layerCluster({ nodes: required("REDIS_CLUSTER_NODES"), prefix, originId }).pipe(Layer.provide(SecureRandom.layer))
    case "postgres":
      return Pg.layer({ url: required("DATABASE_URL"), tablePrefix: prefix, originId }).pipe(Layer.provide(SecureRandom.layer))
    default:
      throw new Error(`STORE must be redis, redis-cluster or postgres, got ${JSON.stringify(kind)}`)
  }
}

const asCount = (value: Option.Option<Json>): number =>
  Option.match(value, { onNone: () => 0, onSome: (v) => (typeof v === "number" ? v : 0) })

const Login = Schema.Struct({ user: Schema.String })
const Mark = Schema.Struct({ key: Schema.String })
const badBody = {
  ParseError: () => HttpServerResponse.json({ error: "unexpected body" }, { status: 400 }),
  RequestError: () => HttpServerResponse.json({ error: "unreadable body" }, { status: 400 })
} as const

const app = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/api/counter",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const count = yield* session.update("count", (old) => asCount(old) + 1)
      return yield* HttpServerResponse.json({ count })
    })
  ),
  HttpRouter.get(
    "/api/counter",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      return yield* HttpServerResponse.json({ count: asCount(yield* session.get("count")) })
    })
  ),
  HttpRouter.post(
    "/api/login",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const { user } = yield* HttpServerRequest.schemaBodyJson(Login)
      yield* session.logIn(user)
      const keys = Option.match(yield* session.session, { onNone: () => [], onSome: (s) => Object.keys(s.data) })
      return yield* HttpServerResponse.json({ user, keys })
    }).pipe(Effect.catchTags({
      SessionLimitError: () => HttpServerResponse.json({ error: "session limit" }, { status: 409 }),
      ParseError: () => HttpServerResponse.json({ error: "expected {\"user\": string}" }, { status: 400 }),
      RequestError: () => HttpServerResponse.json({ error: "unreadable body" }, { status: 400 })
    }))
  ),
  HttpRouter.post(
    "/api/mark",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const { key } = yield* HttpServerRequest.schemaBodyJson(Mark)
      yield* session.set(key, true)
      return yield* HttpServerResponse.json({ user: Option.getOrNull(yield* session.userId) })
    }).pipe(Effect.catchTags(badBody))
  ),
  HttpRouter.get(
    "/api/data",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const current = yield* session.session
      return yield* HttpServerResponse.json({
        user: Option.getOrNull(Option.flatMap(current, (s) => s.userId)),
        keys: Option.getOrNull(Option.map(current, (s) => Object.keys(s.data)))
      })
    })
  ),
  HttpRouter.post(
    "/api/logout-everywhere",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      return yield* HttpServerResponse.json({ ended: yield* session.logOutEverywhere })
    })
  ),
  HttpRouter.get(
    "/api/sessions",
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const { user } = yield* HttpServerRequest.schemaSearchParams(Login)
      return yield* HttpServerResponse.json({ count: (yield* sessions.listSessions(user)).length })
    }).pipe(Effect.catchTags({ ParseError: () => HttpServerResponse.json({ error: "expected ?user=" }, { status: 400 }) }))
  ),
  HttpRouter.get(
    "/api/me",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const user = yield* session.userId
      const count = asCount(yield* session.get("count"))
      return yield* HttpServerResponse.json({ user: Option.getOrNull(user), count })
    })
  ),
  Http.middleware()
)

const sessions = Sessions.layer({
  idRotationInterval: duration("ROTATION", "300 millis"),
  gracePeriod: duration("GRACE", "10 seconds"),
  touchInterval: duration("TOUCH", "100 millis"),
  ...(env("MAX_CACHE_SIZE") === undefined ? {} : { cache: Number(env("MAX_CACHE_SIZE")) === 0 ? false : { capacity: Number(env("MAX_CACHE_SIZE")) } }),
  idleTimeout: "10 minutes",
  ...(env("MAX_SESSIONS_PER_USER") === undefined ? {} : { maxSessionsPerUser: Number(env("MAX_SESSIONS_PER_USER")) }),
  ...(env("ON_SESSION_LIMIT") === "refuse" ? { onSessionLimit: "refuse" as const } : {}),
  cookie: { secure: false }
}).pipe(Layer.provide(store()))

const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) =>
    address._tag === "TcpAddress"
      ? Console.log(`Listening on http://127.0.0.1:${address.port}`)
      : Console.log(`Listening on ${address.path}`)
  )
)

const Main = Layer.mergeAll(HttpServer.serve(app), Announce).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provide(sessions)
)

// Warnings (a store outage: one per failed request) are expected in the fault tests: errors only.
NodeRuntime.runMain(Layer.launch(Main).pipe(Logger.withMinimumLogLevel(env("LOG_LEVEL") === "debug" ? LogLevel.Debug : LogLevel.Error)))
