/**
 * (b) effect-sessions: `Http.middleware()` and `CurrentSession.update` on a store chosen by
 * `--store memory|sqlite|pg|redis` (library defaults, but `cookie.secure: false`).
 *
 *   POST /count → increments the session's counter (creating the session) → {"count":n}
 *   GET /count  → the session's counter, GET /stats → {"answered":n}
 *
 *   --store sqlite --file <path>     --store pg --url <url> --prefix <table prefix>
 *   --store redis --url <url> --prefix <key prefix>     --cache <capacity> (0: no cache)
 *   --store redis-cluster --nodes <host:port,host:port,…> --prefix <key prefix>
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import * as Http from "../../src/Http.js"
import * as Persistence from "../../src/Persistence.js"
import * as Pg from "../../src/Persistence/Pg.js"
import * as Redis from "../../src/Persistence/Redis.js"
import * as Sqlite from "../../src/Persistence/Sqlite.js"
import * as SecureRandom from "../../src/SecureRandom.js"
import * as Sessions from "../../src/Sessions.js"
import { announce, arg, HOST, stats } from "./common.js"

const store = arg("store", "memory")
const cache = arg("cache", "")

const counter = (n: Option.Option<unknown>): number => {
  const v = Option.getOrElse(n, () => 0)
  return typeof v === "number" ? v : 0
}

const app = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/count",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const count = yield* session.update("count", (n) => counter(n) + 1)
      stats.answered++
      return HttpServerResponse.unsafeJson({ count })
    })
  ),
  HttpRouter.get(
    "/count",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      return HttpServerResponse.unsafeJson({ count: counter(yield* session.get("count")) })
    })
  ),
  HttpRouter.get("/stats", Effect.sync(() => HttpServerResponse.unsafeJson(stats))),
  Http.middleware()
)

const persistence = (): Layer.Layer<Persistence.Persistence, unknown> => {
  switch (store) {
    case "memory":
      return Persistence.layerMemory
    case "sqlite":
      return Sqlite.layer({ filename: arg("file"), tablePrefix: arg("prefix", "bench_") }).pipe(Layer.provide(SecureRandom.layer))
    case "pg":
      return Pg.layer({ url: arg("url"), tablePrefix: arg("prefix") }).pipe(Layer.provide(SecureRandom.layer))
    case "redis":
      return Redis.layer({ url: arg("url"), prefix: arg("prefix") }).pipe(Layer.provide(SecureRandom.layer))
    case "redis-cluster":
      return Redis.layerCluster({ nodes: arg("nodes"), prefix: arg("prefix") }).pipe(Layer.provide(SecureRandom.layer))
    default:
      throw new Error(`unknown store ${store}`)
  }
}

const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) => Effect.sync(() => announce(address._tag === "TcpAddress" ? address.port : -1)))
)

HttpServer.serve(app).pipe(
  Layer.merge(Announce),
  Layer.provide(
    Sessions.layer({ cookie: { secure: false }, ...(cache === "" ? {} : { cache: Number(cache) === 0 ? false : { capacity: Number(cache) } }) })
  ),
  Layer.provide(persistence()),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: HOST })),
  Layer.launch,
  NodeRuntime.runMain
)
