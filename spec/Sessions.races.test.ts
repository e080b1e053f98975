/**
 * Races explored, not hoped for. Concurrent operations on one session — `update`s, a resolve of a
 * token whose rotation fell due (the TestClock is moved past the rotation interval), `logIn`,
 * `logOut`, `destroy`, in this process and in a second service instance over the same store doing
 * its own compare-and-set — run through random interleavings of their store calls: every store call
 * waits, before and after it reaches the store, for fast-check's scheduler to release it, and every
 * operation starts at a scheduled moment too. Each outcome is then checked against a sequential
 * model (linearizability): some order of the operations, consistent with their real-time order
 * (one that answered before another was called comes first), explains every answer and the final
 * stored state. So no update is lost and no handle reads or writes after its token was retired
 * without grace, whatever the interleaving. Half the runs are bursts of writes through one
 * process, whose updates queue on the session's lock and are committed in batches (one
 * compare-and-set for all the changes queued, each writer answered with its own result); a write
 * with invalid data among them fails alone.
 *
 * The memory store runs in every `npm test`; PostgreSQL and Redis (their own prefixes, removed
 * afterwards) with fewer runs, as CI runs them (SESSIONS_REQUIRE_SERVICES=1).
 */
import { afterAll, describe, it } from "@effect/vitest"
import {
  Context,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  FiberRef,
  Layer,
  LogLevel,
  Option,
  Redacted,
  Scope,
  TestClock,
  TestContext
} from "effect"
import { randomBytes } from "node:crypto"
import * as Persistence from "../src/Persistence.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { cacheOfSize } from "./helpers/service.js"
import { counted, scheduled } from "../src/testing.js"
import { deleteRedisKeys, postgresUrl, redisUrl, withService, dropPgTables } from "./services.js"

const MINUTE = 60_000
const ROTATION = 10 * MINUTE
const config: SessionConfig.SessionConfigInput = {
  idleTimeout: 60 * MINUTE,
  touchInterval: MINUTE,
  idRotationInterval: ROTATION,
  gracePeriod: 5 * MINUTE,
  absoluteTimeout: 24 * 60 * MINUTE
}
const browser = Session.client({ ip: "198.51.100.7", userAgent: "races/1" })

// ---------------------------------------------------------------------------------------------
// the operations and the sequential model
// ---------------------------------------------------------------------------------------------

type Kind = "update" | "bad" | "resolve" | "logIn" | "logOut" | "destroy"
/** An operation through the handle of process A (the session's creator) or B (a peer). */
interface Op {
  readonly kind: Kind
  readonly proc: "A" | "B"
}

const arbOp: fc.Arbitrary<Op> = fc.record({
  kind: fc.oneof(
    { weight: 4, arbitrary: fc.constant<Kind>("update") },
    // a write whose data is not JSON: its own SessionDataError, nothing changed (also in a batch)
    { weight: 1, arbitrary: fc.constant<Kind>("bad") },
    { weight: 2, arbitrary: fc.constant<Kind>("resolve") },
    { weight: 1, arbitrary: fc.constantFrom<Kind>("logIn", "logOut", "destroy") }
  ),
  proc: fc.constantFrom<"A" | "B">("A", "B")
})

/** Mostly writes through process A's handle: they queue on A's lock and coalesce into batches. */
const arbBurst: fc.Arbitrary<Op> = fc.record({
  kind: fc.oneof(
    { weight: 6, arbitrary: fc.constant<Kind>("update") },
    { weight: 1, arbitrary: fc.constantFrom<Kind>("bad", "resolve", "logOut") }
  ),
  proc: fc.oneof({ weight: 3, arbitrary: fc.constant<"A" | "B">("A") }, { weight: 1, arbitrary: fc.constant<"A" | "B">("B") })
})

/**
 * What a caller can observe of the session: it lives or not; the token both handles carry (t0) is
 * the current one, a redirect inside its grace period, or dead; the counter; the user.
 */
interface Model {
  readonly alive: boolean
  readonly t0: "current" | "grace" | "dead"
  readonly n: number
  readonly user: string | null
}

/** One operation applied to the model: the answer it must give, and the state after it. */
const step = (m: Model, op: Op, due: boolean, user: string): readonly [answer: string, next: Model] => {
  const reaches = m.alive && m.t0 !== "dead"
  switch (op.kind) {
    case "update":
      return reaches ? [`n=${m.n + 1}`, { ...m, n: m.n + 1 }] : ["gone", m]
    case "bad":
      return [reaches ? "SessionDataError" : "gone", m]
    case "resolve":
      if (!reaches) return ["none", m]
      if (m.t0 === "grace") return [`followed n=${m.n}`, m]
      return due ? [`rotated n=${m.n}`, { ...m, t0: "grace" }] : [`valid n=${m.n}`, m]
    case "logIn":
      return reaches ? [`ok n=${m.n}`, { ...m, t0: "dead", user }] : ["gone", m]
    case "logOut":
      return reaches ? [`ok n=${m.n}`, { ...m, t0: "dead", user: null }] : ["gone", m]
    case "destroy":
      return reaches ? ["ok", { ...m, alive: false, t0: "dead" }] : ["gone", m]
  }
}

/** An operation as it ran: its logical call and answer times, and its answer. */
interface Done {
  readonly op: Op
  readonly call: number
  readonly end: number
  readonly answer: string
}

/**
 * Whether some order of `done`, consistent with real-time order (an operation that answered before
 * another was called comes first), gives every answer and ends in a state `final` accepts. Depth-
 * first over the operations whose real-time predecessors are all placed (at most 7! orders).
 */
const linearizable = (
  done: ReadonlyArray<Done>,
  initial: Model,
  due: boolean,
  user: string,
  final: (m: Model) => boolean
): boolean => {
  const placed = new Array<boolean>(done.length).fill(false)
  const go = (m: Model, count: number): boolean => {
    if (count === done.length) return final(m)
    for (let i = 0; i < done.length; i++) {
      if (placed[i]) continue
      // i may go next only if no unplaced operation answered before i was called
      if (done.some((d, j) => !placed[j] && j !== i && d.end < done[i]!.call)) continue
      const [answer, next] = step(m, done[i]!.op, due, user)
      if (answer !== done[i]!.answer) continue
      placed[i] = true
      if (go(next, count + 1)) return true
      placed[i] = false
    }
    return false
  }
  return go(initial, 0)
}

const counter = (s: Session.Session): number => {
  const v = s.data["n"]
  return typeof v === "number" ? v : 0
}

// ---------------------------------------------------------------------------------------------
// the services over the scheduled store (Testing.scheduled: every call, once `gate.on`, waits for
// the scheduler before it reaches the store and again before its answer goes back)
// ---------------------------------------------------------------------------------------------

/** A service over `store` (live SecureRandom: runs that share a store never share a token). */
const service = (store: Persistence.PersistenceShape, cacheCapacity: number) =>
  Sessions.layerFromContext.pipe(
    Layer.provide(
      Layer.mergeAll(
        Layer.succeed(Persistence.Persistence, store),
        Layer.orDie(SessionConfig.layer({ ...config, cache: cacheOfSize(cacheCapacity) })),
        SecureRandom.layer
      )
    )
  )

const answerOf = (op: Op, exit: Either.Either<unknown, { readonly _tag: string }>): string => {
  if (Either.isLeft(exit)) return exit.left._tag === "SessionGoneError" ? "gone" : exit.left._tag
  const value = exit.right
  switch (op.kind) {
    case "update":
      return `n=${String(value)}`
    case "bad":
      return "saved"
    case "resolve": {
      const r = value as Sessions.Resolution
      if (Option.isNone(r.session)) return r.outcome === "expired" || r.outcome === "missing" ? "none" : `none (${r.outcome})`
      return `${r.outcome} n=${counter(r.session.value.session)}`
    }
    case "logIn":
    case "logOut":
      return `ok n=${counter((value as Sessions.ActiveSession).session)}`
    case "destroy":
      return "ok"
  }
}

interface Run {
  readonly ops: ReadonlyArray<Op>
  readonly due: boolean
  /** The cache of process A (a single-process run only: see below). */
  readonly cache: number
}

const arbRun: fc.Arbitrary<Run> = fc.record({
  ops: fc.oneof(fc.array(arbOp, { minLength: 2, maxLength: 6 }), fc.array(arbBurst, { minLength: 3, maxLength: 6 })),
  due: fc.boolean(),
  cache: fc.constantFrom(0, 16)
})

/**
 * One run: a session with a counter, a handle in A and one in B (B learned the token by resolving
 * it), the clock moved past the rotation interval or not, then the operations at once, through
 * random interleavings of their store calls; finally the answers and the store are checked against
 * the model.
 *
 * Process A keeps its cache only when B does nothing: a peer's cache learns of another process's
 * writes asynchronously (on the memory store, never: it is for one process), so its reads may be
 * stale for a moment by design (docs/service.md, handles: writes re-check in the store's compare-and-set, reads
 * through a warm cache may lag). B always reads the store.
 */
/** Runs in which process A committed more updates than it made saves: queued writes coalesced. */
let batchedRuns = 0

const race = (s: fc.Scheduler, store: Persistence.PersistenceShape, run: Run) =>
  Effect.gen(function*() {
    const gate = { on: false }
    const countedA = counted(store)
    const peer = run.ops.some((op) => op.proc === "B")
    const scope = yield* Scope.make()
    const a = Context.get(yield* Layer.buildWithScope(service(scheduled(countedA.store, s, { name: "A", enabled: () => gate.on }), peer ? 0 : run.cache), scope), Sessions.Sessions)
    const b = Context.get(yield* Layer.buildWithScope(service(scheduled(store, s, { name: "B", enabled: () => gate.on }), 0), scope), Sessions.Sessions)
    const exit = yield* Effect.exit(Effect.gen(function*() {
      const user = `racer-${randomBytes(6).toString("base64url")}`
      const h0 = yield* a.create(browser)
      yield* a.set(h0, "n", 0)
      const hB = Option.getOrThrow((yield* b.resolve(Redacted.value(h0.token), browser)).session)
      if (run.due) yield* TestClock.adjust(ROTATION + 1)
      const token = Redacted.value(h0.token)
      const operation = (op: Op): Effect.Effect<unknown, { readonly _tag: string }> => {
        const [sessions, handle] = op.proc === "A" ? [a, h0] : [b, hB]
        switch (op.kind) {
          case "update":
            return sessions.update(handle, "n", (old) => (Option.getOrElse(old, () => 0) as number) + 1)
          case "bad":
            return sessions.set(handle, "bad", Number.NaN)
          case "resolve":
            return sessions.resolve(token, browser)
          case "logIn":
            return sessions.logIn(handle, user)
          case "logOut":
            return sessions.logOut(handle)
          case "destroy":
            return sessions.destroy(handle)
        }
      }
      // Logical time: every call and every answer takes the next tick.
      let tick = 0
      const done: Array<Done> = []
      const savesBefore = countedA.calls().save ?? 0
      gate.on = true
      yield* Effect.forEach(run.ops, (op) =>
        Effect.promise(() => s.schedule(Promise.resolve(`start ${op.proc}.${op.kind}`))).pipe(
          Effect.zipRight(Effect.suspend(() => {
            const call = tick++
            return Effect.map(Effect.either(operation(op)), (answer) => {
              done.push({ op, call, end: tick++, answer: answerOf(op, answer) })
            })
          })),
          Effect.forkScoped
        ), { discard: true }).pipe(Scope.extend(scope))
      // Release scheduled steps one at a time; when none is pending an operation is waiting on
      // real time (a backoff between compare-and-set attempts, a driver's I/O).
      while (done.length < run.ops.length) {
        if (s.count() > 0) yield* Effect.promise(() => s.waitOne())
        else yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
      }
      gate.on = false
      const updatesA = done.filter((d) => d.op.proc === "A" && d.op.kind === "update" && d.answer.startsWith("n=")).length
      if (updatesA > (countedA.calls().save ?? 0) - savesBefore) batchedRuns++
      const stored = yield* store.loadSession(h0.session.key)
      const final = (m: Model) =>
        Option.match(stored, {
          onNone: () => !m.alive,
          onSome: (st) => m.alive && counter(st) === m.n && Option.getOrNull(st.userId) === m.user
        })
      const initial: Model = { alive: true, t0: "current", n: 0, user: null }
      if (!linearizable(done, initial, run.due, user, final)) {
        const history = [...done].sort((x, y) => x.call - y.call).map((d) => `${d.op.proc}.${d.op.kind} [${d.call}, ${d.end}] → ${d.answer}`)
        const st = Option.match(stored, { onNone: () => "none", onSome: (x) => `n=${counter(x)} user=${Option.getOrNull(x.userId)}` })
        return yield* Effect.dieMessage(`no sequential order explains:\n  ${history.join("\n  ")}\n  stored: ${st} (due: ${run.due})`)
      }
      // A dead token stays dead: a late write through either handle is gone and changes nothing.
      const reachable = done.every((d) => !["logIn", "logOut", "destroy"].includes(d.op.kind) || d.answer === "gone")
      if (!reachable) {
        for (const [sessions, handle] of [[a, h0], [b, hB]] as const) {
          const late = yield* Effect.either(sessions.update(handle, "n", () => -1))
          if (Either.isRight(late) || late.left._tag !== "SessionGoneError") {
            return yield* Effect.dieMessage(`a write through a retired token: ${Either.isRight(late) ? "succeeded" : late.left._tag}`)
          }
        }
        const after = yield* store.loadSession(h0.session.key)
        if (Option.isSome(after) && counter(after.value) === -1) return yield* Effect.dieMessage("a retired token wrote")
      }
    }))
    gate.on = false
    yield* Scope.close(scope, Exit.void)
    return yield* exit
  }).pipe(Effect.provide(TestContext.TestContext), Effect.locally(FiberRef.currentMinimumLogLevel, LogLevel.None))

/** The property over the store `storeLayer` builds (once for the test). */
const raceProperty = (storeLayer: Layer.Layer<Persistence.Persistence, unknown>, numRuns: number, expectBatches = false) => () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const store = Context.get(yield* Layer.build(storeLayer), Persistence.Persistence)
    batchedRuns = 0
    yield* Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.scheduler(), arbRun, (s, run) => Effect.runPromise(race(s, store, run))),
        { numRuns }
      )
    )
    // Coalesced writes were among the interleavings explored, not only one save per update.
    if (expectBatches && batchedRuns === 0) return yield* Effect.dieMessage(`no run coalesced writes in ${numRuns}`)
  })))

describe("races: concurrent operations on one session, random interleavings of their store calls", () => {
  it(
    "invariant 10: concurrency — update (coalesced when queued on the lock), a write with invalid data, a due rotation, logIn, logOut and destroy in two service instances over one memory store, in random interleavings of their store calls, are linearizable: no update lost, no use of a retired token, and some runs coalesce writes [memory]",
    raceProperty(Layer.effect(Persistence.Persistence, Persistence.makeMemory), 100, true),
    60_000
  )
})

const runId = randomBytes(4).toString("hex")

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_r_${runId}_`
  afterAll(() => dropPgTables(prefix))
  describe("races [PostgreSQL]", () => {
    it(
      "invariant 10: concurrency — update, a due rotation, logIn, logOut and destroy in two service instances over one store, in random interleavings of their store calls, are linearizable [PostgreSQL]",
      raceProperty(PgStore.layer({ url: postgresUrl, tablePrefix: prefix }).pipe(Layer.provide(SecureRandom.layer)), 20),
      120_000
    )
  })
}, { describe, it })

await withService("Redis", redisUrl, () => {
  const prefix = `es:r:${runId}:`
  afterAll(() => deleteRedisKeys(prefix))
  describe("races [Redis]", () => {
    it(
      "invariant 10: concurrency — update, a due rotation, logIn, logOut and destroy in two service instances over one store, in random interleavings of their store calls, are linearizable [Redis]",
      raceProperty(RedisStore.layer({ url: redisUrl, prefix }).pipe(Layer.provide(SecureRandom.layer)), 20),
      120_000
    )
  })
}, { describe, it })
