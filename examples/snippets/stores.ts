// The stores with their connection settings (docs/stores.md). Type-checked with the suite, not run.
import { Layer } from "effect"
import { Sessions } from "effect-sessions"
import * as Pg from "effect-sessions/Persistence/Pg"
import * as Redis from "effect-sessions/Persistence/Redis"
import * as Sqlite from "effect-sessions/Persistence/Sqlite"

const onPostgres = Sessions.layer({ idleTimeout: "30 minutes" }).pipe(
  Layer.provide(Pg.layer({ url: process.env.DATABASE_URL!, tablePrefix: "myapp_sessions_", client: { maxConnections: 10 } }))
)
const onRedis = Sessions.layer({ idleTimeout: "30 minutes" }).pipe(
  Layer.provide(Redis.layer({ url: process.env.REDIS_URL, prefix: "myapp:sess:", originId: `web-${process.pid}` }))
)
const onRedisCluster = Sessions.layer({ idleTimeout: "30 minutes" }).pipe(
  Layer.provide(Redis.layerCluster({ nodes: process.env.REDIS_CLUSTER_NODES!, prefix: "myapp:sess:" }))
)
const onSqlite = Sessions.layer({ idleTimeout: "30 minutes" }).pipe(
  Layer.provide(Sqlite.layer({ filename: "/var/lib/myapp/sessions.db", tablePrefix: "myapp_sessions_" }))
)

export { onPostgres, onRedis, onRedisCluster, onSqlite }
