// How you test your own code that uses sessions: @effect/vitest gives every `it.effect` a
// TestClock, so time only moves when you say so, and a seeded SecureRandom makes tokens repeatable.
// This file runs with the rest of the suite (`npm test`).
import { assert, describe, it } from "@effect/vitest"
import { assertSome } from "@effect/vitest/utils"
import { Effect, Layer, Option, Redacted, Schema, TestClock } from "effect"
import { Persistence, SecureRandom, Session, SessionConfig, Sessions } from "effect-sessions"

// The code under test: a "remember the cart" feature built on the service.
const Cart = Session.key("cart", Schema.Array(Schema.String))

const addToCart = (token: string, client: Session.Client, item: string) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const active = yield* sessions.resolve(token, client, { create: true }).pipe(Effect.map((r) => r.session))
    const handle = Option.getOrThrow(active)
    yield* sessions.update(handle, Cart, (cart) => [...Option.getOrElse(cart, () => []), item])
    return handle
  })

// Production wiring, with the test doubles swapped in: TestClock comes from it.effect.
const TestSessions = Sessions.layerFromContext.pipe(
  Layer.provide(Layer.mergeAll(
    Persistence.layerMemory,
    SessionConfig.layer({ idleTimeout: "30 minutes", idRotationInterval: "10 minutes", gracePeriod: "1 minute" }),
    SecureRandom.layerSeeded("my-app-tests")
  ))
)

describe("my app's cart", () => {
  const client = Session.client({ ip: "203.0.113.9", userAgent: "test-browser" })

  it.effect("keeps the cart across a token rotation", () =>
    Effect.gen(function*() {
      const first = yield* addToCart("", client, "book")
      yield* TestClock.adjust("11 minutes") // past the rotation interval
      const second = yield* addToCart(Redacted.value(first.token), client, "pen")
      assert.notStrictEqual(Redacted.value(second.token), Redacted.value(first.token), "the token rotated")
      const sessions = yield* Sessions.Sessions
      assertSome(yield* sessions.get(second, Cart), ["book", "pen"])
    }).pipe(Effect.provide(TestSessions)))

  it.effect("forgets the cart after 30 idle minutes", () =>
    Effect.gen(function*() {
      const first = yield* addToCart("", client, "book")
      yield* TestClock.adjust("30 minutes")
      const sessions = yield* Sessions.Sessions
      const again = yield* sessions.resolve(Redacted.value(first.token), client).pipe(Effect.map((r) => r.session))
      assert.isTrue(Option.isNone(again))
    }).pipe(Effect.provide(TestSessions)))
})
