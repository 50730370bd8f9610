import type { NotStoredReason } from './model/policy.js'
import type { StoreHealth } from './stores/types.js'
import type { HealthWindow } from './observe/health.js'

/** Counters since the cache was created. */
export interface CacheStats {
  /** Requests answered from a stored entry (including 304s and coalesced requests answered from the leader's entry). */
  hits: number
  /** Requests that went to the origin. */
  misses: number
  /**
   * Requests that waited for another request's origin call on the same key instead of calling the
   * origin themselves. Most are then answered from the stored entry (and counted as hits too);
   * when the leader's response could not be stored they go to the origin (and count as misses).
   */
  coalesced: number
  /** Responses stored. */
  stored: number
  /** Responses not stored, by reason. */
  notStored: Partial<Record<NotStoredReason, number>>
  /** Requests that skipped the cache (X-Cache: BYPASS). */
  bypassed: number
  /**
   * Requests answered with an entry past its freshness (X-Cache: STALE): within its
   * stale-while-revalidate window, or instead of an origin error (stale-if-error). Not in `hits`.
   */
  stale: number
  /** Background refreshes started (by stale hits, `earlyRefresh` and `refreshAfter`). */
  revalidations: number
  /** Hits on fresh entries that started an early refresh (`earlyRefresh`, `refreshAfter`). */
  earlyRefreshes: number
  /** Entries stored by `warm()`. */
  warmed: number
  /** Background refreshes that did not store a new entry (the origin failed, or the app did not pass the replay through Corral). */
  revalidationFailures: number
  /** Entries removed by invalidation. */
  invalidated: number
  /** Entries read from a shared store that failed to decode or verify: never served, deleted. */
  rejected: number
  /** Store failures and user callbacks that threw. */
  errors: number
  /** Entries and bytes held in memory (entries with their indexes). */
  entries: number
  bytes: number
  /** Bytes of the memo of recent keys and of the hit-for-pass table, each bounded by maxBytes / 32. */
  overheadBytes: number
  /** Origin calls under way that other requests may wait on. */
  inFlight: number
}

export type Counters = Omit<CacheStats, 'entries' | 'bytes' | 'overheadBytes' | 'inFlight' | 'notStored'>

export function newCounters(): Counters {
  return { hits: 0, misses: 0, coalesced: 0, stored: 0, bypassed: 0, stale: 0, revalidations: 0, earlyRefreshes: 0, warmed: 0, revalidationFailures: 0, invalidated: 0, rejected: 0, errors: 0 }
}

/** What `cache.health()` answers. */
export interface CacheHealth {
  /**
   * `'degraded'` when the store reports a problem (Redis down or slow, an eviction policy that could
   * undo invalidations) or a threshold of `options.health` is crossed over the recent window; the
   * cache still answers (from L1 and the origin).
   */
  readonly status: 'ok' | 'degraded' | 'closed'
  /** Why it is degraded, one sentence each; empty when ok. */
  readonly reasons: readonly string[]
  /** Entries and bytes in this process (L1). */
  readonly entries: number
  readonly bytes: number
  readonly inFlight: number
  /** Hit rate, error rate and L2 latency over the recent window (`options.health.window`). */
  readonly window: HealthWindow
  /** The store's own report (for Redis: connection, breaker, eviction policy, last error, round trip), or null. */
  readonly store: StoreHealth | null
}
