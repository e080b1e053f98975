/**
 * Assembles the Sessions service from its parts: reads the services it runs over once (store,
 * cache, configuration, SecureRandom, the optional UserLoader, the clock), builds token minting
 * (`tokens.ts`), the per-session lock (`../keyedLock.ts`), cached reads (`records.ts`) with their
 * invalidation bookkeeping (`invalidation.ts`), handles (`handles.ts`), rotations (`rotate.ts`),
 * compare-and-set writes and the data vocabulary (`commit.ts`), resolution and creation
 * (`resolve.ts`), users (`users.ts`, `../userCache.ts`), the revocation instant of "log everybody
 * out" (`revocation.ts`), starts the invalidation subscriber for
 * the lifetime of the scope, publishes session events (`events.ts`), and returns the `SessionsShape`. Traced methods are `Effect.fn`
 * functions named `Sessions.<method>` where they are defined.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { Persistence } from "../persistence.js"
import { SecureRandom } from "../../SecureRandom.js"
import { SessionCache, type SessionCacheShape } from "../../SessionCache.js"
import { SessionConfig } from "../../SessionConfig.js"
import { makeKeyedLock } from "../keyedLock.js"
import { makeUserCache } from "../userCache.js"
import { makeCommits } from "./commit.js"
import type { Env } from "./env.js"
import { makeEventHub, rotated } from "./events.js"
import { makeHandles, spanOptions, traceHandle } from "./handles.js"
import { makeInvalidationBook, subscribe } from "./invalidation.js"
import { makeRecords } from "./records.js"
import { makeResolver } from "./resolve.js"
import { makeRevocation } from "./revocation.js"
import { makeRotations } from "./rotate.js"
import { type ActiveSession, type SessionsShape, UserLoader } from "./service.js"
import { makeTokens } from "./tokens.js"
import { makeUserOperations } from "./users.js"

/** @internal */
export const makeSessions: Effect.Effect<SessionsShape, never, Persistence | SessionCache | SessionConfig | SecureRandom | Scope.Scope> = Effect
  .gen(function*() {
    const store = yield* Persistence
    const sessionCache = yield* SessionCache
    const config = yield* SessionConfig
    const random = yield* SecureRandom
    const userLoader = yield* Effect.serviceOption(UserLoader)
    // The clock in context when the service is built (a TestClock in tests): read once per call.
    const clock = yield* Effect.clock

    const book = makeInvalidationBook()
    // This process's own changes to a token key's record count for a store read of that key in
    // flight as another process's invalidations do (`records.ts`): a read that began before a
    // write, a rotation or a deletion here must not put the older record back into the cache.
    const cache: SessionCacheShape = {
      ...sessionCache,
      set: (tokenKey, record) =>
        Effect.suspend(() => {
          book.noteToken(tokenKey)
          return sessionCache.set(tokenKey, record)
        }),
      invalidate: (tokenKey) =>
        Effect.suspend(() => {
          book.noteToken(tokenKey)
          return sessionCache.invalidate(tokenKey)
        })
    }

    const events = makeEventHub()
    const env: Env = {
      store,
      cache,
      config,
      clock,
      tokens: makeTokens(config, random),
      withLock: makeKeyedLock().withLock,
      events,
      revocation: makeRevocation(store, clock, events)
    }
    const records = makeRecords(env, book)
    const handles = makeHandles(env, records)
    const rotations = makeRotations(env, records, handles)
    const commits = makeCommits(env, records, handles)
    const resolver = makeResolver(env, records, handles, rotations, commits)
    // Users: bounded, with a time to live, forgotten everywhere on refreshUser.
    const users = yield* makeUserCache(userLoader, store)
    const userOperations = makeUserOperations(env, records, handles, rotations, users)

    yield* subscribe({ store, cache: sessionCache, users, book, revocation: env.revocation })

    const service: SessionsShape = {
      config,
      resolve: resolver.resolve,
      create: resolver.create,
      current: handles.currentAs("current"),
      get: commits.get,
      set: commits.set,
      remove: commits.remove,
      pop: commits.pop,
      update: commits.update,
      modify: commits.modify,
      regenerateId: Effect.fn("Sessions.regenerateId", spanOptions)(
        (handle: ActiveSession, options?: { readonly grace?: boolean }) => {
          const grace = options?.grace ?? true
          return rotations.rotateHandle("regenerateId", handle, {
            grace,
            onStored: (_, next, now) => env.events.emit(rotated(next, now, "regenerateId", grace))
          })
        },
        traceHandle
      ),
      logIn: userOperations.logIn,
      reauthenticated: userOperations.reauthenticated,
      logOut: userOperations.logOut,
      logOutEverywhere: userOperations.logOutEverywhere,
      logOutOthers: userOperations.logOutOthers,
      logOutEveryone: userOperations.logOutEveryone,
      listSessions: userOperations.listSessions,
      endSession: userOperations.endSession,
      destroy: Effect.fn("Sessions.destroy", spanOptions)((handle: ActiveSession) => rotations.destroyHandle(handle), traceHandle),
      clearCache: cache.clear,
      user: userOperations.user,
      refreshUser: userOperations.refreshUser,
      subscribe: env.events.subscribe,
      events: env.events.events
    }
    return service
  })
