/**
 * Model-based test (docs/how-it-works.md, "The ten invariants"): fast-check `commands` drive the real Sessions service and a tiny
 * reference model with the same random sequence of start / resolve / get / set / pop / rotate
 * (regenerateId) / logIn / logOut / logOutEverywhere / advance-clock / destroy.
 *
 * The model keeps, per session: data, user, alive, and the three instants of the timing rules.
 * With touchInterval = 1 ms every access moves lastAccessAt to now, so the model needs no touch lag.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Context, Effect, Either, Exit, FastCheck as fc, FiberRef, Layer, LogLevel, Option, Redacted, Scope } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { manualClock } from "../src/internal/testing/clock.js"

const IDLE = 10_000
const ABSOLUTE = 30_000
const ROTATION = 4_000

const config = (cacheCapacity: number): SessionConfig.SessionConfigInput => ({
  idleTimeout: IDLE,
  absoluteTimeout: ABSOLUTE,
  idRotationInterval: ROTATION,
  gracePeriod: 1_000,
  touchInterval: 1,
  // idling out after longer than the idle timeout: cached entries outlive their sessions
  cache: cacheCapacity === 0 ? false : { capacity: cacheCapacity, idleTimeout: 3_600_000 }
})

const client = Session.client({ ip: "198.51.100.7", userAgent: "model/1" })
const USERS = ["ada", "bob"] as const
const KEYS = ["a", "b", "c"] as const

// ---------------------------------------------------------------------------------------------
// the reference model
// ---------------------------------------------------------------------------------------------

interface ModelSession {
  destroyed: boolean
  data: Record<string, number>
  user: string | null
  createdAt: number
  lastAccess: number
  idIssued: number
  /** The last log-in (null when logged out). */
  authenticatedAt: number | null
}

interface Model {
  now: number
  readonly sessions: Array<ModelSession>
  /** The instant of the latest logOutEveryone (-Infinity before any). */
  revokedUntil: number
}

/** Alive at `now` under the timing rules, not ended by logOutEveryone, and not destroyed. */
const live = (m: Model, s: ModelSession): boolean =>
  !s.destroyed && m.now - s.lastAccess < IDLE && m.now - s.createdAt < ABSOLUTE &&
  Math.max(s.createdAt, s.authenticatedAt ?? s.createdAt) > m.revokedUntil

/** Marks a session dead once the rules say so: it never comes back. */
const settle = (m: Model, s: ModelSession): boolean => {
  if (!live(m, s)) s.destroyed = true
  return !s.destroyed
}

// ---------------------------------------------------------------------------------------------
// the real system
// ---------------------------------------------------------------------------------------------

interface Real {
  readonly sessions: Sessions.SessionsShape
  readonly handles: Array<Sessions.ActiveSession>
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Promise<Either.Either<A, E>>
  readonly advance: (millis: number) => void
  readonly close: () => Promise<void>
}

const makeReal = async (cacheCapacity: number, seed: number): Promise<Real> => {
  const time = manualClock()
  const clock = time.clock
  const inContext = <A, E>(effect: Effect.Effect<A, E>) =>
    effect.pipe(Effect.withClock(clock), Effect.locally(FiberRef.currentMinimumLogLevel, LogLevel.None))
  const layer = Sessions.layerFromContext.pipe(
    Layer.provide(
      Layer.mergeAll(Persistence.layerMemory, Layer.orDie(SessionConfig.layer(config(cacheCapacity))), SecureRandom.layerSeeded(seed))
    )
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(inContext(Layer.buildWithScope(layer, scope)))
  return {
    sessions: Context.get(context, Sessions.Sessions),
    handles: [],
    run: (effect) => Effect.runPromise(inContext(Effect.either(effect))),
    advance: time.unsafeAdvance,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ---------------------------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------------------------

type Cmd = fc.AsyncCommand<Model, Real>

const expectGone = <A>(result: Either.Either<A, { readonly _tag: string }>, what: string) => {
  assert.isTrue(Either.isLeft(result), `${what}: expected SessionGoneError, got a success`)
  if (Either.isLeft(result)) assert.strictEqual(result.left._tag, "SessionGoneError", what)
}

const expectSame = (m: ModelSession, s: Session.Session, what: string) => {
  deepStrictEqual({ ...s.data }, m.data, `${what}: data`)
  assert.strictEqual(Option.getOrNull(s.userId), m.user, `${what}: user`)
  assert.strictEqual(s.createdAt, m.createdAt, `${what}: createdAt`)
}

/** A command on an existing session (chosen by index modulo the number of sessions). */
abstract class OnSession implements Cmd {
  constructor(readonly index: number) {}
  check = (m: Readonly<Model>) => m.sessions.length > 0
  protected pick(m: Model) {
    const i = this.index % m.sessions.length
    return { i, s: m.sessions[i]! }
  }
  abstract run(m: Model, r: Real): Promise<void>
  abstract toString(): string
}

class Start implements Cmd {
  check = () => true
  async run(m: Model, r: Real) {
    const h = await r.run(r.sessions.create(client))
    const handle = Either.getOrThrow(h)
    r.handles.push(handle)
    m.sessions.push({ destroyed: false, data: {}, user: null, createdAt: m.now, lastAccess: m.now, idIssued: m.now, authenticatedAt: null })
    deepStrictEqual(handle.session.data, {})
  }
  toString = () => "start"
}

class Advance implements Cmd {
  constructor(readonly millis: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    m.now += this.millis
    r.advance(this.millis)
  }
  toString = () => `advance(${this.millis})`
}

class Resolve extends OnSession {
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = Either.getOrThrow(await r.run(r.sessions.resolve(Redacted.value(r.handles[i]!.token), client)))
    if (!settle(m, s)) {
      assert.isTrue(Option.isNone(res.session), `resolve #${i}: a dead session came back (${res.outcome})`)
      return
    }
    assert.isTrue(Option.isSome(res.session), `resolve #${i}: a live session was lost (${res.outcome})`)
    const h = Option.getOrThrow(res.session)
    if (m.now - s.idIssued >= ROTATION) {
      assert.strictEqual(res.outcome, "rotated")
      s.idIssued = m.now
      r.handles[i] = h
    } else {
      assert.strictEqual(res.outcome, "valid")
    }
    s.lastAccess = m.now
    expectSame(s, h.session, `resolve #${i}`)
    assert.strictEqual(h.session.lastAccessAt, s.lastAccess)
  }
  toString = () => `resolve(#${this.index})`
}

class Get extends OnSession {
  constructor(index: number, readonly key: string) {
    super(index)
  }
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.get(r.handles[i]!, this.key))
    if (!settle(m, s)) return expectGone(res, `get #${i}`)
    deepStrictEqual(Either.map(res, Option.getOrUndefined), Either.right(s.data[this.key]), `get #${i}`)
  }
  toString = () => `get(#${this.index}, ${this.key})`
}

class Set extends OnSession {
  constructor(index: number, readonly key: string, readonly value: number) {
    super(index)
  }
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(Effect.zipRight(r.sessions.set(r.handles[i]!, this.key, this.value), r.sessions.current(r.handles[i]!)))
    if (!settle(m, s)) return expectGone(res, `set #${i}`)
    s.data[this.key] = this.value
    s.lastAccess = m.now
    expectSame(s, Either.getOrThrow(res), `set #${i}`)
  }
  toString = () => `set(#${this.index}, ${this.key}, ${this.value})`
}

class Pop extends OnSession {
  constructor(index: number, readonly key: string) {
    super(index)
  }
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.pop(r.handles[i]!, this.key))
    if (!settle(m, s)) return expectGone(res, `pop #${i}`)
    deepStrictEqual(Option.getOrUndefined(Either.getOrThrow(res)), s.data[this.key], `pop #${i}`)
    if (this.key in s.data) {
      delete s.data[this.key]
      s.lastAccess = m.now // a change is a write, and a write is an access; popping nothing changes nothing
    }
  }
  toString = () => `pop(#${this.index}, ${this.key})`
}

class Rotate extends OnSession {
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.regenerateId(r.handles[i]!))
    if (!settle(m, s)) return expectGone(res, `regenerateId #${i}`)
    const h = Either.getOrThrow(res)
    assert.notStrictEqual(Redacted.value(h.token), Redacted.value(r.handles[i]!.token))
    r.handles[i] = h
    s.idIssued = m.now
    s.lastAccess = m.now
    expectSame(s, h.session, `regenerateId #${i}`)
  }
  toString = () => `regenerateId(#${this.index})`
}

class LogIn extends OnSession {
  constructor(index: number, readonly user: string, readonly exclusive: boolean) {
    super(index)
  }
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.logIn(r.handles[i]!, this.user, { exclusive: this.exclusive }))
    if (this.exclusive && settle(m, s)) {
      // the user's other live sessions end first (a dead handle ends nobody's sessions)
      m.sessions.forEach((o, j) => {
        if (j !== i && settle(m, o) && o.user === this.user) o.destroyed = true
      })
    }
    if (!settle(m, s)) return expectGone(res, `logIn #${i}`)
    const h = Either.getOrThrow(res)
    r.handles[i] = h
    s.user = this.user
    s.authenticatedAt = m.now
    s.idIssued = m.now
    s.lastAccess = m.now
    expectSame(s, h.session, `logIn #${i}`)
  }
  toString = () => `logIn(#${this.index}, ${this.user}${this.exclusive ? ", exclusive" : ""})`
}

class LogOut extends OnSession {
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.logOut(r.handles[i]!))
    if (!settle(m, s)) return expectGone(res, `logOut #${i}`)
    const h = Either.getOrThrow(res)
    r.handles[i] = h
    s.user = null
    s.authenticatedAt = null
    s.idIssued = m.now
    s.lastAccess = m.now
    expectSame(s, h.session, `logOut #${i}`)
  }
  toString = () => `logOut(#${this.index})`
}

class LogOutEverywhere implements Cmd {
  constructor(readonly user: string) {}
  check = () => true
  async run(m: Model, r: Real) {
    const n = Either.getOrThrow(await r.run(r.sessions.logOutEverywhere(this.user)))
    let expected = 0
    for (const s of m.sessions) {
      if (settle(m, s) && s.user === this.user) {
        s.destroyed = true
        expected++
      }
    }
    assert.strictEqual(n, expected, `logOutEverywhere(${this.user})`)
  }
  toString = () => `logOutEverywhere(${this.user})`
}

class LogOutEveryone implements Cmd {
  check = () => true
  async run(m: Model, r: Real) {
    const until = Either.getOrThrow(await r.run(r.sessions.logOutEveryone()))
    m.revokedUntil = Math.max(m.now, m.revokedUntil)
    assert.strictEqual(until, m.revokedUntil, "logOutEveryone's instant")
  }
  toString = () => "logOutEveryone()"
}

class Destroy extends OnSession {
  async run(m: Model, r: Real) {
    const { i, s } = this.pick(m)
    const res = await r.run(r.sessions.destroy(r.handles[i]!))
    // A handle whose session already ended is gone, and ends nothing.
    if (!settle(m, s)) return expectGone(res, `destroy #${i}`)
    Either.getOrThrow(res)
    s.destroyed = true
  }
  toString = () => `destroy(#${this.index})`
}

const arbKey = fc.constantFrom(...KEYS)
const arbUser = fc.constantFrom(...USERS)
const arbIndex = fc.nat(7)
const arbAdvance = fc.oneof(fc.integer({ min: 0, max: 12_000 }), fc.constantFrom(1, ROTATION, IDLE - 1, IDLE)).map((ms) => new Advance(ms))
const arbSet = fc.tuple(arbIndex, arbKey, fc.integer({ min: 0, max: 99 })).map(([i, k, v]) => new Set(i, k, v))
// (entries listed twice are drawn twice as often)
const commands = [
  fc.constant(new Start()),
  arbAdvance,
  arbAdvance,
  arbIndex.map((i) => new Resolve(i)),
  arbIndex.map((i) => new Resolve(i)),
  fc.tuple(arbIndex, arbKey).map(([i, k]) => new Get(i, k)),
  fc.tuple(arbIndex, arbKey).map(([i, k]) => new Get(i, k)),
  arbSet,
  arbSet,
  fc.tuple(arbIndex, arbKey).map(([i, k]) => new Pop(i, k)),
  arbIndex.map((i) => new Rotate(i)),
  fc.tuple(arbIndex, arbUser, fc.boolean()).map(([i, u, x]) => new LogIn(i, u, x)),
  arbIndex.map((i) => new LogOut(i)),
  arbUser.map((u) => new LogOutEverywhere(u)),
  fc.constant(new LogOutEveryone()),
  arbIndex.map((i) => new Destroy(i))
]

describe("Sessions model-based test", () => {
  for (const cacheCapacity of [0, 10_000]) {
    it(`the service follows the reference model over 200 random command sequences (cache capacity ${cacheCapacity})`, async () => {
      let run = 0
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 50, size: "max" }), async (cmds) => {
          const real = await makeReal(cacheCapacity, ++run)
          try {
            await fc.asyncModelRun(() => ({ model: { now: 0, sessions: [], revokedUntil: Number.NEGATIVE_INFINITY }, real }), cmds)
          } finally {
            await real.close()
          }
        }),
        { numRuns: 200 }
      )
    })
  }
})
