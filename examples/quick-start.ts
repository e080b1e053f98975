// Quick start: a counter kept in a server-side session, on the in-memory store.
// Run: npx tsx examples/quick-start.ts — then open http://127.0.0.1:3000 and reload.
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option, Schema } from "effect"
import { createServer } from "node:http"
import { Http, Session, Sessions } from "effect-sessions"

// A typed key: values are stored through the Schema, and a wrong type is a compile error.
const Visits = Session.key("visits", Schema.Number)

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      // `update` is atomic per session: concurrent requests never lose an increment.
      const visits = yield* session.update(Visits, (n) => Option.getOrElse(n, () => 0) + 1)
      return HttpServerResponse.text(`You have been here ${visits} time(s).`)
    })
  ),
  Http.middleware()
)

const port = Number(process.env.PORT ?? 3000)

HttpServer.serve(app).pipe(
  HttpServer.withLogAddress,
  Layer.provide(Sessions.layerMemory({ cookie: { secure: false } })), // plain http on localhost
  Layer.provide(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" })),
  Layer.launch,
  Effect.tap(() => Effect.log("stopped")),
  NodeRuntime.runMain
)
