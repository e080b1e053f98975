/**
 * Session events: what happened to a session, as typed values, for security notices (OWASP ASVS
 * 6.3.5, "notify users of suspicious logins"), audit logs and metrics of your own. Subscribe
 * through the Sessions service (`sessions.subscribe()` or `sessions.events`).
 *
 * - **What an event carries.** The session's public ID (`sessionId`, the same ID as
 *   `SessionInfo.id` in a user's session list: a hash of the internal key), the time (`at`, epoch
 *   milliseconds), the user ID where there is one, and client facts as the store keeps them (the
 *   IP and a hash of the user agent). Never a token, never the internal session key: an event
 *   may be logged, queued or sent to another service without handing out a way into the session.
 *   The user ID is your application's own identifier (it needs it to notify the user); if your
 *   user IDs are e-mail addresses, so are the events' — treat them as personal data.
 * - **When.** An event is published after its change is stored, by the request that made it:
 *   never for a write that failed or lost a race to another writer.
 * - **Where.** Events are per process: each process publishes what its own requests did. In a
 *   deployment of several processes every subscriber sees the events of its process only (Spring
 *   Session's events behave the same); forward them to a shared queue for a global view.
 * - **Delivery.** Each subscriber has a bounded queue. Publishing never waits: a subscriber that
 *   falls `capacity` events behind misses the newest events until it reads again, and each missed
 *   event counts in the metric `effect_sessions_events_dropped_total`. A slow subscriber never
 *   blocks a request.
 * - **What is not an event.** A session that dies unseen (nobody uses it again, and the store's
 *   TTL or sweeper removes it) publishes nothing: only what a request of this process finds or
 *   does is published.
 *
 * Every event is a `Schema.TaggedClass`, and {@link SessionEvent} their union: encode an event with
 * `Schema.encodeSync(SessionEvents.SessionEvent)` to send it, decode it on the other side.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"

const common = {
  /** The session's public ID (as in a user's session list), never a token or the internal key. */
  sessionId: Schema.String,
  /** When it happened (epoch milliseconds, from the service's Clock). */
  at: Schema.Number
}

const optionalString = Schema.OptionFromUndefinedOr(Schema.String)

/** The client facts the store keeps: the IP and the hash of the user agent, each when known. */
const clientFacts = {
  ip: optionalString,
  userAgentHash: optionalString
}

/**
 * A session was created (a request without a valid session, or `Sessions.create`).
 *
 * @since 0.1.0
 * @category models
 */
export class Created extends Schema.TaggedClass<Created>("effect-sessions/SessionEvents/Created")("Created", {
  ...common,
  ...clientFacts
}) {}

/**
 * A user logged in to the session (the token rotated with no grace period). `newDevice` is
 * whether this client was *not* seen before for this user: seen before means that, at the moment
 * of the log-in, one of the user's live sessions in the store (found through the user index,
 * before an exclusive log-in ends them; the session itself counts if it already belonged to the
 * user) was bound to the same user agent hash and an IP in the same network (the first 24 bits of
 * an IPv4 address, the first 64 of an IPv6 one). Both facts must be known on both sides. Its
 * limits: the memory is only the user's live sessions — after every session of the user has ended
 * or expired, every client is new; a browser update changes the user agent and makes the device
 * new; a device behind the same network and browser build as a known one looks known. Computed
 * only while somebody subscribes (it costs one read of the user index per log-in); when that read
 * fails the device counts as new.
 *
 * @since 0.1.0
 * @category models
 */
export class LoggedIn extends Schema.TaggedClass<LoggedIn>("effect-sessions/SessionEvents/LoggedIn")("LoggedIn", {
  ...common,
  userId: Schema.String,
  ...clientFacts,
  newDevice: Schema.Boolean,
  /** Whether the log-in was exclusive (it ended the user's other sessions: see {@link EndedByOtherSession}). */
  exclusive: Schema.Boolean
}) {}

/**
 * The user logged out of the session (the token rotated with no grace period). `userId` is the
 * user who was logged in, if any.
 *
 * @since 0.1.0
 * @category models
 */
export class LoggedOut extends Schema.TaggedClass<LoggedOut>("effect-sessions/SessionEvents/LoggedOut")("LoggedOut", {
  ...common,
  userId: optionalString
}) {}

/**
 * The session's token was replaced: `"interval"` when a request's token reached
 * `idRotationInterval`, `"regenerateId"` on request, `"reauthenticated"` when the user proved
 * their identity again (`reauthenticated`: no grace). `grace` is whether the old token follows for
 * the grace period. (Log-ins and log-outs rotate too; they publish {@link LoggedIn} and
 * {@link LoggedOut} instead.)
 *
 * @since 0.1.0
 * @category models
 */
export class Rotated extends Schema.TaggedClass<Rotated>("effect-sessions/SessionEvents/Rotated")("Rotated", {
  ...common,
  userId: optionalString,
  cause: Schema.Literal("interval", "regenerateId", "reauthenticated"),
  grace: Schema.Boolean
}) {}

/**
 * A request carried a replaced token inside its grace period and was led to the current token
 * (`hops`: how many replacements it was behind). Normal for requests in flight during a rotation;
 * many of them from one client long after the rotation may mean a copied cookie.
 *
 * @since 0.1.0
 * @category models
 */
export class FollowedAfterRotation extends Schema.TaggedClass<FollowedAfterRotation>(
  "effect-sessions/SessionEvents/FollowedAfterRotation"
)("FollowedAfterRotation", {
  ...common,
  userId: optionalString,
  hops: Schema.Number
}) {}

/**
 * A request found the session past its idle timeout (`"idle"`) or its absolute timeout
 * (`"absolute"`), and the service deleted it.
 *
 * @since 0.1.0
 * @category models
 */
export class Expired extends Schema.TaggedClass<Expired>("effect-sessions/SessionEvents/Expired")("Expired", {
  ...common,
  userId: optionalString,
  reason: Schema.Literal("idle", "absolute")
}) {}

/**
 * A request came from a client the configuration rejects (`kind`: the IP left the accepted
 * network, or the user agent changed), and the session was destroyed. `ip` and `userAgentHash`
 * are the rejected client's.
 *
 * @since 0.1.0
 * @category models
 */
export class Anomaly extends Schema.TaggedClass<Anomaly>("effect-sessions/SessionEvents/Anomaly")("Anomaly", {
  ...common,
  userId: optionalString,
  kind: Schema.Literal("ip", "userAgent"),
  ...clientFacts
}) {}

/**
 * A replaced token was used after its grace period (`lateByMillis` past it), while the store still
 * kept its record (records are kept for a retention period past their deadline): a stale tab, or
 * a stolen cookie tried after the user moved on. `tokenHash` is the short hash the logs use for
 * that token (never the token); `ip` and `userAgentHash` are the late client's.
 *
 * @since 0.1.0
 * @category models
 */
export class LateUseOfRotatedToken extends Schema.TaggedClass<LateUseOfRotatedToken>(
  "effect-sessions/SessionEvents/LateUseOfRotatedToken"
)("LateUseOfRotatedToken", {
  ...common,
  tokenHash: Schema.String,
  lateByMillis: Schema.Number,
  ...clientFacts
}) {}

/**
 * The session was destroyed through its own token (`Sessions.destroy`, an HTTP log-out that ends
 * the session).
 *
 * @since 0.1.0
 * @category models
 */
export class Destroyed extends Schema.TaggedClass<Destroyed>("effect-sessions/SessionEvents/Destroyed")("Destroyed", {
  ...common,
  userId: optionalString
}) {}

/**
 * The session was ended by an operation not made through its own token: `"logOutEverywhere"`,
 * `"exclusiveLogIn"` (a log-in elsewhere ended the user's other sessions; `initiator` is the
 * public ID of the session that logged in), `"logOutOthers"` (the user ended their other sessions
 * from one of them, the `initiator`) or `"endSession"` (the user ended it from a session list).
 *
 * @since 0.1.0
 * @category models
 */
export class EndedByOtherSession extends Schema.TaggedClass<EndedByOtherSession>(
  "effect-sessions/SessionEvents/EndedByOtherSession"
)("EndedByOtherSession", {
  ...common,
  userId: Schema.String,
  by: Schema.Literal("logOutEverywhere", "exclusiveLogIn", "logOutOthers", "endSession"),
  initiator: optionalString
}) {}

/**
 * The service met a session that "log everybody out" ended (`Sessions.logOutEveryone`): born — and
 * not authenticated since — at or before `revokedUntil`, the revocation instant. The switch itself
 * touches no session (it stores one instant); each session is deleted, and this event published,
 * by the process that next meets it: a request carrying its token, a write through a handle, or a
 * listing of its user's sessions. A session nobody meets again publishes nothing (see above).
 *
 * @since 0.1.0
 * @category models
 */
export class Revoked extends Schema.TaggedClass<Revoked>("effect-sessions/SessionEvents/Revoked")("Revoked", {
  ...common,
  userId: optionalString,
  revokedUntil: Schema.Number
}) {}

/**
 * Every session event: a Schema union of the event classes, discriminated by `_tag`.
 *
 * @since 0.1.0
 * @category models
 */
export const SessionEvent = Schema.Union(
  Created,
  LoggedIn,
  LoggedOut,
  Rotated,
  FollowedAfterRotation,
  Expired,
  Anomaly,
  LateUseOfRotatedToken,
  Destroyed,
  EndedByOtherSession,
  Revoked
)

/**
 * Every session event.
 *
 * @since 0.1.0
 * @category models
 */
export type SessionEvent = typeof SessionEvent.Type

/**
 * The tags of the events (`"Created"`, `"LoggedIn"`, …).
 *
 * @since 0.1.0
 * @category models
 */
export type Tag = SessionEvent["_tag"]

/**
 * The default capacity of a subscriber's queue: events it may fall behind before it misses some.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_CAPACITY = 1024

/**
 * Whether a value is a session event.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSessionEvent: (u: unknown) => u is SessionEvent = Schema.is(SessionEvent)
