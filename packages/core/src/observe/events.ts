import type { BypassReason, NotStoredReason } from '../model/policy.js'
import type { CacheHealth, CacheStats } from '../metrics.js'
import type { BreakerState } from '../stores/breaker.js'

/**
 * The operations Corral reports to plugins and on `node:diagnostics_channel`. Each is one event
 * object, handed to a plugin's `before` when the operation begins and to its `after` (the same
 * object, its result fields filled in) when it ends, and published on the tracing channel
 * `corral:<op>` as its context.
 */
export type Operation = CacheEvent['op']

/** Every operation, in the order a request meets them. */
export const OPERATIONS: readonly Operation[] = Object.freeze(['lookup', 'fill', 'store', 'l2.read', 'l2.write', 'invalidate', 'revalidate'] as const)

/** What every event carries. */
interface EventBase {
  /** When the operation began (`performance.now()`, milliseconds). */
  readonly startedAt: number
  /** How long it took, in milliseconds; 0 until it ends. */
  durationMs: number
  /** What it failed with, when it failed (a store error, a failed refresh). */
  error?: unknown
}

/**
 * A request looked up in the cache: from its key to the decision (an L2 read and waiting for
 * another request's origin call are part of it). Requests that skip the cache end at once with
 * `result: 'bypass'`.
 */
export interface LookupEvent extends EventBase {
  readonly op: 'lookup'
  readonly method: string
  /** Path and query as the client sent them. */
  readonly url: string
  /** The route's `name` (its pattern on Fastify, `baseUrl + path` on an Express route), or '*'. */
  readonly route: string
  /**
   * A later middleware of the same request looked it up again (Express: a route's own middleware
   * after the app-wide one); count requests by the lookups without it.
   */
  readonly again: boolean
  /**
   * With `again`: the same request's earlier lookup, whose decision this one replaces. The request
   * got this lookup's result: count it, and take the replaced one back.
   */
  readonly replaces: LookupEvent | undefined
  /** The primary key; undefined for a request that skipped the cache before it had one. */
  key: string | undefined
  /** Set when it ends: answered from a fresh entry, from a stale one, sent to the origin, or skipping the cache. */
  result: 'hit' | 'stale' | 'miss' | 'bypass' | undefined
  /** Why it skipped the cache (with `result: 'bypass'`). */
  reason?: BypassReason | 'error' | undefined
  /** It waited for another request's origin call first. */
  collapsed: boolean
  /** The framework's request (Express `req`, `FastifyRequest`, Node's `IncomingMessage`). */
  readonly req: unknown
}

/** An origin call whose response may be stored: from the miss to the response's end (stored or not). */
export interface FillEvent extends EventBase {
  readonly op: 'fill'
  readonly method: string
  readonly url: string
  /** The route's name; an Express route's own middleware that takes over an app-wide fill renames it. */
  route: string
  /** The key the response is stored under (the variant's, for a varied response). */
  readonly key: string
  /** The replay of a background refresh or warming. */
  readonly background: boolean
  /** The framework's request whose response this is (for a background refresh, its replay). */
  readonly req: unknown
  /** Set when it ends: the origin's status (0 when no head was seen). */
  status: number
  stored: boolean
  /** Why it was not stored. */
  reason?: NotStoredReason | undefined
  /** Bytes of the body stored. */
  bytes: number
}

/** Entries written to the cache's store (L1, and with Redis, L1 then L2 in the background). */
export interface StoreEvent extends EventBase {
  readonly op: 'store'
  readonly route: string
  /** The key of the response entry written (a Vary marker may be written with it). */
  readonly key: string
  readonly bytes: number
  /** Set when it ends. */
  result: 'stored' | 'too-large' | 'invalidated' | 'declined' | 'error' | undefined
}

/** One read from or write to the shared store (L2), by `TieredStore`. */
export interface L2Event extends EventBase {
  readonly op: 'l2.read' | 'l2.write'
  readonly key: string
  /** Set when it ends: a read found an entry or not; a write stored it, or the store declined it. */
  result: 'hit' | 'miss' | 'stored' | 'declined' | 'error' | undefined
  /** Bytes of the body read or written (0 for a miss or a marker). */
  bytes: number
}

/** An invalidation: made here (`cache.invalidate`, a mutation route, an unsafe request) or by another instance. */
export interface InvalidateEvent extends EventBase {
  readonly op: 'invalidate'
  readonly source: 'local' | 'remote'
  readonly keys: readonly string[]
  readonly tags: readonly string[]
  readonly prefixes: readonly string[]
  /** Everything (a clear, or a flush that merged invalidations). */
  readonly all: boolean
  /** Entries were marked stale instead of removed. */
  readonly soft: boolean
  /** Set when a local invalidation ends: entries it removed (or softened). */
  removed: number
}

/** A background refresh: a stale hit's, an early refresh, or warming's. */
export interface RevalidateEvent extends EventBase {
  readonly op: 'revalidate'
  readonly url: string
  readonly route: string
  /** The key refreshed (undefined for warming, which refreshes whatever key the URL has). */
  readonly key: string | undefined
  readonly trigger: 'stale' | 'early' | 'warm'
  /** Set when it ends: stored a new entry; another instance holds the refresh; an invalidation landed meanwhile; failed. */
  result: 'stored' | 'held' | 'invalidated' | 'failed' | undefined
}

/** Every event, discriminated by `op`. */
export type CacheEvent = LookupEvent | FillEvent | StoreEvent | L2Event | InvalidateEvent | RevalidateEvent

/**
 * A plugin: `createCache({ plugins: [...] })`. `before` is called when an operation begins, `after`
 * when it ends, with the same event object (its result fields and `durationMs` set), so a plugin
 * may keep per-operation state in a WeakMap keyed by the event. Hooks run synchronously inside the
 * operation: keep them short. A hook that throws is reported (`onError`, a `CallbackError`) and
 * never fails the request or the operation. With no plugin (and no diagnostics subscriber), no
 * event is made.
 */
export interface CachePlugin {
  /** Named in the error reported when a hook throws. */
  readonly name: string
  /**
   * The operations whose events the plugin wants; the others are not made for it (a plugin that
   * leaves out `lookup` costs a hit from memory nothing).
   * @default every operation
   */
  readonly ops?: readonly Operation[]
  /** Called once, by `createCache`, with the cache the plugin serves (to read `stats()` and `health()`). */
  attach?(cache: ObservedCache): void
  before?(event: CacheEvent): void
  after?(event: CacheEvent): void
  /** Called by `cache.close()`. */
  close?(): void
}

/** A pino-compatible logger: what `createCache({ logger })` and the Fastify plugin's default use of it. */
export interface CorralLogger {
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** What a plugin may read of the cache it is attached to. */
export interface ObservedCache {
  readonly namespace: string
  stats(): CacheStats
  /** The shared store's circuit breaker, read without sending anything; undefined without one. */
  breakerState(): BreakerState | undefined
  /** See `cache.health()`. */
  health(): Promise<CacheHealth>
}
