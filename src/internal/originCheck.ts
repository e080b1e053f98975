/**
 * The cross-site request check behind `Http.originCheck`: which state-changing requests a
 * browser sent on behalf of another site, decided from `Origin` and `Sec-Fetch-Site`.
 *
 * @internal
 */
import type { HttpApp } from "@effect/platform"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"

/**
 * Options of `Http.originCheck`.
 *
 * @since 0.1.0
 * @category models
 */
export interface OriginCheckOptions {
  /**
   * The app's own origin (`https://app.example.com`). Default: the origin the request was sent
   * to, from its `Host` header — with `scheme` when given, else host and port only.
   * Behind a proxy that rewrites `Host`, set it.
   */
  readonly origin?: string
  /** The scheme of the app's own origin when it is derived from `Host` (default: any). */
  readonly scheme?: "http" | "https"
  /** Other origins allowed to send state-changing requests (`https://admin.example.com`). Default none. */
  readonly allowedOrigins?: ReadonlyArray<string>
}

/** Methods that must not change state (RFC 9110 safe methods): never checked. */
const SAFE = new Set(["GET", "HEAD", "OPTIONS"])

/** The serialized origin of `text` (`scheme://host[:port]`, default port dropped, lowercase), or `undefined`. */
const originOf = (text: string): string | undefined => {
  try {
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : undefined
  } catch {
    return undefined
  }
}

const defaultPort = (protocol: string) => (protocol === "https:" ? "443" : "80")

/**
 * Whether `origin` names the host the request was sent to (the `Host` header), with the scheme
 * when one is configured. Without a scheme only host and port are compared (as Lucia's
 * `verifyRequestOrigin` does): the `Host` header carries no scheme, and behind a TLS-terminating
 * proxy the server cannot see it.
 */
const sameHost = (origin: URL, host: string, scheme: "http" | "https" | undefined): boolean => {
  if (scheme !== undefined && origin.protocol !== `${scheme}:`) return false
  let target: URL
  try {
    target = new URL(`${origin.protocol}//${host}`)
  } catch {
    return false
  }
  if (target.pathname !== "/" || target.username !== "" || target.search !== "") return false
  return target.hostname === origin.hostname && (target.port || defaultPort(target.protocol)) === (origin.port || defaultPort(origin.protocol))
}

/** The verdict for one request: `undefined` lets it through, else the reason it is refused. */
export const verdict = (
  method: string,
  headers: Readonly<Record<string, string | undefined>>,
  own: { readonly origin: string | undefined; readonly scheme: "http" | "https" | undefined; readonly allowed: ReadonlySet<string> }
): string | undefined => {
  if (SAFE.has(method.toUpperCase())) return undefined
  const origin = headers["origin"]
  if (origin !== undefined) {
    // `Origin: null` comes from sandboxed frames, `data:` and `file:` documents and some
    // cross-origin redirects: nothing the app can name, so never its own.
    if (origin.trim().toLowerCase() === "null") return "Origin: null"
    const serialized = originOf(origin.trim())
    if (serialized === undefined) return "a malformed Origin"
    if (own.allowed.has(serialized)) return undefined
    if (own.origin !== undefined) return serialized === own.origin ? undefined : "a cross-origin Origin"
    const host = headers["host"]
    return host !== undefined && sameHost(new URL(serialized), host, own.scheme) ? undefined : "a cross-origin Origin"
  }
  const site = headers["sec-fetch-site"]?.trim().toLowerCase()
  // `same-site` is a sibling subdomain (or another port or scheme of the site): not this origin,
  // and without an Origin we cannot tell whether it is an allowed one. `none` is a navigation the
  // user started (address bar, bookmark).
  if (site === "cross-site" || site === "same-site") return `Sec-Fetch-Site: ${site}`
  // Neither header: not a browser acting for another site. Browsers send `Origin` on every
  // cross-origin request whose method is not GET or HEAD (Fetch standard, "append a request
  // `Origin` header"; form posts included), and `Sec-Fetch-Site` on every request to a potentially
  // trustworthy URL, so a cross-site POST from a browser always carries one of them; curl, server
  // to server calls and tests do not, and are no cross-site forgery.
  return undefined
}

const refused = HttpServerResponse.text("Forbidden: cross-site request", { status: 403 })

/** @internal */
export const makeOriginCheck = (options: OriginCheckOptions = {}) => {
  const normalize = (text: string, option: string) => {
    const serialized = originOf(text)
    if (serialized === undefined || text.trim().toLowerCase() === "null") {
      throw new TypeError(`effect-sessions: Http.originCheck ${option} ${JSON.stringify(text)} is not an http(s) origin`)
    }
    return serialized
  }
  const own = {
    origin: options.origin === undefined ? undefined : normalize(options.origin, "origin"),
    scheme: options.scheme,
    allowed: new Set((options.allowedOrigins ?? []).map((o) => normalize(o, "allowedOrigins entry")))
  }
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const reason = verdict(request.method, request.headers, own)
      if (reason === undefined) return app
      return Effect.as(Effect.logWarning(`cross-site request refused: ${request.method} with ${reason}`), refused)
    })
}
