/**
 * Hashing and response parsing for the Pwned Passwords k-anonymity range API.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/**
 * Upper-case SHA-1 hex of the UTF-8 bytes of `password`, split into the 5-character prefix
 * that is sent and the 35-character suffix that never leaves the process.
 *
 * @internal
 */
export const sha1Range = (password: string): { readonly prefix: string; readonly suffix: string } => {
  const hex = createHash("sha1").update(password, "utf8").digest("hex").toUpperCase()
  return { prefix: hex.slice(0, 5), suffix: hex.slice(5) }
}

const LINE = /^([0-9A-Fa-f]{35}):(\d+)$/

/**
 * Parses a range response (`SUFFIX:COUNT` per line, CRLF or LF). Padding entries (count 0)
 * are dropped. Returns `undefined` when the body is empty or any non-empty line is malformed: a body that is not
 * a range response (a proxy's error page, say) must not read as "not breached".
 *
 * @internal
 */
export const parseRange = (body: string): ReadonlyMap<string, number> | undefined => {
  const out = new Map<string, number>()
  let lines = 0
  for (const raw of body.split("\n")) {
    const line = raw.trim()
    if (line.length === 0) continue
    lines++
    const m = LINE.exec(line)
    if (m === null) return undefined
    const count = Number(m[2])
    if (!Number.isSafeInteger(count)) return undefined
    if (count > 0) out.set(m[1]!.toUpperCase(), count)
  }
  // every prefix has hundreds of entries (and padding adds more): an empty body is not an answer
  return lines === 0 ? undefined : out
}
