import type { Entry } from '../model/entry.js'
import type { CorralError } from '../model/errors.js'
import type { NormalizedSelectors } from '../model/invalidation.js'
import type { L2Event } from '../observe/events.js'

import type { MaybePromise } from '../model/maybe-promise.js'

export type { MaybePromise }

/**
 * How an origin call ended, as the requests waiting for it see it:
 * - `stored`: the leader stored an entry; look again and it is there.
 * - `not-stored`: the leader's response cannot be shared (private, an error, too large, ...);
 *   each waiter asks the origin itself, side by side.
 * - `retry`: look again, and exactly one waiter takes the lead while the others wait for it: the
 *   leader took longer than `lockTimeout`, or its response was invalidated while it was produced.
 * - `failed`: the origin failed (a 5xx, or an error) where a stale entry could answer: a waiter
 *   that has one within its stale-if-error window serves it; others act as for `not-stored`.
 */
export type FlightOutcome = 'stored' | 'not-stored' | 'retry' | 'failed'

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
  /** Where a store reports its operations (a `TieredStore`: L2 reads and writes), when the cache observes them. */
  readonly observer?: StoreObserver
  /** How long an L2 read or write took, in ms, for `health()`'s L2 percentiles. */
  l2Latency?(ms: number): void
}

/** What a store may report its operations to: see `CachePlugin` for the events. */
export interface StoreObserver {
  /** Whether an event for `op` would reach anyone; make none when false. */
  watching(op: L2Event['op']): boolean
  begin<E extends L2Event>(event: E): E
  /** The operation went on asynchronously after `begin`. */
  suspend(event: L2Event): void
  /** The operation completed (after `suspend`). */
  end(event: L2Event): void
}

/** A store's own view of its health, for `cache.health()`. */
export interface StoreHealth {
  /** Which store: 'memory', 'redis', or 'tiered' (with `l1` and `l2`, each a StoreHealth). */
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

/**
 * A store in this process that answers at once (an L1, such as `MemoryStore`): a hit costs no
 * promise. `TieredStore` puts one in front of a `SharedStore`.
 */
export interface LocalStore extends CacheStore {
  get(key: string): Entry | undefined
  set(key: string, entry: Entry): SetResult
  delete(key: string): void
  invalidate(selectors: NormalizedSelectors, namespace: string): number
  clear(): void
  size(): { entries: number; bytes: number }
}

/**
 * A store that several processes share (an L2, such as `RedisStore`). Its `get` rejects when it
 * cannot answer (a `StoreUnavailableError` when it could not be asked at all), so that a tier in
 * front of it can fall back on what it holds; its `invalidate` resolves only once every process
 * sharing it has been told.
 */
export interface SharedStore extends CacheStore {
  get(key: string): Promise<Entry | undefined>
  fence(): Fence
  /** Calls `listener` with every invalidation another process makes, and with `ALL` when some may have been missed. */
  watch(listener: (selectors: NormalizedSelectors) => void): void
}
