/**
 * The versioned JSON codec of stored records (rivo/sessions' MarshalJSON / UnmarshalJSON), built
 * from Schema: exact round trips, and a typed {@link CodecError} — never a throw — for any
 * malformed input.
 *
 * @since 0.1.0
 * @module
 */
import { Data, Either, Schema } from "effect"
import { ParseResult } from "effect"
import { JsonObject, Redirect, Session, type TokenRecord } from "./Session.js"

/**
 * The format version written by this release. Decoding any other version fails.
 *
 * @since 0.1.0
 * @category constants
 */
export const FORMAT_VERSION = 1 as const

/**
 * Inputs longer than this (in UTF-16 code units) are refused before parsing: 1 MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ENCODED_LENGTH = 1024 * 1024

/**
 * A record that could not be decoded: too large, not JSON, a wrong version, or wrong fields.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends Data.TaggedError("CodecError")<{
  readonly reason: "TooLarge" | "Malformed"
  readonly message: string
}> {}

const Time = Schema.Number.pipe(Schema.finite())
const NullableString = Schema.OptionFromNullOr(Schema.String)

/**
 * The JSON object form of a stored session (format version {@link FORMAT_VERSION}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const SessionJson = Schema.Struct({
  v: Schema.Literal(FORMAT_VERSION),
  type: Schema.Literal("session"),
  key: Schema.String,
  tokenKey: Schema.String,
  createdAt: Time,
  idIssuedAt: Time,
  lastAccessAt: Time,
  userId: NullableString,
  ip: NullableString,
  userAgentHash: NullableString,
  data: JsonObject,
  version: Schema.Int,
  authenticatedAt: Schema.OptionFromNullOr(Time),
  persistent: Schema.OptionFromNullOr(Schema.Boolean)
})

/**
 * The JSON object form of a stored redirect (format version {@link FORMAT_VERSION}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedirectJson = Schema.Struct({
  v: Schema.Literal(FORMAT_VERSION),
  type: Schema.Literal("redirect"),
  tokenKey: Schema.String,
  sessionKey: Schema.String,
  rotatedAt: Time,
  expiresAt: Time,
  ip: NullableString,
  userAgentHash: NullableString,
  successorKey: Schema.String,
  sealedSuccessor: Schema.String
})

/**
 * The Schema of a stored session: its JSON object form ↔ {@link Session}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SessionSchema: Schema.Schema<Session, Schema.Schema.Encoded<typeof SessionJson>> = Schema.transform(
  SessionJson,
  Schema.declare((u): u is Session => u instanceof Session),
  {
    strict: true,
    decode: ({ type: _type, v: _v, ...fields }) => new Session(fields),
    encode: (s) => ({
      v: FORMAT_VERSION,
      type: "session" as const,
      key: s.key,
      tokenKey: s.tokenKey,
      createdAt: s.createdAt,
      idIssuedAt: s.idIssuedAt,
      lastAccessAt: s.lastAccessAt,
      userId: s.userId,
      ip: s.ip,
      userAgentHash: s.userAgentHash,
      data: s.data,
      version: s.version,
      authenticatedAt: s.authenticatedAt,
      persistent: s.persistent
    })
  }
)

/**
 * The Schema of a stored redirect: its JSON object form ↔ {@link Redirect}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RedirectSchema: Schema.Schema<Redirect, Schema.Schema.Encoded<typeof RedirectJson>> = Schema.transform(
  RedirectJson,
  Schema.declare((u): u is Redirect => u instanceof Redirect),
  {
    strict: true,
    decode: ({ type: _type, v: _v, ...fields }) => new Redirect(fields),
    encode: (r) => ({
      v: FORMAT_VERSION,
      type: "redirect" as const,
      tokenKey: r.tokenKey,
      sessionKey: r.sessionKey,
      rotatedAt: r.rotatedAt,
      expiresAt: r.expiresAt,
      ip: r.ip,
      userAgentHash: r.userAgentHash,
      successorKey: r.successorKey,
      sealedSuccessor: r.sealedSuccessor
    })
  }
)

/**
 * The Schema of any stored record.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenRecordSchema = Schema.Union(SessionSchema, RedirectSchema)

const encodeRecord = Schema.encodeSync(TokenRecordSchema)
const decodeRecord = Schema.decodeUnknownEither(TokenRecordSchema, { onExcessProperty: "error" })
const encodeSessionSync = Schema.encodeSync(SessionSchema)
const decodeSessionEither = Schema.decodeUnknownEither(SessionSchema, { onExcessProperty: "error" })

const parse = (input: string): Either.Either<unknown, CodecError> => {
  if (typeof input !== "string") return Either.left(new CodecError({ reason: "Malformed", message: "not a string" }))
  if (input.length > MAX_ENCODED_LENGTH) {
    return Either.left(new CodecError({ reason: "TooLarge", message: `${input.length} characters exceed ${MAX_ENCODED_LENGTH}` }))
  }
  try {
    return Either.right(JSON.parse(input))
  } catch (e) {
    return Either.left(new CodecError({ reason: "Malformed", message: `not JSON: ${(e as Error).message}` }))
  }
}

const malformed = (e: ParseResult.ParseError) => {
  let message: string
  try {
    // The formatter prints offending values; a hostile value may be too deep to print.
    message = ParseResult.TreeFormatter.formatErrorSync(e)
  } catch {
    message = "the record does not match the stored format"
  }
  return new CodecError({ reason: "Malformed", message: message.length > 2000 ? `${message.slice(0, 2000)}…` : message })
}

/**
 * Encodes a session or redirect as a JSON string.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (record: TokenRecord): string => JSON.stringify(encodeRecord(record))

/**
 * Decodes a JSON string into a session or redirect.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: string): Either.Either<TokenRecord, CodecError> =>
  Either.flatMap(parse(input), (json) => Either.mapLeft(decodeRecord(json), malformed))

/**
 * Encodes a session as a JSON string.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeSession = (session: Session): string => JSON.stringify(encodeSessionSync(session))

/**
 * Decodes a JSON string into a session (a redirect is an error here).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeSession = (input: string): Either.Either<Session, CodecError> =>
  Either.flatMap(parse(input), (json) => Either.mapLeft(decodeSessionEither(json), malformed))

/**
 * Decodes an already parsed value (e.g. a JSONB column) into a session.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeSessionUnknown = (input: unknown): Either.Either<Session, CodecError> => {
  try {
    return Either.mapLeft(decodeSessionEither(input), malformed)
  } catch (e) {
    // A value that is not plain data (a getter that throws, a revoked proxy) is not a record.
    return Either.left(new CodecError({ reason: "Malformed", message: `not plain data: ${e instanceof Error ? e.message : String(e)}` }))
  }
}

/**
 * Encodes a session to its JSON object form (for a JSON column).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeSessionObject = (session: Session): Schema.Schema.Encoded<typeof SessionSchema> => encodeSessionSync(session)
