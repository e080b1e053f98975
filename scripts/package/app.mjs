// The README's quick start as a user's plain-node app (no tsx, no bundler): a counter kept in a
// server-side session on the in-memory store. `scripts/check-package.ts` copies it into a scratch
// project where effect-sessions is installed from its tarball, starts it with PORT=0 and POSTs
// to /count twice with a cookie jar (expecting 1, then 2).
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { Http, Sessions } from "effect-sessions"

const app = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/count",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const count = yield* session.update("count", (n) => Option.getOrElse(n, () => 0) + 1)
      return HttpServerResponse.text(String(count))
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
  NodeRuntime.runMain
)
