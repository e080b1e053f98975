/**
 * What a store's error may carry ("errors carry no secrets"): the class name of the
 * driver's error and its message, nothing else. ioredis puts the command and its arguments on a
 * `ReplyError` (`command.args`: session and token keys, the user ID, the whole record — with
 * `hashIdsAtRest: false`, raw tokens); a PostgreSQL error carries `detail`, `where` and
 * `internalQuery`, which can quote values; a decoding error quotes the record it could not read.
 *
 * @internal
 */
import { CodecError } from "../Codec.js"

/** Messages longer than this are cut (a reply message, not a payload). */
const MAX_MESSAGE = 300

const className = (u: object): string => {
  const name = (u as { readonly name?: unknown }).name
  if (typeof name === "string" && name !== "" && name !== "Error") return name
  const ctor = (u as { readonly constructor?: { readonly name?: unknown } }).constructor
  return typeof ctor?.name === "string" && ctor.name !== "" && ctor.name !== "Object" ? ctor.name : "Error"
}

const firstLine = (s: string): string => {
  const line = s.split("\n", 1)[0] ?? ""
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line
}

/** An error with a name and a message, and a stack that is only those two. */
const plain = (name: string, message: string): Error => {
  const e = new Error(message)
  e.name = name
  e.stack = `${name}: ${message}`
  return e
}

/**
 * A driver error reduced to its class name and its message (first line): no command, arguments,
 * previous errors, details or stack frames. An `SqlError` keeps its own message and its cause's
 * class name and message.
 *
 * @internal
 */
export const redactDriverError = (cause: unknown): Error => {
  if (typeof cause !== "object" || cause === null) return plain("Error", typeof cause === "string" ? firstLine(cause) : "unknown error")
  const name = className(cause)
  const message = typeof (cause as { readonly message?: unknown }).message === "string" ? firstLine((cause as Error).message) : ""
  const inner = (cause as { readonly cause?: unknown }).cause
  if (name === "SqlError" && typeof inner === "object" && inner !== null) {
    const innerMessage = typeof (inner as { readonly message?: unknown }).message === "string" ? firstLine((inner as Error).message) : ""
    return plain(name, `${message}: ${className(inner)}: ${innerMessage}`)
  }
  return plain(name, message)
}

/**
 * A decoding error without the record: its reason and, for a record too large, the sizes (the
 * message of a malformed record quotes the values it could not read).
 *
 * @internal
 */
export const redactCodecError = (e: CodecError): CodecError =>
  e.reason === "TooLarge" ? e : new CodecError({ reason: "Malformed", message: "the record does not match the stored format" })
