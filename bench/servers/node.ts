/**
 * (d) The ceiling: a bare `node:http` server with a process-global counter, no sessions.
 *
 *   POST /count → {"count":n} (increments), GET /count → {"count":n}, GET /stats → {"answered":n}
 */
import { createServer } from "node:http"
import { announceAddress, HOST, stats } from "./common.js"

let count = 0

const server = createServer((req, res) => {
  let body: string
  if (req.method === "POST" && req.url === "/count") {
    count++
    stats.answered++
    body = JSON.stringify({ count })
  } else if (req.method === "GET" && req.url === "/count") {
    body = JSON.stringify({ count })
  } else if (req.method === "GET" && req.url === "/stats") {
    body = JSON.stringify(stats)
  } else {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(0, HOST, () => announceAddress(server.address()))
const stop = () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
