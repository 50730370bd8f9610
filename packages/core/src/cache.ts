import type { IncomingHttpHeaders } from 'node:http'
import { parseDuration, type Duration } from './duration.js'
import { ageOf, type Entry, type ResponseEntry, type StoredHeaders } from './entry.js'
import { CallbackError, ConfigError, CorralError, StoreError } from './errors.js'
import { Fill, type FillHost } from './fill/fill.js'
import type { FillLock, LockGrant } from './fill/lock.js'
import { SingleFlight, type Flight } from './fill/single-flight.js'
import { isEmpty, normalizeSelectors, type InvalidateSelectors } from './invalidation.js'
import { KeyMemo } from './key-memo.js'
import { makePrimaryKey, makeVariantKey, type KeyMaterial, type KeyParts, type RequestView } from './key.js'
import { newCounters, type CacheStats } from './metrics.js'
import {
  DEFAULT_ROUTE_KEYS,
  rejectUnknown,
  resolveRoute,
  type DefaultRouteOptions,
  type ResolvedRoute,
  type RouteOptions,
} from './options.js'
import { isNotModified, requestBypassReason, type BypassReason, type NotStoredReason } from './policy.js'
import { MemoryStore } from './stores/memory.js'
import { RedisStore, type RedisStoreOptions } from './stores/redis.js'
import { TieredStore, type TieredStoreOptions } from './stores/tiered.js'
import type { CacheStore, Fence, MaybePromise, StoreHealth, StoreHost } from './stores/types.js'

/** Options of the Redis tier (`createCache({ redis, l2 })`). */
export interface L2Options extends Omit<RedisStoreOptions, 'redis' | 'signingKeys'>, TieredStoreOptions {}

/** Options of `createCache`. Route defaults given here apply to every route. */
export interface CacheOptions extends DefaultRouteOptions {
  /**
   * L1 byte budget (bodies, headers, bookkeeping). Ignored when `store` is given.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
  /**
   * Largest single entry kept in L1, in bytes. Ignored when `store` is given.
   * @default maxBytes / 16
   */
  maxEntryBytes?: number
  /**
   * Where entries live. Defaults to an in-process `MemoryStore` sized by `maxBytes`.
   * @default new MemoryStore({ maxBytes, maxEntryBytes })
   */
  store?: CacheStore
  /**
   * Turns on the shared L2 tier: a `redis://` URL, ioredis options, or your own ioredis `Redis`
   * or `Cluster` client (used as it is; see the core README for what Corral does with it).
   * Entries are then kept in L1 (sized by `maxBytes`) and in Redis.
   * @default undefined (L1 only)
   */
  redis?: RedisStoreOptions['redis']
  /**
   * Tuning of the Redis tier: `timeout` (deadline of a read, default 50 ms), `failureThreshold`
   * (default 5) and `cooldown` (default '1s') of the circuit breaker, `maxEntryBytes` (default
   * 8 MiB) and `l1Ttl` (default '10s'). Only with `redis`.
   * @default {}
   */
  l2?: L2Options
  /**
   * HMAC keys that sign entries in Redis: the first signs, all verify (rotate by putting the new
   * key first, then removing the old one once every instance has it). Only with `redis`.
   * @default [] (entries are not signed)
   */
  signingKeys?: readonly (string | Buffer)[]
  /**
   * Prefix of every key, so that several caches can share a store.
   * @default 'corral'
   */
  namespace?: string
  /**
   * Name of the response header that says what the cache did (HIT, MISS, BYPASS).
   * @default 'x-cache'
   */
  cacheStatusHeader?: string
  /**
   * Response headers read as tags and removed before the response reaches the client.
   * @default ['cache-tag', 'surrogate-key']
   */
  tagHeaders?: readonly string[]
  /**
   * Longest time a request waits for another request's origin call on the same key before it
   * goes to the origin itself.
   * @default '5s'
   */
  lockTimeout?: Duration
  /**
   * Clock in milliseconds, for tests.
   * @default Date.now
   */
  now?: () => number
  /**
   * Called with every error the cache swallows (a store failure, a route callback that threw).
   * Requests never fail because of the cache.
   * @default logs a warning, at most once every 10 seconds
   */
  onError?: (error: CorralError) => void
}

/** What an adapter should do with a request. */
export type Decision =
  | { readonly type: 'bypass'; readonly reason: BypassReason | 'error' }
  | {
      readonly type: 'hit'
      readonly entry: ResponseEntry
      /** 200-class status of the entry, or 304 when the request's validators match. */
      readonly status: number
      readonly headers: StoredHeaders
      /** Empty for a 304. */
      readonly body: Buffer
      /** Value of the Age header. */
      readonly age: string
    }
  /** Go to the origin; when `fill` is set, feed it the response so it can be stored. */
  | { readonly type: 'miss'; readonly fill: Fill | null }
  /** An app-wide lookup found an entry stored under route options: let the route's own middleware answer. */
  | { readonly type: 'defer' }

const CACHE_OPTION_KEYS = new Set([
  ...DEFAULT_ROUTE_KEYS,
  'maxBytes', 'maxEntryBytes', 'store', 'redis', 'l2', 'signingKeys', 'namespace', 'cacheStatusHeader', 'tagHeaders', 'lockTimeout', 'now', 'onError',
])
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** After this many waits a request stops waiting and goes to the origin (bounded coalescing). */
const MAX_WAITS = 2
/**
 * Hit-for-pass (as Varnish calls it): after a key's response could not be stored for a reason
 * that belongs to the response, its misses skip coalescing and the fleet lock for a while, so
 * concurrent requests for an uncacheable URL run in parallel instead of queueing behind one
 * another. They are still captured, and stored as soon as a response is storable.
 */
const PASS_MS = 10_000
const MAX_PASSES = 10_000
const PASS_REASONS: ReadonlySet<NotStoredReason> = new Set<NotStoredReason>([
  'status', 'no-store', 'private', 'no-cache', 'set-cookie', 'vary-star', 'partial', 'too-large', 'no-freshness', 'stale',
])

function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function'
}

/**
 * The framework-independent cache. Adapters translate a request into a `RequestView`, call
 * `handle`, and act on the decision; users call `invalidate`, `stats` and `close`.
 */
const BRAND: unique symbol = Symbol.for('@corral/core.Cache')

export class Cache implements FillHost {
  /**
   * True for a cache made by any copy of @corral/core. Adapters check with this rather than
   * `instanceof`, which fails when an app loads core both as ESM and as CommonJS.
   */
  static isCache(value: unknown): value is Cache {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true
  }

  private readonly [BRAND] = true
  /** Route defaults from `createCache`. */
  readonly defaults: ResolvedRoute
  /** Lower-case name of the cache status header. */
  readonly cacheStatusHeader: string
  readonly tagHeaders: readonly string[]
  readonly excludedHeaders: ReadonlySet<string>
  readonly now: () => number
  private readonly store: CacheStore
  private readonly namespace: string
  private readonly flights: SingleFlight
  private readonly lockTimeoutMs: number
  private readonly locks: FillLock | undefined
  private readonly keys = new KeyMemo(10_000)
  private readonly inflight = new Set<Fill>()
  /** Primary keys in hit-for-pass, and until when. */
  private readonly passes = new Map<string, number>()
  private readonly counters = newCounters()
  private readonly notStored: Partial<Record<NotStoredReason, number>> = {}
  private readonly onError: (error: CorralError) => void
  private closed = false

  constructor(options: CacheOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new ConfigError('expected createCache options to be an object')
    rejectUnknown(options, CACHE_OPTION_KEYS, 'options.')
    this.defaults = resolveRoute(pickDefaults(options), undefined, 'options.', false, DEFAULT_ROUTE_KEYS)
    const ns = options.namespace ?? 'corral'
    if (typeof ns !== 'string' || !/^[\w.-]{1,64}$/.test(ns)) {
      throw new ConfigError(`expected options.namespace to be 1-64 letters, digits, '_', '.' or '-', got ${String(ns)}`)
    }
    this.namespace = ns
    this.cacheStatusHeader = headerName(options.cacheStatusHeader ?? 'x-cache', 'options.cacheStatusHeader')
    const tagHeaders = options.tagHeaders ?? ['cache-tag', 'surrogate-key']
    if (!Array.isArray(tagHeaders)) throw new ConfigError('expected options.tagHeaders to be an array of header names')
    this.tagHeaders = tagHeaders.map((h, i) => headerName(h, `options.tagHeaders[${i}]`))
    this.excludedHeaders = new Set([this.cacheStatusHeader, ...this.tagHeaders])
    this.lockTimeoutMs = parseDuration(options.lockTimeout ?? 5000, 'options.lockTimeout')
    this.flights = new SingleFlight(this.lockTimeoutMs)
    if (options.now !== undefined && typeof options.now !== 'function') throw new ConfigError('expected options.now to be a function returning milliseconds')
    this.now = options.now ?? Date.now
    if (options.onError !== undefined && typeof options.onError !== 'function') throw new ConfigError('expected options.onError to be a function')
    this.onError = options.onError ?? rateLimitedWarning()
    if (options.store !== undefined) {
      if (options.maxBytes !== undefined || options.maxEntryBytes !== undefined) {
        throw new ConfigError('options.maxBytes and options.maxEntryBytes size the default store; configure the store you pass in options.store instead')
      }
      if (options.redis !== undefined) throw new ConfigError('options.redis and options.store cannot both be set; pass a TieredStore as options.store instead')
      this.store = options.store
    } else {
      const l1 = new MemoryStore({ maxBytes: options.maxBytes, maxEntryBytes: options.maxEntryBytes }, 'options.')
      this.store = options.redis === undefined ? l1 : tiered(l1, options)
    }
    if (options.redis === undefined && (options.l2 !== undefined || options.signingKeys !== undefined)) {
      throw new ConfigError('options.l2 and options.signingKeys configure the Redis tier; set options.redis too')
    }
    this.store.attach?.(this.storeHost())
    this.locks = this.store.locks
  }

  /**
   * Validates route options over the app defaults (or over `base`). Adapters call this once per
   * route at start-up, so bad options throw before the first request. `prefix` names the options
   * in error messages. `routeLevel` is false for app-wide middleware (Express `app.use`), whose
   * lookups defer to entries stored under a route's own options.
   */
  route<Req>(
    options: RouteOptions<Req> | undefined,
    prefix: string,
    base?: ResolvedRoute<Req>,
    routeLevel = true,
  ): ResolvedRoute<Req> {
    return resolveRoute(options, base ?? (this.defaults as ResolvedRoute<Req>), prefix, routeLevel)
  }

  /**
   * Decides what to do with a request. Answers synchronously when the store does (the in-memory
   * default), else with a promise. `req` is the framework's request, passed to route callbacks.
   * `adopt` is a fill an earlier (app-wide) lookup started for this request: it is kept if the
   * route's key is the same, else abandoned.
   */
  handle<Req>(view: RequestView, route: ResolvedRoute<Req>, req: Req, adopt?: Fill | null): Decision | Promise<Decision> {
    if (this.closed) return this.bypass('error')
    const reason = requestBypassReason(view, route as ResolvedRoute)
    if (reason !== undefined) {
      adopt?.abandon('aborted')
      return this.bypass(reason)
    }
    let custom: KeyMaterial | undefined
    try {
      if (route.bypass?.(req)) {
        adopt?.abandon('aborted')
        return this.bypass('route')
      }
      custom = route.key?.(req)
    } catch (err) {
      adopt?.abandon('error')
      this.report(new CallbackError('a route bypass or key function threw; the request skips the cache', err))
      return this.bypass('error')
    }
    const parts = this.keyOf(view, route as ResolvedRoute, custom)
    if (adopt != null && !adopt.settled) {
      if (adopt.parts.key === parts.key) {
        adopt.route = route as ResolvedRoute
        adopt.req = req
        return { type: 'miss', fill: adopt }
      }
      adopt.abandon('aborted')
    }
    return this.lookup(view, route as ResolvedRoute, req, parts, 0)
  }

  /**
   * Removes matching entries. The in-memory part is done before this returns; the promise settles
   * when every store is done. A fill under way for a matching request is not stored.
   */
  invalidate(selectors: InvalidateSelectors): Promise<number> {
    let sel
    try {
      sel = normalizeSelectors(selectors)
    } catch (err) {
      return Promise.reject(err)
    }
    if (isEmpty(sel)) return Promise.resolve(0)
    for (const fill of this.inflight) fill.invalidated(sel)
    const count = (n: number) => {
      this.counters.invalidated += n
      return n
    }
    try {
      const r = this.store.invalidate(sel, this.namespace)
      if (!isPromise(r)) return Promise.resolve(count(r))
      return r.then(count, (err: unknown) => {
        this.report(new StoreError('invalidation failed in the store', err))
        return 0
      })
    } catch (err) {
      this.report(new StoreError('invalidation failed in the store', err))
      return Promise.resolve(0)
    }
  }

  stats(): CacheStats {
    const size = this.store.size?.() ?? { entries: 0, bytes: 0 }
    return {
      ...this.counters,
      notStored: { ...this.notStored },
      entries: size.entries,
      bytes: size.bytes,
      inFlight: this.flights.size,
    }
  }

  /**
   * The cache's state for a health route or a load balancer: `'ok'`, `'degraded'` when the store
   * reports a problem (Redis down or slow: the cache answers from L1 and the origin), or
   * `'closed'`. For Redis it includes the breaker, the last error and a write-then-read round trip.
   */
  async health(): Promise<CacheHealth> {
    const size = this.store.size?.() ?? { entries: 0, bytes: 0 }
    let store: StoreHealth | null = null
    if (!this.closed && this.store.health !== undefined) {
      try {
        store = await this.store.health()
      } catch (err) {
        store = { kind: 'unknown', ok: false, error: err instanceof Error ? err.message : String(err) }
      }
    }
    const status = this.closed ? 'closed' : store !== null && !store.ok ? 'degraded' : 'ok'
    return { status, entries: size.entries, bytes: size.bytes, inFlight: this.flights.size, store }
  }

  /** Drops every entry. */
  async clear(): Promise<void> {
    await this.store.clear()
  }

  /** Stops answering from the cache (requests pass through) and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const fill of this.inflight) fill.abandon('aborted')
    await this.store.close?.()
  }

  /** Reports an error the cache swallowed (adapters use it for callback failures). */
  report(error: CorralError): void {
    this.counters.errors++
    try {
      this.onError(error)
    } catch {
      // an onError that throws must not break a request either
    }
  }

  private storeHost(): StoreHost {
    return {
      namespace: this.namespace,
      now: this.now,
      report: (error) => this.report(error),
      rejected: () => {
        this.counters.rejected++
      },
      remoteInvalidation: (sel) => {
        for (const fill of this.inflight) fill.invalidated(sel)
      },
    }
  }

  // ---- FillHost --------------------------------------------------------------------------

  peek(key: string): Entry | undefined {
    try {
      const e = this.store.get(key)
      return isPromise(e) ? undefined : e
    } catch {
      return undefined
    }
  }

  write(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined): boolean | Promise<boolean> {
    const failed = (err: unknown) => {
      this.report(new StoreError('writing an entry failed', err))
      return false
    }
    try {
      // Written in order: the response entry comes last, so it only counts when it was kept.
      let pending: Promise<boolean>[] | undefined
      let kept = true
      for (const [key, entry] of writes) {
        const r = this.store.set(key, entry, fence)
        if (isPromise(r)) (pending ??= []).push(r)
        else kept = r
      }
      if (pending === undefined) return kept
      return Promise.all(pending).then((all) => kept && all[all.length - 1] !== false, failed)
    } catch (err) {
      return failed(err)
    }
  }

  resolveTags(route: ResolvedRoute, req: unknown): readonly string[] | undefined {
    if (typeof route.tags !== 'function') return route.tags ?? NO_TAGS
    try {
      const tags = route.tags(req)
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
        throw new TypeError('tags function must return an array of strings')
      }
      return tags
    } catch (err) {
      this.report(new CallbackError('a route tags function threw; the response is not stored', err))
      return undefined
    }
  }

  settled(fill: Fill, outcome: { stored: true } | { stored: false; reason: NotStoredReason }): void {
    this.inflight.delete(fill)
    if (fill.grant !== undefined) this.locks?.release(fill.grant, outcome.stored)
    const key = fill.parts.key
    if (outcome.stored) {
      this.counters.stored++
      if (this.passes.size > 0) this.passes.delete(key)
      return
    }
    this.notStored[outcome.reason] = (this.notStored[outcome.reason] ?? 0) + 1
    if (PASS_REASONS.has(outcome.reason)) {
      this.passes.delete(key)
      this.passes.set(key, this.now() + PASS_MS)
      if (this.passes.size > MAX_PASSES) this.passes.delete(this.passes.keys().next().value as string)
    }
  }

  // ---- read path -------------------------------------------------------------------------

  private keyOf(view: RequestView, route: ResolvedRoute, custom: KeyMaterial | undefined): KeyParts {
    const h = view.headers
    if (custom !== undefined || h['x-forwarded-host'] !== undefined || h['x-forwarded-proto'] !== undefined || h.forwarded !== undefined) {
      return makePrimaryKey(this.namespace, view, route.query, custom)
    }
    // GET and HEAD share a key, and no other method gets here: host and URL decide it.
    const host = h.host ?? ''
    let parts = this.keys.get(route, host, view.url)
    if (parts === undefined) {
      parts = makePrimaryKey(this.namespace, view, route.query, undefined)
      this.keys.set(route, host, view.url, parts)
    }
    return parts
  }

  private inPass(key: string): boolean {
    const until = this.passes.get(key)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.passes.delete(key)
    return false
  }

  private fence(): Fence | undefined {
    if (this.store.fence === undefined) return undefined
    try {
      return this.store.fence().catch(() => undefined)
    } catch {
      return undefined
    }
  }

  private bypass(reason: BypassReason | 'error'): Decision {
    this.counters.bypassed++
    return { type: 'bypass', reason }
  }

  private get(key: string): MaybePromise<Entry | undefined> {
    try {
      const r = this.store.get(key)
      if (!isPromise(r)) return r
      return r.catch((err: unknown) => {
        this.report(new StoreError('reading an entry failed; treated as a miss', err))
        return undefined
      })
    } catch (err) {
      this.report(new StoreError('reading an entry failed; treated as a miss', err))
      return undefined
    }
  }

  private lookup(view: RequestView, route: ResolvedRoute, req: unknown, parts: KeyParts, waits: number): Decision | Promise<Decision> {
    const got = this.get(parts.key)
    if (isPromise(got)) return got.then((e) => this.afterPrimary(view, route, req, parts, waits, e))
    return this.afterPrimary(view, route, req, parts, waits, got)
  }

  private afterPrimary(
    view: RequestView,
    route: ResolvedRoute,
    req: unknown,
    parts: KeyParts,
    waits: number,
    e: Entry | undefined,
  ): Decision | Promise<Decision> {
    if (e?.kind !== 'vary' || e.expiresAt <= this.now()) return this.found(view, route, req, parts, waits, parts.key, e)
    // The response varies: the primary entry names the request headers that select the variant.
    const variantKey = makeVariantKey(parts.key, e.names, view.headers)
    const got = this.get(variantKey)
    if (isPromise(got)) return got.then((v) => this.found(view, route, req, parts, waits, variantKey, v))
    return this.found(view, route, req, parts, waits, variantKey, got)
  }

  private found(
    view: RequestView,
    route: ResolvedRoute,
    req: unknown,
    parts: KeyParts,
    waits: number,
    fillKey: string,
    e: Entry | undefined,
  ): Decision | Promise<Decision> {
    if (e?.kind === 'response' && e.expiresAt > this.now()) {
      if (e.routeLevel && !route.routeLevel) return { type: 'defer' }
      this.counters.hits++
      return this.hit(e, view.headers)
    }
    if (this.passes.size > 0 && this.inPass(parts.key)) return this.miss(view, route, req, parts, undefined, waits)
    const flight = this.flights.get(fillKey)
    if (flight !== undefined && waits < MAX_WAITS) {
      this.counters.coalesced++
      return flight.wait().then((stored) =>
        stored ? this.lookup(view, route, req, parts, waits + 1) : this.miss(view, route, req, parts, undefined, waits + 1),
      )
    }
    return this.miss(view, route, req, parts, waits < MAX_WAITS ? fillKey : undefined, waits)
  }

  /** Go to the origin, leading a flight on `fillKey` when given (others will wait for us). */
  private miss(
    view: RequestView,
    route: ResolvedRoute,
    req: unknown,
    parts: KeyParts,
    fillKey: string | undefined,
    waits = MAX_WAITS,
  ): Decision | Promise<Decision> {
    // A HEAD is answered from the GET entry but never creates one.
    if (view.method === 'HEAD') return this.startFill(view, route, req, parts, undefined, undefined)
    const flight = fillKey === undefined ? undefined : this.flights.lead(fillKey)
    if (flight === undefined || fillKey === undefined || this.locks === undefined) {
      return this.startFill(view, route, req, parts, flight, undefined)
    }
    return this.leadFleet(view, route, req, parts, fillKey, flight, waits)
  }

  /**
   * This request leads its instance; ask the shared lock whether it also leads the fleet. If
   * another instance is calling the origin, wait to be told the entry landed, then look again
   * (this instance's waiters too). If the lock cannot be asked (Redis away), lead anyway.
   */
  private async leadFleet(
    view: RequestView,
    route: ResolvedRoute,
    req: unknown,
    parts: KeyParts,
    fillKey: string,
    flight: Flight,
    waits: number,
  ): Promise<Decision> {
    const locks = this.locks as FillLock
    const grant = await locks.acquire(fillKey, this.lockTimeoutMs)
    if (grant.state !== 'held' || waits >= MAX_WAITS) {
      return this.startFill(view, route, req, parts, flight, grant.state === 'acquired' ? grant : undefined)
    }
    this.counters.coalesced++
    const stored = await locks.wait(fillKey, this.lockTimeoutMs)
    flight.release(stored)
    return this.lookup(view, route, req, parts, waits + 1)
  }

  private startFill(
    view: RequestView,
    route: ResolvedRoute,
    req: unknown,
    parts: KeyParts,
    flight: Flight | undefined,
    grant: (LockGrant & { state: 'acquired' }) | undefined,
  ): Decision {
    this.counters.misses++
    if (view.method === 'HEAD') return { type: 'miss', fill: null }
    // The origin must answer in full so the response can be stored (a 304 cannot, and would send
    // every waiter to the origin); a 200 is a valid answer to a conditional request.
    if (flight !== undefined) hideConditionals(view.headers)
    const fill = new Fill(this, parts, view, route, req, flight, grant, this.fence())
    this.inflight.add(fill)
    return { type: 'miss', fill }
  }

  private hit(e: ResponseEntry, requestHeaders: IncomingHttpHeaders): Decision {
    const age = String(ageOf(e, this.now()))
    if (isNotModified(requestHeaders, e.etag, e.lastModified)) {
      return { type: 'hit', entry: e, status: 304, headers: e.notModifiedHeaders, body: EMPTY, age }
    }
    return { type: 'hit', entry: e, status: e.status, headers: e.headers, body: e.body, age }
  }
}

const EMPTY = Buffer.alloc(0)
/** Shared by every entry stored without tags. */
const NO_TAGS: readonly string[] = Object.freeze([])

function hideConditionals(headers: IncomingHttpHeaders): void {
  if (headers['if-none-match'] !== undefined) delete headers['if-none-match']
  if (headers['if-modified-since'] !== undefined) delete headers['if-modified-since']
}

function pickDefaults(o: CacheOptions): DefaultRouteOptions {
  const out: Record<string, unknown> = {}
  for (const k of DEFAULT_ROUTE_KEYS) if (o[k as keyof CacheOptions] !== undefined) out[k] = o[k as keyof CacheOptions]
  return out as DefaultRouteOptions
}

function headerName(v: unknown, option: string): string {
  if (typeof v !== 'string' || !HEADER_NAME.test(v)) throw new ConfigError(`expected ${option} to be an HTTP header name, got ${String(v)}`)
  return v.toLowerCase()
}

function rateLimitedWarning(): (error: CorralError) => void {
  let last = -Infinity
  return (error) => {
    const t = Date.now()
    if (t - last < 10_000) return
    last = t
    process.emitWarning(`${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}`, {
      type: 'CorralWarning',
      code: error.code,
    })
  }
}

/** What `cache.health()` answers. */
export interface CacheHealth {
  readonly status: 'ok' | 'degraded' | 'closed'
  /** Entries and bytes in this process (L1). */
  readonly entries: number
  readonly bytes: number
  readonly inFlight: number
  /** The store's own report (for Redis: connection, breaker, last error, round trip), or null. */
  readonly store: StoreHealth | null
}

function tiered(l1: MemoryStore, o: CacheOptions): TieredStore {
  if (o.l2 !== undefined && (typeof o.l2 !== 'object' || o.l2 === null)) throw new ConfigError('expected options.l2 to be an object')
  const { l1Ttl, ...l2 } = o.l2 ?? {}
  for (const k of ['redis', 'signingKeys']) if (k in l2) throw new ConfigError(`unknown option options.l2.${k} (set options.${k})`)
  const redis = new RedisStore({ ...l2, redis: o.redis as RedisStoreOptions['redis'], signingKeys: o.signingKeys }, 'options.l2.', 'options.')
  return new TieredStore(l1, redis, l1Ttl === undefined ? {} : { l1Ttl }, 'options.l2.')
}

/** Creates a cache. With no `store`, entries live in an in-process LRU bounded by `maxBytes`. */
export function createCache(options?: CacheOptions): Cache {
  return new Cache(options)
}
