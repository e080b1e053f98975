// A user's TypeScript against the installed package: `scripts/check-package.ts` type-checks it
// in the scratch project with `strict` and `exactOptionalPropertyTypes`, under
// `moduleResolution` node16 and bundler. It touches every public entry (effect-sessions/testing
// with vitest and @effect/vitest installed).
import { HttpRouter, HttpServerResponse, type KeyValueStore } from "@effect/platform"
import { type ConfigError, Effect, Layer, Option } from "effect"
import { Codec, Http, Ids, Password, Persistence, PwnedPasswords, SecureRandom, Session, SessionCache, SessionConfig, Sessions } from "effect-sessions"
import * as CodecModule from "effect-sessions/Codec"
import * as HttpModule from "effect-sessions/Http"
import * as PersistenceModule from "effect-sessions/Persistence"
import * as Pg from "effect-sessions/Persistence/Pg"
import * as Redis from "effect-sessions/Persistence/Redis"
import * as Sql from "effect-sessions/Persistence/Sql"
import * as Sqlite from "effect-sessions/Persistence/Sqlite"
import * as SessionsModule from "effect-sessions/Sessions"
import * as Testing from "effect-sessions/testing"

export const app = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/count",
    Effect.gen(function*() {
      const session = yield* Http.CurrentSession
      const count = yield* session.update("count", (n) => (Option.getOrElse(n, () => 0) as number) + 1)
      return HttpServerResponse.text(String(count))
    })
  ),
  Http.middleware()
)

export const memory: Layer.Layer<Sessions.Sessions, SessionConfig.SessionConfigError> =
  Sessions.layerMemory({ cookie: { secure: false }, idleTimeout: "30 minutes" })

export const stores: ReadonlyArray<Layer.Layer<Persistence.Persistence, unknown, SecureRandom.SecureRandom>> = [
  Persistence.layerMemory,
  Redis.layer({ url: "redis://127.0.0.1:6379", prefix: "app:" }),
  Pg.layer({ url: "postgres://app@127.0.0.1:5432/app", tablePrefix: "app_" }),
  Sqlite.layer({ filename: ":memory:" }),
  Sqlite.layerConfig(),
  Pg.layerConfig()
]

export const sameModules: boolean = CodecModule === Codec && HttpModule === Http &&
  PersistenceModule === Persistence && SessionsModule === Sessions

export const isStoreError = (u: unknown): u is Persistence.SessionStoreError => Persistence.isSessionStoreError(u)

export const client: Session.Client = Session.client({ ip: "203.0.113.9", userAgent: "consumer" })

export const touched: ReadonlyArray<unknown> = [Ids, Password, PwnedPasswords, SessionCache, Sql.layer]

// The testing entry: the suites take a store layer; the wrappers keep the store's shape.
export const conformance: (name: string, layer: Layer.Layer<Persistence.Persistence>) => void = (name, layer) => {
  Testing.persistenceConformance(name, layer, { numRuns: 5 })
  Testing.sessionsConformance(name, layer)
}
export const wrapped = Effect.map(Persistence.makeMemory, (store) => {
  const { calls, store: countedStore } = Testing.counted(store)
  const off = Testing.switchable(countedStore)
  return { calls, store: Testing.intercept(off.store, (_method, call) => call), setDown: off.setDown }
})
export const kvStore: Layer.Layer<Persistence.Persistence, ConfigError.ConfigError, KeyValueStore.KeyValueStore> = Persistence.layerKeyValueStore({ prefix: "app:" })
