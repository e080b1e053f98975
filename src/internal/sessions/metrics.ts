/**
 * The counters the Sessions service keeps (`effect_sessions_*_total`): creations, rotations,
 * expiries by reason, anomalies by kind, destructions, cache hits and misses, and the
 * compare-and-set races lost to another writer. One module, so that every part of the service
 * counts into the same metrics and a test can read them.
 *
 * @internal
 */
import { Metric } from "effect"

/** @internal */
export const metrics = {
  created: Metric.counter("effect_sessions_created_total", { description: "sessions created" }),
  rotated: Metric.counter("effect_sessions_rotated_total", { description: "session tokens rotated" }),
  expired: Metric.counter("effect_sessions_expired_total", { description: "sessions or tokens found expired, by reason" }),
  anomalies: Metric.counter("effect_sessions_anomalies_total", { description: "sessions destroyed for a client change, by kind" }),
  destroyed: Metric.counter("effect_sessions_destroyed_total", { description: "sessions destroyed on request" }),
  cacheHits: Metric.counter("effect_sessions_cache_hits_total", { description: "token lookups answered by the local cache" }),
  cacheMisses: Metric.counter("effect_sessions_cache_misses_total", { description: "token lookups that went to the store" }),
  conflicts: Metric.counter("effect_sessions_conflicts_total", { description: "compare-and-set races lost to another writer" })
}
