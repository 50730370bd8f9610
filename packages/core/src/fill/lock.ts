/** A lock on one key's origin call, held across instances. */
export type LockGrant =
  /** This instance calls the origin; release the grant when the fill settles. */
  | { readonly state: 'acquired'; readonly key: string; readonly token: string }
  /** Another instance is calling the origin for this key: wait for it. */
  | { readonly state: 'held' }
  /** The lock could not be asked for (shared store unavailable): coalesce in this process only. */
  | { readonly state: 'unavailable' }

/**
 * The cross-instance half of the stampede guard. In-process coalescing (SingleFlight) makes one
 * request per instance the leader; the leader then asks this lock, so that one instance in the
 * whole fleet calls the origin and the others wait to be told that the entry has landed.
 */
export interface FillLock {
  /** Tries to take the lock on `key` for at most `ttlMs`. Never rejects. */
  acquire(key: string, ttlMs: number): Promise<LockGrant>
  /** Releases a grant (only if still ours) and tells waiters whether an entry was stored. Fire and forget. */
  release(grant: LockGrant & { state: 'acquired' }, stored: boolean): void
  /** Resolves true when the holder reports a stored entry, false when it stored none or after `ms`. Never rejects. */
  wait(key: string, ms: number): Promise<boolean>
}
