/**
 * The demo server (long-running): `npm run demo`, or `npx tsx examples/demo/server.ts`.
 *
 * Listens on `127.0.0.1:${PORT:-3000}` (`PORT=0` picks a free port) and prints
 * `Listening on http://127.0.0.1:PORT`. The store comes from `SESSIONS_STORE` (see store.ts),
 * the session options from `SESSIONS_*` over the demo's defaults (see app.ts), e.g.
 *
 *     SESSIONS_ID_ROTATION_INTERVAL="20 seconds" SESSIONS_GRACE_PERIOD="10 seconds" npm run demo
 *
 * `DEMO_RECENT_LOGIN_MAX_AGE` (default `5 minutes`) is how recent a log-in "change password" asks for.
 *
 * Stop it with Ctrl-C (SIGINT) or SIGTERM: it closes the server and the store connections.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Console, Duration, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { Password, SessionConfig } from "../../src/index.js"
import { app, layerSessions, RecentLoginMaxAge, StoreName } from "./app.js"
import * as Notices from "./notices.js"
import * as Store from "./store.js"

const HOST = "127.0.0.1"

const ServerLive = Layer.unwrapEffect(
  Effect.map(
    // Config.port refuses 0, which asks the OS for a free port (tests use it).
    Config.integer("PORT").pipe(
      Config.validate({ message: "Expected a port from 0 to 65535", validation: (p) => p >= 0 && p <= 65535 }),
      Config.withDefault(3000)
    ),
    (port) => NodeHttpServer.layer(createServer, { host: HOST, port })
  )
)

/** Prints where the server listens (tests parse this line) and how the sessions are configured. */
const Announce = Layer.effectDiscard(Effect.gen(function*() {
  const config = yield* SessionConfig.SessionConfig
  const store = yield* StoreName
  const f = Duration.format
  yield* HttpServer.addressWith((address) =>
    address._tag === "TcpAddress"
      ? Console.log(`Listening on http://${HOST}:${address.port}`)
      : Console.log(`Listening on ${address.path}`)
  )
  yield* Console.log(
    `store: ${store}; token rotation every ${f(config.idRotationInterval)}, grace period ${f(config.gracePeriod)}, ` +
      `idle timeout ${f(config.idleTimeout)}, absolute timeout ${f(config.absoluteTimeout)}, touch interval ${f(config.touchInterval)}; ` +
      `cookie ${config.cookie.name}${config.cookie.secure ? " (Secure)" : ""}`
  )
}))

const Main = Layer.unwrapEffect(Effect.gen(function*() {
  const kind = yield* Store.storeKind
  const target = yield* Store.storeTarget(kind)
  // The password word lists load once here rather than on the first login (~100 ms).
  yield* Password.preload
  // The security notices (notices.ts) listen to the session events for the server's lifetime.
  const sessions = Layer.provideMerge(Notices.layer, layerSessions(Store.layerFor(kind)))
  // How recent a log-in "change password" asks for (the browser test shortens it).
  const recentLogin = yield* Config.duration("DEMO_RECENT_LOGIN_MAX_AGE").pipe(Config.withDefault(Duration.minutes(5)))
  return Layer.mergeAll(HttpServer.serve(app), Announce).pipe(
    Layer.provide(ServerLive),
    Layer.provide(sessions),
    Layer.provide(Layer.succeed(StoreName, target)),
    Layer.provide(Layer.succeed(RecentLoginMaxAge, recentLogin))
  )
}))

NodeRuntime.runMain(Layer.launch(Main))
