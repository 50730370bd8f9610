import type { FlightOutcome } from './single-flight.js'

/** A lock on one key's origin call, held across instances. */
export type LockGrant =
  /** This instance calls the origin; release the grant when the fill settles. */
  | { readonly state: 'acquired'; readonly key: string; readonly token: string }
  /** Another instance is calling the origin for this key (`holder` is its token): wait for it. */
  | { readonly state: 'held'; readonly holder: string }
  /** The lock could not be asked for (shared store unavailable): coalesce in this process only. */
  | { readonly state: 'unavailable' }

/**
 * The cross-instance half of the stampede guard. In-process coalescing (SingleFlight) makes one
 * request per instance the leader; the leader then asks this lock, so that one instance in the
 * whole fleet calls the origin and the others wait to be told how it went.
 */
export interface FillLock {
  /** Tries to take the lock on `key` for at most `ttlMs`. Never rejects. */
  acquire(key: string, ttlMs: number): Promise<LockGrant>
  /**
   * Releases a grant (only if still ours) and tells waiters how the fill went: `retry` when the
   * holder gives up the lead because it took longer than the lock's lifetime. Fire and forget.
   */
  release(grant: LockGrant & { state: 'acquired' }, outcome: FlightOutcome): void
  /**
   * Resolves with the outcome the holder `holder` reports, or `retry` when it reports nothing
   * within `ms` (or the lock cannot be watched). Never rejects.
   */
  wait(key: string, holder: string, ms: number): Promise<FlightOutcome>
}
