import type { IncomingHttpHeaders } from 'node:http'
import { resolveCacheOptions, type CacheOptions } from './cache-options.js'
import { describeValue } from './duration.js'
import { ageOf, type Entry, type ResponseEntry, type StoredHeaders } from './entry.js'
import { CallbackError, ConfigError, CorralError, InternalError, StoreError, StoreUnavailableError } from './errors.js'
import { Fill, flightOutcome, type FillHost, type FillOutcome } from './fill/fill.js'
import type { FillLock, LockGrant } from './fill/lock.js'
import { PassTable } from './fill/pass.js'
import { SingleFlight, type Flight, type FlightOutcome } from './fill/single-flight.js'
import {
  ALL,
  isEmpty,
  normalizeSelectors,
  type InvalidateSelectors,
  type NormalizedSelectors,
} from './invalidation.js'
import { KeyMemo } from './key-memo.js'
import { assertKeyMaterial, makePrimaryKey, makeVariantKey, type KeyMaterial, type KeyParts, type RequestView } from './key.js'
import { newCounters, type CacheStats } from './metrics.js'
import { resolveRoute, type ResolvedRoute, type RouteOptions } from './options.js'
import { isNotModified, requestBypassReason, type BypassReason, type NotStoredReason } from './policy.js'
import type { CacheStore, Fence, MaybePromise, SetResult, StoreHealth, StoreHost } from './stores/types.js'

export type { CacheOptions, L2Options } from './cache-options.js'

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

/**
 * What a mutation route invalidates after a 2xx response: selectors, or a function of the request
 * that returns them (or a promise of them).
 */
export type InvalidateSpec<Req> = InvalidateSelectors | ((req: Req) => InvalidateSelectors | Promise<InvalidateSelectors>)

/** An `InvalidateSpec` validated by `Cache.mutation`. */
export type CompiledInvalidation<Req> = (req: Req) => MaybePromise<InvalidateSelectors>

/** After this many waits a request stops waiting and goes to the origin (bounded coalescing). */
const MAX_WAITS = 2
/** How long a key stays in hit-for-pass after a response that could not be shared. */
const PASS_MS = 10_000
/** Reasons that belong to the response, so the next one will most likely be the same. */
const PASS_REASONS: ReadonlySet<NotStoredReason> = new Set<NotStoredReason>([
  'status', 'no-store', 'private', 'no-cache', 'set-cookie', 'vary-star', 'partial', 'too-large', 'no-freshness', 'stale',
  'too-many-tags', 'tag-too-long',
])

function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function'
}

/** One request on its way through the read path. */
interface Lookup {
  readonly view: RequestView
  readonly route: ResolvedRoute
  readonly req: unknown
  readonly parts: KeyParts
  /** Leaders this request has waited for so far. */
  waits: number
}

const BRAND: unique symbol = Symbol.for('@corral/core.Cache')

/**
 * The framework-independent cache. Adapters translate a request into a `RequestView`, call
 * `handle`, and act on the decision; users call `invalidate`, `stats` and `close`.
 */
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
  readonly maxTags: number
  readonly maxTagLength: number
  readonly now: () => number
  private readonly store: CacheStore
  /** Prefix of every key this cache writes. */
  readonly namespace: string
  private readonly flights: SingleFlight
  private readonly lockTimeoutMs: number
  private readonly locks: FillLock | undefined
  private readonly keys: KeyMemo
  private readonly passes: PassTable
  private readonly inflight = new Set<Fill>()
  /** Fills that took longer than lockTimeout and gave up their fleet lock already. */
  private readonly overran = new WeakSet<Fill>()
  private readonly counters = newCounters()
  private readonly notStored: Partial<Record<NotStoredReason, number>> = {}
  private readonly onError: (error: CorralError) => void
  private closed = false

  constructor(options: CacheOptions = {}) {
    const o = resolveCacheOptions(options)
    this.defaults = o.defaults
    this.namespace = o.namespace
    this.cacheStatusHeader = o.cacheStatusHeader
    this.tagHeaders = o.tagHeaders
    this.excludedHeaders = new Set([this.cacheStatusHeader, ...this.tagHeaders])
    this.maxTags = o.maxTags
    this.maxTagLength = o.maxTagLength
    this.lockTimeoutMs = o.lockTimeoutMs
    // A flight nobody armed (its leader still asking the fleet lock) ends after two lock lifetimes.
    this.flights = new SingleFlight(2 * o.lockTimeoutMs)
    this.now = o.now
    this.onError = o.onError
    this.store = o.store
    this.keys = new KeyMemo(o.memoBytes)
    this.passes = new PassTable(o.passBytes, PASS_MS)
    this.store.attach?.(this.storeHost())
    this.locks = this.store.locks
  }

  /**
   * Validates route options over the app defaults (or over `base`). Adapters call this once per
   * route at start-up, so bad options throw before the first request. `prefix` names the options
   * in error messages. `routeLevel` is false for app-wide middleware (Express `app.use`), whose
   * lookups defer to entries stored under a route's own options.
   */
  route<Req>(options: RouteOptions<Req> | undefined, prefix: string, base?: ResolvedRoute<Req>, routeLevel = true): ResolvedRoute<Req> {
    const route = resolveRoute(options, base ?? (this.defaults as ResolvedRoute<Req>), prefix, routeLevel)
    if (Array.isArray(route.tags)) {
      if (route.tags.length > this.maxTags) throw new ConfigError(`expected ${prefix}tags to hold at most ${this.maxTags} tags (options.maxTags), got ${route.tags.length}`)
      const long = route.tags.find((t) => t.length > this.maxTagLength)
      if (long !== undefined) throw new ConfigError(`expected ${prefix}tags to be at most ${this.maxTagLength} characters long (options.maxTagLength), got '${long.slice(0, 40)}…'`)
    }
    return route
  }

  /**
   * Validates what a mutation route invalidates, at start-up: static selectors are checked now (a
   * typo throws a ConfigError naming `option`); a function is called per request by `afterMutation`.
   */
  mutation<Req>(spec: unknown, option: string): CompiledInvalidation<Req> {
    if (typeof spec === 'function') return spec as CompiledInvalidation<Req>
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new ConfigError(`expected ${option} to be selectors ({ keys, tags, prefixes }) or a function of the request returning them, got ${describeValue(spec)}`)
    }
    try {
      normalizeSelectors(spec as InvalidateSelectors)
    } catch (err) {
      throw new ConfigError(`${option}: ${(err as Error).message}`)
    }
    const selectors = spec as InvalidateSelectors
    return () => selectors
  }

  /**
   * For mutation routes, on both adapters: when `status` is a 2xx, evaluates `select` (awaiting it
   * if it returns a promise) and invalidates, resolving once the invalidation has taken effect;
   * undefined when there is nothing to do. Never rejects: a selector function that fails is
   * reported as a CallbackError, an invalidation the store could not make as a StoreError.
   */
  afterMutation<Req>(status: number, select: CompiledInvalidation<Req>, req: Req): Promise<void> | undefined {
    if (status < 200 || status > 299) return undefined
    let selectors: MaybePromise<InvalidateSelectors>
    try {
      selectors = select(req)
    } catch (err) {
      this.report(new CallbackError('an invalidation selector function threw; nothing was invalidated', err))
      return Promise.resolve()
    }
    return Promise.resolve(selectors)
      .then(
        (sel) => this.invalidate(sel),
        (err: unknown) => {
          throw new CallbackError('an invalidation selector function rejected; nothing was invalidated', err)
        },
      )
      .then(
        () => undefined,
        (err: unknown) => this.report(err instanceof CorralError ? err : new CallbackError('invalidation failed', err)),
      )
  }

  /**
   * Decides what to do with a request. Answers synchronously when the store does (the in-memory
   * default), else with a promise. Never throws and never rejects: whatever fails (a route
   * callback, a store, Corral itself) is reported and the request bypasses the cache. `req` is
   * the framework's request, passed to route callbacks. `adopt` is a fill an earlier (app-wide)
   * lookup started for this request: it is kept if the route's key is the same, else abandoned.
   */
  handle<Req>(view: RequestView, route: ResolvedRoute<Req>, req: Req, adopt?: Fill | null): Decision | Promise<Decision> {
    try {
      const d = this.decide(view, route as ResolvedRoute, req, adopt ?? undefined)
      if (!isPromise(d)) return d
      return d.catch((err: unknown) => this.broken(err, adopt))
    } catch (err) {
      return this.broken(err, adopt)
    }
  }

  /**
   * Removes matching entries. The in-memory part is done before this returns; the promise resolves
   * once every store (and, with Redis, every instance) has done its part, and rejects with a
   * StoreError when the store could not (Redis then makes it when it answers again). A fill under
   * way for a matching request is not stored.
   */
  invalidate(selectors: InvalidateSelectors): Promise<number> {
    let sel: NormalizedSelectors
    try {
      sel = normalizeSelectors(selectors)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.invalidateNormalized(sel)
  }

  stats(): CacheStats {
    const size = this.store.size?.() ?? { entries: 0, bytes: 0 }
    return {
      ...this.counters,
      notStored: { ...this.notStored },
      entries: size.entries,
      bytes: size.bytes,
      overheadBytes: this.keys.bytes + this.passes.bytes,
      inFlight: this.flights.size,
    }
  }

  /**
   * The cache's state for a health route or a load balancer: `'ok'`, `'degraded'` when the store
   * reports a problem (Redis down or slow, or an eviction policy that could undo invalidations:
   * the cache answers from L1 and the origin), or `'closed'`. For Redis it includes the breaker,
   * the last error, the eviction policy and a write-then-read round trip.
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

  /** Drops every entry (with Redis: on every instance; rejects while Redis is away, and runs when it answers). */
  async clear(): Promise<void> {
    for (const fill of this.inflight) fill.invalidated(ALL)
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

  // ---- FillHost --------------------------------------------------------------------------

  peek(key: string): Entry | undefined {
    try {
      const e = this.store.get(key)
      return isPromise(e) ? undefined : e
    } catch {
      return undefined
    }
  }

  write(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined): SetResult | Promise<SetResult> {
    // Written in order: the response entry comes last, and its verdict is the fill's.
    const pending: Promise<SetResult>[] = []
    let verdict: SetResult | Promise<SetResult> = true
    for (const [key, entry] of writes) {
      verdict = this.store.set(key, entry, fence)
      if (isPromise(verdict)) pending.push(verdict)
    }
    if (pending.length === 0) return verdict
    const last = verdict
    return Promise.all(pending).then(() => last)
  }

  resolveTags(route: ResolvedRoute, req: unknown): readonly string[] | undefined {
    if (typeof route.tags !== 'function') return route.tags ?? NO_TAGS
    try {
      const tags = route.tags(req)
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
        throw new TypeError(`a tags function must return an array of strings, got ${describeValue(tags)}`)
      }
      return tags.filter((t) => t.length > 0)
    } catch (err) {
      this.report(new CallbackError('a route tags function threw; the response is not stored', err))
      return undefined
    }
  }

  failed(err: unknown, where: 'store' | 'internal'): void {
    // Redis being away is what health() reports; a fill it could not store is counted, not news.
    if (err instanceof StoreUnavailableError) return
    if (err instanceof CorralError) return this.report(err)
    this.report(where === 'store' ? new StoreError('writing an entry failed; it is not stored', err) : new InternalError('storing a response failed; it is not stored', err))
  }

  settled(fill: Fill, outcome: FillOutcome): void {
    this.inflight.delete(fill)
    if (fill.grant !== undefined && !this.overran.has(fill)) this.locks?.release(fill.grant, flightOutcome(outcome))
    const key = fill.parts.key
    if (outcome.stored) {
      this.counters.stored++
      this.passes.delete(key)
      return
    }
    this.notStored[outcome.reason] = (this.notStored[outcome.reason] ?? 0) + 1
    if (PASS_REASONS.has(outcome.reason)) this.passes.add(key, this.now())
  }

  // ---- read path -------------------------------------------------------------------------

  private decide(view: RequestView, route: ResolvedRoute, req: unknown, adopt: Fill | undefined): Decision | Promise<Decision> {
    if (this.closed) {
      adopt?.abandon('aborted')
      return this.bypass('error')
    }
    const reason = requestBypassReason(view, route)
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
      const material: unknown = route.key?.(req)
      if (material !== undefined) assertKeyMaterial(material)
      custom = material
    } catch (err) {
      adopt?.abandon('error')
      this.report(new CallbackError('a route bypass or key function failed; the request skips the cache', err))
      return this.bypass('error')
    }
    const parts = this.keyOf(view, route, custom)
    if (adopt !== undefined && !adopt.settled) {
      if (adopt.parts.key === parts.key) {
        adopt.route = route
        adopt.req = req
        return { type: 'miss', fill: adopt }
      }
      adopt.abandon('aborted')
    }
    return this.lookup({ view, route, req, parts, waits: 0 })
  }

  /** Corral itself failed: report it, give up the adopted fill, and let the request through. */
  private broken(err: unknown, adopt: Fill | null | undefined): Decision {
    adopt?.abandon('error')
    this.report(err instanceof CorralError ? err : new InternalError('deciding on a request failed; it skips the cache', err))
    return this.bypass('error')
  }

  private async invalidateNormalized(sel: NormalizedSelectors): Promise<number> {
    if (isEmpty(sel)) return 0
    for (const fill of this.inflight) fill.invalidated(sel)
    let removed: number
    try {
      removed = await this.store.invalidate(sel, this.namespace)
    } catch (err) {
      throw err instanceof StoreError ? err : new StoreError('invalidation failed in the store', err)
    }
    this.counters.invalidated += removed
    return removed
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

  private lookup(l: Lookup): Decision | Promise<Decision> {
    const got = this.get(l.parts.key)
    if (isPromise(got)) return got.then((e) => this.afterPrimary(l, e))
    return this.afterPrimary(l, got)
  }

  private afterPrimary(l: Lookup, e: Entry | undefined): Decision | Promise<Decision> {
    if (e?.kind !== 'vary' || e.expiresAt <= this.now()) return this.found(l, l.parts.key, e)
    // The response varies: the primary entry names the request headers that select the variant.
    const variantKey = makeVariantKey(l.parts.key, e.names, l.view.headers)
    const got = this.get(variantKey)
    if (isPromise(got)) return got.then((v) => this.found(l, variantKey, v))
    return this.found(l, variantKey, got)
  }

  private found(l: Lookup, fillKey: string, e: Entry | undefined): Decision | Promise<Decision> {
    if (e?.kind === 'response' && e.expiresAt > this.now()) {
      if (e.routeLevel && !l.route.routeLevel) return { type: 'defer' }
      this.counters.hits++
      return this.hit(e, l.view.headers)
    }
    if (this.passes.size > 0 && this.passes.has(l.parts.key, this.now())) return this.miss(l, undefined)
    const flight = this.flights.get(fillKey)
    if (flight !== undefined && l.waits < MAX_WAITS) {
      this.counters.coalesced++
      return flight.wait().then((outcome) => this.afterWait(l, outcome))
    }
    return this.miss(l, l.waits < MAX_WAITS ? fillKey : undefined)
  }

  /**
   * A leader this request waited for is done: look again (its entry, or the lead it handed over),
   * or, when its response could not be shared, go to the origin side by side.
   */
  private afterWait(l: Lookup, outcome: FlightOutcome): Decision | Promise<Decision> {
    l.waits++
    return outcome === 'not-stored' ? this.miss(l, undefined) : this.lookup(l)
  }

  /** Go to the origin, leading a flight on `fillKey` when given (others will wait for us). */
  private miss(l: Lookup, fillKey: string | undefined): Decision | Promise<Decision> {
    // A HEAD is answered from the GET entry but never creates one.
    if (l.view.method === 'HEAD') return this.startFill(l, undefined, undefined)
    const flight = fillKey === undefined ? undefined : this.flights.lead(fillKey)
    if (flight === undefined || fillKey === undefined || this.locks === undefined) return this.startFill(l, flight, undefined)
    return this.leadFleet(l, fillKey, flight).catch((err: unknown) => {
      flight.release('retry')
      throw err
    })
  }

  /**
   * This request leads its instance; ask the shared lock whether it also leads the fleet. If
   * another instance is calling the origin, wait to be told how it went, then act on it (this
   * instance's waiters too). If the lock cannot be asked (Redis away), lead anyway.
   */
  private async leadFleet(l: Lookup, fillKey: string, flight: Flight): Promise<Decision> {
    const locks = this.locks as FillLock
    const grant = await locks.acquire(fillKey, this.lockTimeoutMs)
    if (grant.state === 'unavailable') return this.startFill(l, flight, undefined)
    if (grant.state === 'acquired') {
      // Look again: another instance may have stored the entry and let the lock go between our
      // read and our lock request, and its message went out before we listened.
      const e = await this.stored(l, fillKey)
      if (e === undefined) return this.startFill(l, flight, grant)
      locks.release(grant, 'stored')
      flight.release('stored')
      if (e.routeLevel && !l.route.routeLevel) return { type: 'defer' }
      this.counters.hits++
      return this.hit(e, l.view.headers)
    }
    this.counters.coalesced++
    const outcome = await locks.wait(fillKey, grant.holder, this.lockTimeoutMs)
    flight.release(outcome)
    return this.afterWait(l, outcome)
  }

  /** The fresh response stored under `key` (following a Vary marker), if any. */
  private async stored(l: Lookup, key: string): Promise<ResponseEntry | undefined> {
    let e = await this.get(key)
    if (e?.kind === 'vary' && e.expiresAt > this.now()) e = await this.get(makeVariantKey(key, e.names, l.view.headers))
    return e?.kind === 'response' && e.expiresAt > this.now() ? e : undefined
  }

  private startFill(l: Lookup, flight: Flight | undefined, grant: (LockGrant & { state: 'acquired' }) | undefined): Decision {
    this.counters.misses++
    if (l.view.method === 'HEAD') return { type: 'miss', fill: null }
    // The origin must answer in full so the response can be stored (a 304 cannot, and would send
    // every waiter to the origin); the client's validators are evaluated against that response.
    const conditionals = flight === undefined ? undefined : hideConditionals(l.view.headers)
    const fill = new Fill({
      host: this,
      parts: l.parts,
      view: l.view,
      route: l.route,
      req: l.req,
      flight,
      grant,
      fence: this.fence(),
      conditionals,
    })
    this.inflight.add(fill)
    flight?.arm(this.lockTimeoutMs, () => this.overrun(fill))
    return { type: 'miss', fill }
  }

  /** The leader took longer than lockTimeout: its waiters took the lead over; so may other instances. */
  private overrun(fill: Fill): void {
    if (fill.settled || fill.grant === undefined) return
    this.overran.add(fill)
    this.locks?.release(fill.grant, 'retry')
  }

  private fence(): Fence | undefined {
    if (this.store.fence === undefined) return undefined
    try {
      return this.store.fence().catch(() => undefined)
    } catch {
      return undefined
    }
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

/** Removes the client's validators from the request the origin sees; answers them, if any. */
function hideConditionals(headers: IncomingHttpHeaders): IncomingHttpHeaders | undefined {
  const inm = headers['if-none-match']
  const ims = headers['if-modified-since']
  if (inm === undefined && ims === undefined) return undefined
  if (inm !== undefined) delete headers['if-none-match']
  if (ims !== undefined) delete headers['if-modified-since']
  return { 'if-none-match': inm, 'if-modified-since': ims }
}

/** What `cache.health()` answers. */
export interface CacheHealth {
  readonly status: 'ok' | 'degraded' | 'closed'
  /** Entries and bytes in this process (L1). */
  readonly entries: number
  readonly bytes: number
  readonly inFlight: number
  /** The store's own report (for Redis: connection, breaker, eviction policy, last error, round trip), or null. */
  readonly store: StoreHealth | null
}

/** Creates a cache. With no `store`, entries live in an in-process LRU bounded by `maxBytes`. */
export function createCache(options?: CacheOptions): Cache {
  return new Cache(options)
}
