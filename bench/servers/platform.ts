/**
 * (a) The baseline: a bare `@effect/platform` NodeHttpServer with a process-global counter, no
 * sessions — the same router, response and server setup as the effect-sessions server.
 *
 *   POST /count → {"count":n} (increments), GET /count → {"count":n}, GET /stats → {"answered":n}
 *
 *   --middleware pass-through   the routes behind bench/floorMiddleware.ts: a middleware of the
 *                               same shape as Http.middleware() that does no session work (the
 *                               floor any session middleware of this shape starts from)
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { passThrough } from "../floorMiddleware.js"
import { announce, arg, HOST, stats } from "./common.js"

let count = 0

const routes = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/count",
    Effect.sync(() => {
      count++
      stats.answered++
      return HttpServerResponse.unsafeJson({ count })
    })
  ),
  HttpRouter.get("/count", Effect.sync(() => HttpServerResponse.unsafeJson({ count }))),
  HttpRouter.get("/stats", Effect.sync(() => HttpServerResponse.unsafeJson(stats)))
)

const middleware = arg("middleware", "none")
if (middleware !== "none" && middleware !== "pass-through") throw new Error(`unknown middleware ${middleware}`)
const app = middleware === "pass-through" ? passThrough(routes) : routes

const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) => Effect.sync(() => announce(address._tag === "TcpAddress" ? address.port : -1)))
)

HttpServer.serve(app).pipe(
  Layer.merge(Announce),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: HOST })),
  Layer.launch,
  NodeRuntime.runMain
)
