/**
 * Test helpers for the HTTP edge: start a server layer on an ephemeral port of a loopback
 * address, send requests with `fetch` (which keeps no cookies) through a small cookie jar, parse
 * `Set-Cookie` lines, and build stores that count their calls or can be switched off.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import type { Scope } from "effect"
import { Context, Data, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { isIPv6 } from "node:net"
import * as Http from "../../src/Http.js"
import * as Persistence from "../../src/Persistence.js"
import type { Json } from "../../src/Session.js"
import type * as SessionConfig from "../../src/SessionConfig.js"
import * as Sessions from "../../src/Sessions.js"
import * as Testing from "../../src/testing.js"

// ---- servers

/**
 * Builds `serve` (a layer that serves an app on the `HttpServer` in context) on a Node server
 * listening on `host` (default 127.0.0.1), port 0, for the current scope. Returns the base URL.
 */
/** What a served layer may need from the Node server layer. */
export type ServerServices = HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices

export const listen = <E>(
  serve: Layer.Layer<never, E, ServerServices>,
  options: { readonly host?: string } = {}
): Effect.Effect<string, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const server = NodeHttpServer.layer(createServer, { port: 0, host })
    const context = yield* Layer.build(Layer.provideMerge(serve, server))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP server")
    // Connect to the address the server listens on ("::ffff:127.0.0.1" is reached over IPv4).
    const connectHost = host.startsWith("::ffff:") ? host.slice(7) : host
    return isIPv6(connectHost) ? `http://[${connectHost}]:${address.port}` : `http://${connectHost}:${address.port}`
  })

// ---- cookies

/**
 * The default session cookie name (Secure, Path=/ and no Domain allow the `__Host-` prefix).
 * A literal, not `SessionConfig.defaults`, so that a changed default fails the tests. Tests
 * that configure `secure: false`, a path or a domain get `id`.
 */
export const COOKIE = "__Host-id"

/** A parsed `Set-Cookie` line. Attribute names are lowercased; flags map to "". */
export interface SetCookie {
  readonly raw: string
  readonly name: string
  readonly value: string
  readonly attributes: ReadonlyMap<string, string>
}

/** Parses one `Set-Cookie` line (RFC 6265 §5.2, without the date parsing). */
export const parseSetCookie = (raw: string): SetCookie => {
  const [pair = "", ...rest] = raw.split(";")
  const eq = pair.indexOf("=")
  const name = (eq < 0 ? "" : pair.slice(0, eq)).trim()
  const value = (eq < 0 ? pair : pair.slice(eq + 1)).trim()
  const attributes = new Map<string, string>()
  for (const part of rest) {
    const i = part.indexOf("=")
    const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase()
    if (key !== "") attributes.set(key, i < 0 ? "" : part.slice(i + 1).trim())
  }
  return { raw, name, value, attributes }
}

/** Whether a `Set-Cookie` removes the cookie (Max-Age ≤ 0, or an expiry in the past). */
export const isRemoval = (c: SetCookie): boolean => {
  const maxAge = c.attributes.get("max-age")
  if (maxAge !== undefined) return Number(maxAge) <= 0
  const expires = c.attributes.get("expires")
  return expires !== undefined && Date.parse(expires) <= Date.now()
}

/** A browser-like jar for one host: name → value. */
export class CookieJar {
  private readonly cookies = new Map<string, string>()
  constructor(entries: Iterable<readonly [string, string]> = []) {
    for (const [k, v] of entries) this.cookies.set(k, v)
  }
  get(name: string): string | undefined {
    return this.cookies.get(name)
  }
  set(name: string, value: string): this {
    this.cookies.set(name, value)
    return this
  }
  delete(name: string): this {
    this.cookies.delete(name)
    return this
  }
  /** The `Cookie` header the jar sends, if any. */
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ")
  }
  /** Applies the `Set-Cookie` lines of a response. */
  update(lines: ReadonlyArray<SetCookie>): this {
    for (const c of lines) {
      if (isRemoval(c)) this.cookies.delete(c.name)
      else this.cookies.set(c.name, c.value)
    }
    return this
  }
  copy(): CookieJar {
    return new CookieJar(this.cookies)
  }
}

// ---- requests

/** A response, read completely. */
export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly setCookies: ReadonlyArray<SetCookie>
  readonly text: string
  /** The `Set-Cookie` for `name` (default {@link COOKIE}), if the response has exactly one; fails the test on several. */
  readonly cookie: (name?: string) => SetCookie | undefined
  readonly json: () => any
}

/** Options of {@link send}. */
export interface SendOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  /** Sends its cookies and takes the response's `Set-Cookie`s. */
  readonly jar?: CookieJar
  /** A raw `Cookie` header (overrides the jar's). */
  readonly cookie?: string
  readonly body?: string
}

const readReply = async (response: Response): Promise<Reply> => {
  const text = await response.text()
  const setCookies = response.headers.getSetCookie().map(parseSetCookie)
  return {
    status: response.status,
    headers: response.headers,
    setCookies,
    text,
    cookie: (name = COOKIE) => {
      const found = setCookies.filter((c) => c.name === name)
      if (found.length > 1) throw new Error(`${found.length} Set-Cookie lines for ${name}: ${found.map((c) => c.raw).join(" | ")}`)
      return found[0]
    },
    json: () => JSON.parse(text)
  }
}

/** Sends a request with `fetch` and reads the whole response. */
export const sendPromise = async (url: string, options: SendOptions = {}): Promise<Reply> => {
  const headers: Record<string, string> = { ...options.headers }
  const cookie = options.cookie ?? options.jar?.header()
  if (cookie !== undefined) headers["cookie"] = cookie
  const response = await fetch(url, {
    method: options.method ?? "GET",
    headers,
    ...(options.body === undefined ? {} : { body: options.body })
  })
  const reply = await readReply(response)
  options.jar?.update(reply.setCookies)
  return reply
}

/** {@link sendPromise} as an Effect. */
export const send = (url: string, options: SendOptions = {}): Effect.Effect<Reply> =>
  Effect.promise(() => sendPromise(url, options))

/** Reads a web-standard `Response` (from `toWebHandler`) like a socket reply. */
export const fromWeb = (response: Response, jar?: CookieJar): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const reply = await readReply(response)
    jar?.update(reply.setCookies)
    return reply
  })

// ---- stores

/** Sums the counts of a `Testing.counted` store (optionally of some methods only). */
export const totalCalls = (calls: Record<string, number>, methods?: ReadonlyArray<string>): number =>
  Object.entries(calls).filter(([m]) => methods === undefined || methods.includes(m)).reduce((n, [, c]) => n + c, 0)

/** A fresh memory store wrapped by `Testing.counted`, with its layer. */
export const countedMemory = Effect.gen(function*() {
  const counted = Testing.counted(yield* Persistence.makeMemory)
  return { ...counted, layer: Layer.succeed(Persistence.Persistence, counted.store) }
})

// ---- addresses

/** The canonical text of an IP address, computed by the WHATWG URL parser (independent of src/). */
export const canonicalIp = (ip: string): string => (isIPv6(ip) ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip)

// ---- a session app: every CurrentSession operation behind a route

const asCount = (value: Option.Option<Json>): number =>
  Option.match(value, { onNone: () => 0, onSome: (v) => (typeof v === "number" ? v : 0) })

const withSession = <A, E, R>(f: (session: Http.CurrentSessionShape) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(Http.CurrentSession, f)

/** An error a handler fails with after changing the session (the server answers 500). */
export class HandlerFailed extends Data.TaggedError("HandlerFailed")<{}> {}

/**
 * Routes over CurrentSession:
 * - `GET /read` → `{ count, user }` (reads only)
 * - `POST /count` → increments `count`, `{ count }`
 * - `POST /ip` → ensures a session, `{ ip }` (the client IP it was bound to)
 * - `POST /login/:user`, `POST /logout`, `POST /regenerate`, `POST /destroy`
 * - `POST /logout-everywhere` → `{ ended }`
 * - `GET /sessions` → `[{ id, current }]`
 * - `POST /cacheable` → increments `count` and answers with `Cache-Control: public, max-age=600`
 * - `POST /login-then-fail/:user` → logs in, then fails (500)
 */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/read", withSession((session) =>
    Effect.gen(function*() {
      const count = yield* session.get("count")
      const user = yield* session.userId
      return yield* HttpServerResponse.json({ count: Option.getOrNull(count), user: Option.getOrNull(user) })
    }))),
  HttpRouter.post("/count", withSession((session) =>
    Effect.flatMap(session.update("count", (old) => asCount(old) + 1), (count) => HttpServerResponse.json({ count })))),
  HttpRouter.post("/ip", withSession((session) =>
    Effect.flatMap(session.ensure, (s) => HttpServerResponse.json({ ip: Option.getOrNull(s.ip) })))),
  HttpRouter.post("/login/:user", withSession((session) =>
    Effect.gen(function*() {
      const { user } = yield* HttpRouter.params
      yield* session.logIn(user ?? "nobody")
      return HttpServerResponse.empty({ status: 204 })
    }))),
  HttpRouter.post("/login-then-fail/:user", withSession((session) =>
    Effect.gen(function*() {
      const { user } = yield* HttpRouter.params
      yield* session.logIn(user ?? "nobody")
      return yield* new HandlerFailed()
    }))),
  HttpRouter.post("/logout", withSession((session) => Effect.as(session.logOut(), HttpServerResponse.empty({ status: 204 })))),
  HttpRouter.post("/regenerate", withSession((session) => Effect.as(session.regenerateId(), HttpServerResponse.empty({ status: 204 })))),
  HttpRouter.post("/destroy", withSession((session) => Effect.as(session.destroy, HttpServerResponse.empty({ status: 204 })))),
  HttpRouter.post("/logout-everywhere", withSession((session) =>
    Effect.flatMap(session.logOutEverywhere, (ended) => HttpServerResponse.json({ ended })))),
  HttpRouter.get("/sessions", withSession((session) =>
    Effect.flatMap(session.listSessions, (list) => HttpServerResponse.json(list.map((s) => ({ id: s.id, current: s.current })))))),
  HttpRouter.post("/cacheable", withSession((session) =>
    Effect.flatMap(session.update("count", (old) => asCount(old) + 1), (count) =>
      Effect.map(HttpServerResponse.json({ count }), HttpServerResponse.setHeader("cache-control", "public, max-age=600")))))
)

/** The routes wrapped by the session middleware. */
export const sessionApp = (middleware: Http.MiddlewareOptions = {}) => routes.pipe(Http.middleware(middleware))

/** The session app served on the HttpServer in context, over `store`, configured by `config`. */
export const sessionServer = (
  store: Layer.Layer<Persistence.Persistence>,
  config: SessionConfig.SessionConfigInput = {},
  middleware: Http.MiddlewareOptions = {}
) =>
  HttpServer.serve(sessionApp(middleware)).pipe(
    Layer.provide(Sessions.layer(config).pipe(Layer.provide(store)))
  )
