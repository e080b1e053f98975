/**
 * The floor of a session middleware: the Effect plumbing every request through `Http.middleware()`
 * goes through, with no session — read the request's cookie header, a `Ref` for the request's
 * state, a pre-response handler that reads it and sets a header, the app run with a service
 * provided and its failure caught. What `Http.middleware()` costs over it is the session's own
 * work. Used by the `web handler floor` micro row and by the `(a) @effect/platform + a
 * pass-through middleware` HTTP server.
 */
import { HttpApp, HttpMiddleware, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect, Ref } from "effect"

/** The service the pass-through middleware provides (as `Http.middleware()` provides `CurrentSession`). */
export class Marker extends Context.Tag("bench/Marker")<Marker, { readonly cookie: string | undefined }>() {}

/** A middleware of the same shape as `Http.middleware()`, doing no session work. */
export const passThrough = HttpMiddleware.make((app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const cookie = request.headers.cookie
    const state = yield* Ref.make(cookie === undefined ? "none" : "seen")
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.map(Ref.get(state), (s) => HttpServerResponse.setHeader(response, "vary", s === "none" ? "cookie" : "Cookie"))
    )
    const result = yield* Effect.either(Effect.provideService(app, Marker, { cookie }))
    return result._tag === "Left" ? yield* Effect.fail(result.left) : result.right
  })
)
