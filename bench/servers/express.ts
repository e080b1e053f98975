/**
 * (c) express 5 + express-session (`saveUninitialized: false, resave: false`, cookie not
 * secure) on `--store memory` (MemoryStore) or `--store redis` (connect-redis 9 on a node-redis
 * client, key prefix `--prefix`).
 *
 *   POST /count → req.session.count += 1 → {"count":n}, GET /count, GET /stats → {"answered":n}
 */
import { RedisStore } from "connect-redis"
import express from "express"
import session from "express-session"
import { createClient } from "redis"
import { announceAddress, arg, HOST, stats } from "./common.js"

declare module "express-session" {
  interface SessionData {
    count: number
  }
}

const storeKind = arg("store", "memory")

const main = async () => {
  let store: session.Store | undefined
  let close = async () => {}
  if (storeKind === "redis") {
    const client = createClient({ url: arg("url") })
    client.on("error", (e) => console.error("redis client error", e))
    await client.connect()
    store = new RedisStore({ client, prefix: arg("prefix") })
    close = async () => {
      await client.quit()
    }
  } else if (storeKind !== "memory") {
    throw new Error(`unknown store ${storeKind}`)
  }

  const app = express()
  app.disable("x-powered-by")
  app.use(
    session({
      secret: "bench-secret-not-for-production",
      resave: false,
      saveUninitialized: false,
      cookie: { secure: false },
      ...(store === undefined ? {} : { store })
    })
  )
  app.post("/count", (req, res) => {
    const count = (req.session.count ?? 0) + 1
    req.session.count = count
    stats.answered++
    res.json({ count })
  })
  app.get("/count", (req, res) => {
    res.json({ count: req.session.count ?? 0 })
  })
  app.get("/stats", (_req, res) => {
    res.json(stats)
  })

  const server = app.listen(0, HOST, () => announceAddress(server.address()))
  server.keepAliveTimeout = 60_000
  const stop = () => {
    server.close(() => void close().finally(() => process.exit(0)))
    server.closeAllConnections()
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
