/**
 * Reading the session cookie out of a raw `Cookie` header strictly: an oversized header, or a
 * name that appears more than once (a cookie-tossing attempt, or a stale cookie of another
 * path), yields no token, so such requests never reach the store. Such a header is not answered
 * with a removal either: we cannot tell which cookie is ours, and a removal by name would only
 * ever hit ours (a `__Host-` name, the default, cannot be planted beside it at all).
 *
 * @internal
 */

/** Cookie headers longer than this are not read at all. @internal */
export const MAX_COOKIE_HEADER = 8192

/** @internal */
export type CookieRead =
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Rejected"; readonly reason: "oversized" | "duplicated" }
  | { readonly _tag: "Present"; readonly value: string }

/** @internal */
export const readCookie = (header: string | undefined, name: string): CookieRead => {
  // (An empty header has no part with "=": it ends Absent below.)
  if (header === undefined) return { _tag: "Absent" }
  if (header.length > MAX_COOKIE_HEADER) return { _tag: "Rejected", reason: "oversized" }
  let found: string | undefined
  let count = 0
  for (const part of header.split(";")) {
    const eq = part.indexOf("=")
    if (eq < 0) continue
    if (part.slice(0, eq).trim() !== name) continue
    count++
    found = part.slice(eq + 1).trim()
  }
  // `found` is set with every count.
  if (found === undefined) return { _tag: "Absent" }
  if (count > 1) return { _tag: "Rejected", reason: "duplicated" }
  return { _tag: "Present", value: found }
}
