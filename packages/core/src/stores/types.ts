import type { Entry } from '../entry.js'
import type { NormalizedSelectors } from '../invalidation.js'

export type MaybePromise<T> = T | Promise<T>

/**
 * Where entries live. Methods may answer synchronously (the in-memory store does, so a hit costs
 * no promise) or with a promise. A store never throws into a request: the cache catches, counts
 * and reports its errors, and treats them as a miss.
 */
export interface CacheStore {
  /** The entry under `key`, or undefined. Expired entries may be returned; the cache checks `expiresAt`. */
  get(key: string): MaybePromise<Entry | undefined>
  /** Stores `entry` until `entry.expiresAt`; answers false when the store declined it (e.g. too large). */
  set(key: string, entry: Entry): MaybePromise<boolean>
  delete(key: string): MaybePromise<void>
  /**
   * Removes every entry of `namespace` (keys start with `<namespace>:`) matching the selectors;
   * resolves to how many were removed.
   */
  invalidate(selectors: NormalizedSelectors, namespace: string): MaybePromise<number>
  /** Entry count and bytes held, where the store can tell. */
  size?(): { entries: number; bytes: number }
  clear(): MaybePromise<void>
  close?(): MaybePromise<void>
}
