// Cross-site request protection and a log-out that clears the browser (docs/http.md): the session
// app behind Http.originCheck, run in process (no socket). A POST from the app's own origin
// passes, one from another site (or a sibling subdomain) is refused with 403, a log-out answers
// Clear-Site-Data; it exits 1 if an answer is not the expected one.
// Run: npx tsx examples/origin-check.ts
import { HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect, ManagedRuntime } from "effect"
import { Http, Sessions } from "effect-sessions"

const app = HttpRouter.empty.pipe(
  HttpRouter.post("/login", Effect.flatMap(Http.CurrentSession, (session) => session.logIn("ada")).pipe(Effect.as(HttpServerResponse.text("hello")))),
  HttpRouter.post("/logout", Effect.flatMap(Http.CurrentSession, (session) => session.destroy).pipe(Effect.as(HttpServerResponse.text("bye")))),
  // On destroy the response carries Clear-Site-Data: "cookies", "storage" (the default; false for none).
  Http.middleware({ clearSiteData: ["cookies", "storage"] }),
  // State-changing requests (not GET, HEAD or OPTIONS) from another origin get 403.
  Http.originCheck({ origin: "https://app.example.com", allowedOrigins: ["https://admin.example.com"] })
)

// ---- run it

const runtime = ManagedRuntime.make(Sessions.layerMemory({ cookie: { secure: false } }))

const main = async () => {
  const handler = HttpApp.toWebHandlerRuntime(await runtime.runtime())(app)
  const post = (path: string, origin: string, cookie = "") =>
    handler(new Request(`https://app.example.com${path}`, { method: "POST", headers: { origin, cookie } }))
  const own = await post("/login", "https://app.example.com")
  const cookie = own.headers.get("set-cookie")?.split(";")[0] ?? ""
  const sibling = await post("/logout", "https://evil.example.com", cookie)
  const admin = await post("/logout", "https://admin.example.com", cookie)
  const answers = [own.status, sibling.status, await sibling.text(), admin.status, admin.headers.get("clear-site-data")]
  console.log(answers.join("\n"))
  await runtime.dispose()
  const expected = [200, 403, "Forbidden: cross-site request", 200, `"cookies", "storage"`]
  if (JSON.stringify(answers) !== JSON.stringify(expected)) process.exit(1)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
