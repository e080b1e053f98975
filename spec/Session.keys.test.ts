/**
 * Typed keys and the one session vocabulary: `Session.key(name, schema)` is used by get, set,
 * update, pop and remove on the pure value, on the service's handles and on CurrentSession alike;
 * values are stored encoded through the Schema; a wrong type is a compile error (the
 * `@ts-expect-error` lines fail the typecheck if they compile), and a stored value that no longer
 * decodes is a typed error. `CurrentSession.modify` changes several keys in one step.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, expect, it } from "@effect/vitest"
import { assertLeft, assertNone, assertRight, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Either, Layer, Option, Schema } from "effect"
import type { SessionStoreError } from "../src/Persistence.js"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { CookieJar, listen, send } from "./helpers/http.js"
import { serviceLayer } from "./helpers/service.js"

const Visits = Session.key("visits", Schema.Number)
const LastSeen = Session.key("lastSeen", Schema.Date)
const Cart = Session.key("cart", Schema.Array(Schema.Struct({ sku: Schema.String, qty: Schema.Int })))

const client = Session.client({ ip: "203.0.113.7", userAgent: "test" })
const fresh = Session.start({ key: "k", tokenKey: "t", now: 0, client })

describe("Session.key on the pure value", () => {
  it("set stores the encoded JSON and get decodes it back", () => {
    const when = new Date(86_400_000)
    const s = Either.getOrThrow(Session.set(fresh, LastSeen, when))
    expect(s.data).toStrictEqual({ lastSeen: "1970-01-02T00:00:00.000Z" })
    const back = Either.getOrThrow(Session.get(s, LastSeen))
    assertSome(Option.map(back, (d) => d.getTime()), when.getTime())
    // the same key name read untyped gives the stored JSON
    assertSome(Session.get(s, "lastSeen"), "1970-01-02T00:00:00.000Z")
  })

  it("a missing key is Right(None); a stored value that no longer decodes is Left(ParseError)", () => {
    assertRight(Session.get(fresh, Visits), Option.none())
    const s = Session.set(fresh, "visits", "three")
    assertLeft(Either.mapLeft(Session.get(s, Visits), (e) => e._tag), "ParseError")
  })

  it("update decodes the old value and encodes the new one (dual forms agree)", () => {
    const once = Either.getOrThrow(Session.update(fresh, Visits, (n) => Option.getOrElse(n, () => 0) + 1))
    const twice = Either.getOrThrow(once.pipe(Session.update(Visits, (n) => Option.getOrElse(n, () => 0) + 1)))
    assertRight(Session.get(twice, Visits), Option.some(2))
    // an undecodable old value fails the update and changes nothing
    assertLeft(Either.mapLeft(Session.update(Session.set(fresh, "visits", []), Visits, () => 1), (e) => e._tag), "ParseError")
  })

  it("pop returns the decoded value and removes it; an undecodable value fails and stays", () => {
    const s = Either.getOrThrow(Session.set(fresh, Visits, 5))
    const [value, after] = Either.getOrThrow(Session.pop(s, Visits))
    assertSome(value, 5)
    assertNone(Session.get(after, "visits"))
    const bad = Session.set(fresh, "visits", "x")
    assert.isTrue(Either.isLeft(Session.pop(bad, Visits)))
    assertSome(Session.get(bad, "visits"), "x")
  })

  it("remove takes a typed key too", () => {
    const s = Either.getOrThrow(Session.set(fresh, Visits, 5))
    assertNone(Session.get(Session.remove(s, Visits), "visits"))
  })

  it("a value the Schema refuses to encode is Left(ParseError) and no change", () => {
    const Small = Session.key("small", Schema.Int.pipe(Schema.between(0, 9)))
    assertLeft(Either.mapLeft(Session.set(fresh, Small, 10), (e) => e._tag), "ParseError")
  })

  it("wrong types are compile errors", () => {
    // Each line below must not compile: the typecheck fails on an unused @ts-expect-error.
    // @ts-expect-error a string is not a number
    Session.set(fresh, Visits, "three")
    // @ts-expect-error update must return the key's type
    Session.update(fresh, Visits, () => "x")
    // @ts-expect-error an untyped set takes JSON only
    Session.set(fresh, "when", new Date(0))
    // @ts-expect-error the encoded side of a key's Schema must be JSON
    Session.key("bad", Schema.declare((u): u is symbol => typeof u === "symbol"))
    assert.isTrue(Session.isKey(Visits))
  })
})

describe("Session.key through the service", () => {
  it.effect("set/get/update/pop on a handle, typed; a stored value that does not decode is a SessionDataError naming the method and key", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      yield* sessions.set(h, Cart, [{ sku: "a", qty: 2 }])
      const cart = yield* sessions.get(h, Cart)
      deepStrictEqual(cart, Option.some([{ sku: "a", qty: 2 }]))
      assert.strictEqual(yield* sessions.update(h, Visits, (n) => Option.getOrElse(n, () => 0) + 1), 1)
      assert.strictEqual(yield* sessions.update(h, Visits, (n) => Option.getOrElse(n, () => 0) + 1), 2)
      assertSome(yield* sessions.pop(h, Visits), 2)
      assertNone(yield* sessions.get(h, Visits))
      yield* sessions.set(h, "visits", "not a number")
      const attempts: ReadonlyArray<readonly [string, Effect.Effect<unknown, Sessions.SessionError>]> = [
        ["get", sessions.get(h, Visits)],
        ["update", sessions.update(h, Visits, (n) => Option.getOrElse(n, () => 0) + 1)],
        ["pop", sessions.pop(h, Visits)]
      ]
      for (const [method, effect] of attempts) {
        const e = yield* Effect.flip(effect)
        assert.instanceOf(e, Sessions.SessionDataError)
        if (!(e instanceof Sessions.SessionDataError)) continue
        assert.strictEqual(e.method, method)
        assert.strictEqual(e.key, "visits")
        assert.strictEqual(e.cause._tag, "ParseError")
      }
      // nothing was changed by the failed update and pop
      assertSome(yield* sessions.get(h, "visits"), "not a number")
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("modify takes the Either of a typed set: several keys in one write, or none on a ParseError", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      const s = yield* sessions.modify(h, (s) => Session.set(s, Visits, 1).pipe(Either.flatMap(Session.set(LastSeen, new Date(0)))))
      expect(s.data).toStrictEqual({ visits: 1, lastSeen: "1970-01-01T00:00:00.000Z" })
      const Small = Session.key("small", Schema.Int.pipe(Schema.between(0, 9)))
      const e = yield* Effect.flip(sessions.modify(h, (s) => Session.set(s, Visits, 2).pipe(Either.flatMap(Session.set(Small, 99)))))
      assert.strictEqual(e._tag, "SessionDataError")
      expect((yield* sessions.current(h)).data).toStrictEqual({ visits: 1, lastSeen: "1970-01-01T00:00:00.000Z" })
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("the error unions are tight: reads cannot conflict, untyped reads cannot fail to decode", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      // These assignments compile only if the advertised errors are the tight ones.
      const read: Effect.Effect<Option.Option<Session.Json>, SessionStoreError | Sessions.SessionGoneError> = sessions.get(h, "k")
      const removed: Effect.Effect<void, Sessions.SessionWriteError> = sessions.remove(h, "k")
      const popped: Effect.Effect<Option.Option<Session.Json>, Sessions.SessionWriteError> = sessions.pop(h, "k")
      const destroyed: Effect.Effect<void, Sessions.SessionWriteError> = sessions.destroy(h)
      assertNone(yield* read)
      yield* removed
      assertNone(yield* popped)
      yield* destroyed
    }).pipe(Effect.provide(serviceLayer())))
})

describe("Session.key and modify through CurrentSession", () => {
  const Theme = Session.key("theme", Schema.Literal("light", "dark"))
  const app = HttpRouter.empty.pipe(
    HttpRouter.post("/visit", Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const visits = yield* session.update(Visits, (n) => Option.getOrElse(n, () => 0) + 1)
      return yield* HttpServerResponse.json({ visits })
    })),
    HttpRouter.post("/prefs", Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      // several keys in one atomic change
      const s = yield* session.modify((s) => Session.set(s, Theme, "dark").pipe(Either.map(Session.set("lang", "en"))))
      return yield* HttpServerResponse.json(s.data)
    })),
    HttpRouter.get("/read", Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const theme = yield* session.get(Theme)
      const visits = yield* session.get(Visits)
      const popped = yield* session.pop("lang")
      yield* session.remove(Visits)
      return yield* HttpServerResponse.json({ theme: Option.getOrNull(theme), visits: Option.getOrNull(visits), popped: Option.getOrNull(popped) })
    })),
    HttpRouter.post("/corrupt", Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      yield* session.set("theme", "purple")
      const read = yield* Effect.either(session.get(Theme))
      return yield* HttpServerResponse.json({ failed: Either.isLeft(read) && read.left._tag === "SessionDataError" })
    })),
    Http.middleware()
  )

  it.scoped("update, modify, get, pop and remove with typed keys over HTTP; a value that no longer decodes is a SessionDataError", () =>
    Effect.gen(function*() {
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer({ cookie: { secure: false } }).pipe(Layer.provide(Persistence.layerMemory)))))
      const jar = new CookieJar()
      assert.deepInclude((yield* send(`${url}/visit`, { method: "POST", jar })).json(), { visits: 1 })
      assert.strictEqual((yield* send(`${url}/visit`, { method: "POST", jar })).json().visits, 2)
      expect((yield* send(`${url}/prefs`, { method: "POST", jar })).json()).toStrictEqual({ visits: 2, theme: "dark", lang: "en" })
      expect((yield* send(`${url}/read`, { jar })).json()).toStrictEqual({ theme: "dark", visits: 2, popped: "en" })
      expect((yield* send(`${url}/read`, { jar })).json()).toStrictEqual({ theme: "dark", visits: null, popped: null })
      expect((yield* send(`${url}/corrupt`, { method: "POST", jar })).json()).toStrictEqual({ failed: true })
      // modify on a request without a session creates one
      const other = new CookieJar()
      const created = yield* send(`${url}/prefs`, { method: "POST", jar: other })
      expect(created.json()).toStrictEqual({ theme: "dark", lang: "en" })
      assert.isDefined(other.get("id"))
    }))
})
