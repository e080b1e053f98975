/**
 * (a) The baseline: a bare `@effect/platform` NodeHttpServer with a process-global counter, no
 * sessions — the same router, response and server setup as the effect-sessions server.
 *
 *   POST /count → {"count":n} (increments), GET /count → {"count":n}, GET /stats → {"answered":n}
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { announce, HOST, stats } from "./common.js"

let count = 0

const app = HttpRouter.empty.pipe(
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

const Announce = Layer.effectDiscard(
  HttpServer.addressWith((address) => Effect.sync(() => announce(address._tag === "TcpAddress" ? address.port : -1)))
)

HttpServer.serve(app).pipe(
  Layer.merge(Announce),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: HOST })),
  Layer.launch,
  NodeRuntime.runMain
)
