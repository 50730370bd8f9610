import type { Entry } from '../entry.js'
import type { CorralError } from '../errors.js'
import type { FillLock } from '../fill/lock.js'
import type { NormalizedSelectors } from '../invalidation.js'

export type MaybePromise<T> = T | Promise<T>

/**
 * What `CacheStore.set` answers: `true` when the entry was kept; `'too-large'` when it is over
 * what the store takes for one entry; `'invalidated'` when an invalidation made since the fill
 * began undid it; `false` when the store chose not to keep it for another reason. A store that
 * failed throws or rejects (a `StoreUnavailableError` when it could not be asked at all).
 */
export type SetResult = boolean | 'too-large' | 'invalidated'

/**
 * Where a shared store's invalidation log stood when a fill began; undefined when the store could
 * not tell. A write given a fence is undone if an invalidation matching it was logged since.
 */
export type Fence = Promise<string | undefined>

/** What the cache gives the store it owns (see `CacheStore.attach`). */
export interface StoreHost {
  /** The cache's namespace: every key the store sees starts with `<namespace>:`. */
  readonly namespace: string
  now(): number
  /** Reports an error the store swallowed (counted in `stats().errors`, passed to `onError`). */
  report(error: CorralError): void
  /** Counts an entry the store refused to serve (failed to decode or verify). Not an error: key rotation causes these too. */
  rejected(): void
  /** An invalidation made by another instance: in-flight fills that match must not be stored. */
  remoteInvalidation(selectors: NormalizedSelectors): void
}

/** A store's own view of its health, for `cache.health()`. */
export interface StoreHealth {
  /** Which tier: 'memory', 'redis', or 'tiered' (with `tiers`). */
  readonly kind: string
  /** False when the store cannot currently serve or store entries. */
  readonly ok: boolean
  readonly [detail: string]: unknown
}

/**
 * Where entries live. Methods may answer synchronously (the in-memory store does, so a hit costs
 * no promise) or with a promise. A store never throws into a request: the cache catches, counts
 * and reports its errors, and treats them as a miss.
 */
export interface CacheStore {
  /** The entry under `key`, or undefined. Expired entries may be returned; the cache checks `expiresAt`. */
  get(key: string): MaybePromise<Entry | undefined>
  /**
   * Stores `entry` until `entry.expiresAt` (see `SetResult`). `fence` comes from `fence()` when
   * the fill began (stores shared across processes).
   */
  set(key: string, entry: Entry, fence?: Fence): MaybePromise<SetResult>
  /**
   * Marks the start of a fill, for stores shared across processes: an invalidation made by any
   * process after this point must win over the fill's write, even if its message is lost.
   */
  fence?(): Fence
  delete(key: string): MaybePromise<void>
  /**
   * Removes every entry of `namespace` (keys start with `<namespace>:`) matching the selectors;
   * resolves to how many were removed. A shared store resolves only once the invalidation has
   * taken effect for every process using it, and rejects otherwise.
   */
  invalidate(selectors: NormalizedSelectors, namespace: string): MaybePromise<number>
  /** Entry count and bytes held in this process, where the store can tell. */
  size?(): { entries: number; bytes: number }
  clear(): MaybePromise<void>
  close?(): MaybePromise<void>
  /** Called once by the cache that owns the store, before any other method. */
  attach?(host: StoreHost): void
  /** A lock shared by every instance using the store, set once `attach` has run (stores shared across processes). */
  readonly locks?: FillLock
  /** Current state, including a write-then-read round trip for remote stores. */
  health?(): Promise<StoreHealth>
}
