import type { OutgoingHttpHeaders } from 'node:http'
import { resolveCacheOptions, type CacheOptions } from './cache-options.js'
import { describeValue } from './model/duration.js'
import type { Entry, ResponseEntry } from './model/entry.js'
import { CallbackError, ConfigError, CorralError, InternalError, OriginError, StoreError, StoreUnavailableError } from './model/errors.js'
import type { Fill, FillHost, FillOutcome } from './fill/fill.js'
import { REFRESH_HEADER, Refreshes, type Replay } from './fill/refresh.js'
import { warm, warmOptions, type WarmOptions, type WarmReport, type WarmTarget } from './warm.js'
import {
  ALL,
  isEmpty,
  normalizeSelectors,
  type InvalidateSelectors,
  type NormalizedSelectors,
} from './model/invalidation.js'
import { KeyMemo } from './key-memo.js'
import { normalizeAcceptEncoding } from './model/encoding.js'
import { assertKeyMaterial, makePrimaryKey, type KeyMaterial, type KeyParts, type RequestView } from './model/key.js'
import { newCounters, type CacheHealth, type CacheStats } from './metrics.js'
import { resolveRoute, withScope, type ResolvedRoute, type RouteOptions } from './model/options.js'
import { isUnsafeMethod, requestBypassReason, unsafeTargets, type BypassReason, type NotStoredReason } from './model/policy.js'
import { isPromise } from './model/maybe-promise.js'
import { ReadPath, type Decision } from './read-path.js'
import type { CacheStore, Fence, MaybePromise, SetResult, StoreHealth, StoreHost } from './stores/types.js'
import type { BreakerState } from './stores/breaker.js'
import type { CacheEvent, CorralLogger, InvalidateEvent, LookupEvent, StoreEvent } from './observe/events.js'
import { Observer, routeLabel } from './observe/observer.js'
import { RecentWindow } from './observe/health.js'
import { logError, slowLog } from './observe/log.js'

export type { CacheOptions, L2Options } from './cache-options.js'

export type { Decision } from './read-path.js'


/** Background refreshes under way at once in one process; past it, stale hits refresh nothing. */
const MAX_REFRESHES = 64
/**
 * What a mutation route invalidates after a 2xx response: selectors, or a function of the request
 * that returns them (or a promise of them).
 */
export type InvalidateSpec<Req> = InvalidateSelectors | ((req: Req) => InvalidateSelectors | Promise<InvalidateSelectors>)

/** An `InvalidateSpec` validated by `Cache.mutation`. */
export type CompiledInvalidation<Req> = (req: Req) => MaybePromise<InvalidateSelectors>

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
  /** Lower-case name of the cache status header, or undefined when none is sent. */
  readonly cacheStatusHeader: string | undefined
  /** This cache's name in Cache-Status (RFC 9211), or undefined when none is sent. */
  readonly cacheStatus: string | undefined
  readonly tagHeaders: readonly string[]
  readonly excludedHeaders: ReadonlySet<string>
  readonly maxTags: number
  readonly maxTagLength: number
  readonly now: () => number
  /** Prefix of every key this cache writes. */
  readonly namespace: string
  private readonly store: CacheStore
  private readonly keys: KeyMemo
  private readonly reads: ReadPath
  /** Background refreshes under way, and the mark of their replayed requests. */
  private readonly refreshes = new Refreshes(MAX_REFRESHES)
  private readonly counters = newCounters()
  /** How long a background refresh or a warming request may take (`lockTimeout`). */
  private readonly lockTimeoutMs: number
  private readonly notStored: Partial<Record<NotStoredReason, number>> = {}
  private onError: (error: CorralError) => void
  /** `onError` was given (rather than the default warning). */
  private readonly ownOnError: boolean
  private logger: CorralLogger | undefined
  /** The framework's per-request logger (Fastify's `request.log`), when the framework gave the logger. */
  private requestLogger: ((req: unknown) => CorralLogger | undefined) | undefined
  /** Plugins and diagnostics channels: what each operation is reported to. */
  readonly observer: Observer
  /** Each request's latest lookup that did not answer it, while lookups are observed (see `LookupEvent.replaces`). */
  private readonly lookups = new WeakMap<object, LookupEvent>()
  /** Rates and L2 latencies of the last minute, for `health()`. */
  private readonly recent: RecentWindow
  private closed = false

  constructor(options: CacheOptions = {}) {
    const o = resolveCacheOptions(options)
    this.defaults = o.defaults
    this.namespace = o.namespace
    this.cacheStatusHeader = o.cacheStatusHeader
    this.tagHeaders = o.tagHeaders
    // Cache-Status is per response: a stored one would describe a forward long past.
    this.excludedHeaders = new Set(['cache-status', ...this.tagHeaders, ...(this.cacheStatusHeader === undefined ? [] : [this.cacheStatusHeader])])
    this.cacheStatus = o.cacheStatus
    this.maxTags = o.maxTags
    this.maxTagLength = o.maxTagLength
    this.now = o.now
    this.onError = o.onError
    this.ownOnError = options.onError !== undefined
    this.logger = o.logger
    const plugins = o.slowMs === undefined ? o.plugins : [...o.plugins, slowLog(o.slowMs, (event) => this.loggerFor(event))]
    this.observer = new Observer(plugins, (error) => this.report(error))
    this.recent = new RecentWindow(o.health, () => this.counters, o.random)
    this.store = o.store
    this.keys = new KeyMemo(o.memoBytes)
    this.lockTimeoutMs = o.lockTimeoutMs
    this.store.attach?.(this.storeHost())
    this.reads = new ReadPath({
      store: this.store,
      locks: this.store.locks,
      lockTimeoutMs: o.lockTimeoutMs,
      passBytes: o.passBytes,
      counters: this.counters,
      fillHost: this,
      refreshes: this.refreshes,
      cacheStatus: o.cacheStatus,
      variantKey: (primary, marker, headers) => this.keys.variantKey(primary, marker, headers),
      now: this.now,
      random: o.random,
      report: (error) => this.report(error),
      observer: this.observer,
    })
    const attached: typeof o.plugins[number][] = []
    for (const p of o.plugins) {
      try {
        p.attach?.(this)
        attached.push(p)
      } catch (err) {
        // Nothing of this cache outlives the throw: the plugins attached so far let go of it.
        this.recent.close()
        new Observer(attached, () => undefined).close()
        if (options.store === undefined) void this.store.close?.()
        throw new ConfigError(`plugin ${p.name}: attach failed: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
  }

  /**
   * Gives the cache a logger when it was made without one (the Fastify plugin gives it the app's);
   * a cache with a `logger` of its own keeps it. Errors then go to it rather than the default warning.
   */
  useLogger(logger: CorralLogger, perRequest?: (req: unknown) => CorralLogger | undefined): void {
    if (this.logger !== undefined) return
    this.logger = logger
    this.requestLogger = perRequest
    // The default warning was for a cache with nowhere else to report; an onError given stays.
    if (!this.ownOnError) this.onError = NO_REPORT
  }

  /**
   * Validates route options over the app defaults (or over `base`). Adapters call this once per
   * route at start-up, so bad options throw before the first request. `prefix` names the options
   * in error messages. Routes whose rules for which requests may share an entry differ from the
   * cache's get a scope of their own (see `ResolvedRoute.scope`).
   */
  route<Req>(options: RouteOptions<Req> | undefined, prefix: string, base?: ResolvedRoute<Req>): ResolvedRoute<Req> {
    const defaults = this.defaults as ResolvedRoute<Req>
    const route = withScope(resolveRoute(options, base ?? defaults, prefix), defaults)
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
   * An unsafe request that went through the cache was answered: drops what that makes stale
   * (`unsafeTargets`), on every instance. The in-process part is done when it returns; a store
   * that cannot make its part is reported (a StoreError), as for `invalidate`. Never throws.
   */
  afterUnsafe(view: RequestView, status: number, headers: OutgoingHttpHeaders): void {
    const keys = unsafeTargets(view, status, headers)
    if (keys.length === 0) return
    this.invalidate({ keys }).catch((err: unknown) => {
      this.report(err instanceof CorralError ? err : new InternalError('invalidation after an unsafe request failed', err))
    })
  }

  /**
   * Decides what to do with a request. Answers synchronously when the store does (the in-memory
   * default), else with a promise. Never throws and never rejects: whatever fails (a route
   * callback, a store, Corral itself) is reported and the request bypasses the cache. `req` is
   * the framework's request, passed to route callbacks. `adopt` is a fill an earlier (app-wide)
   * lookup started for this request: it is kept if the route's key is the same, else abandoned;
   * null when an earlier lookup of this request started none (the lookup is then reported with `again`).
   * `replay` runs a request through the app again: with it, a stale hit refreshes the entry in
   * the background (without it, stale entries are still served, and refreshed by the first
   * request after their window).
   */
  handle<Req>(view: RequestView, route: ResolvedRoute<Req>, req: Req, adopt?: Fill | null, replay?: Replay): Decision | Promise<Decision> {
    if (this.observer.watching('lookup')) return this.observedHandle(view, route as ResolvedRoute, req, adopt, replay)
    try {
      const d = this.decide(view, route as ResolvedRoute, req, adopt ?? undefined, replay, undefined)
      if (!isPromise(d)) return d
      return d.catch((err: unknown) => this.broken(err, adopt))
    } catch (err) {
      return this.broken(err, adopt)
    }
  }

  /** `handle`, reported to plugins and the `corral:lookup` channel. */
  private observedHandle(view: RequestView, route: ResolvedRoute, req: unknown, adopt: Fill | null | undefined, replay: Replay | undefined): Decision | Promise<Decision> {
    const event = this.observer.begin<LookupEvent>({
      op: 'lookup', startedAt: performance.now(), durationMs: 0, method: view.method, url: view.url, route: routeLabel(route, view), again: adopt !== undefined,
      replaces: adopt !== undefined && typeof req === 'object' && req !== null ? this.lookups.get(req) : undefined, key: undefined, result: undefined, collapsed: false, req,
    })
    let d: Decision | Promise<Decision>
    try {
      d = this.decide(view, route, req, adopt ?? undefined, replay, event)
      if (isPromise(d)) d = d.catch((err: unknown) => this.broken(err, adopt))
    } catch (err) {
      d = this.broken(err, adopt)
    }
    if (!isPromise(d)) {
      this.lookedUp(event, d, req, false)
      return d
    }
    this.observer.suspend(event)
    return d.then((decision) => {
      this.lookedUp(event, decision, req, true)
      return decision
    })
  }

  private lookedUp(event: LookupEvent, d: Decision, req: unknown, suspended: boolean): void {
    // A request that goes on may be looked up again by a later middleware (Express): that lookup
    // names this one as the one it replaces. A hit is answered: nothing follows it.
    if (d.type !== 'hit' && typeof req === 'object' && req !== null) this.lookups.set(req, event)
    if (d.type === 'hit') {
      event.result = d.stale === true ? 'stale' : 'hit'
      event.collapsed = d.collapsed === true
    } else if (d.type === 'miss') {
      event.result = 'miss'
      event.collapsed = d.collapsed === true
    } else {
      event.result = 'bypass'
      event.reason = d.reason
    }
    this.observer.end(event, suspended)
  }

  /**
   * Fills entries by running each URL through the app with `replay` (the adapters' `warm` give it),
   * `concurrency` at a time; an entry already stored is fetched again. Resolves to a report of what
   * was stored, what was not (and why) and what failed; never rejects for one bad URL (bad options
   * throw a ConfigError).
   */
  warm(replay: Replay, targets: Iterable<WarmTarget>, options?: WarmOptions): Promise<WarmReport> {
    const o = warmOptions(options)
    if (targets === null || typeof targets !== 'object' && typeof targets !== 'string' || typeof (targets as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new ConfigError(`expected the URLs to warm to be a list, got ${describeValue(targets)}`)
    }
    return warm(this.refreshes, replay, targets, o, this.now, this.lockTimeoutMs, () => {
      this.counters.warmed++
    })
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
      overheadBytes: this.keys.bytes + this.reads.passBytes,
      inFlight: this.reads.flights.size,
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
    const { window, reasons } = this.recent.read()
    if (store !== null && !store.ok) reasons.unshift(`store: ${storeProblem(store)}`)
    const status = this.closed ? 'closed' : reasons.length > 0 ? 'degraded' : 'ok'
    return { status, reasons, entries: size.entries, bytes: size.bytes, inFlight: this.reads.flights.size, window, store }
  }

  /** Where an operation is logged: the request's own logger (Fastify), else the cache's. */
  private loggerFor(event: CacheEvent): CorralLogger | undefined {
    const req = 'req' in event ? event.req : undefined
    if (this.requestLogger !== undefined && req !== undefined) {
      try {
        const log = this.requestLogger(req)
        if (log !== undefined) return log
      } catch {
        // a request without a logger: the cache's
      }
    }
    return this.logger
  }

  /**
   * The state of the shared store's circuit breaker (Redis), read without sending anything;
   * undefined without one.
   */
  breakerState(): BreakerState | undefined {
    const s = this.store as { breakerState?: BreakerState; l2?: { breakerState?: BreakerState } }
    return s.breakerState ?? s.l2?.breakerState
  }

  /** Drops every entry (with Redis: on every instance; rejects while Redis is away, and runs when it answers). */
  async clear(): Promise<void> {
    this.reads.invalidated(ALL)
    await this.store.clear()
  }

  /** Stops answering from the cache (requests pass through) and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.recent.close()
    for (const fill of this.reads.inflight) fill.abandon('aborted')
    this.observer.close()
    await this.store.close?.()
  }

  /** Reports an error the cache swallowed (adapters use it for callback failures). */
  report(error: CorralError): void {
    this.counters.errors++
    try {
      if (this.logger !== undefined) logError(this.logger, error)
      this.onError(error)
    } catch {
      // an onError (or a logger) that throws must not break a request either
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

  write(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined, fill: Fill): SetResult | Promise<SetResult> {
    if (!this.observer.watching('store')) return this.writeAll(writes, fence)
    const [key, entry] = writes[writes.length - 1] as readonly [string, Entry]
    const event = this.observer.begin<StoreEvent>({
      op: 'store', startedAt: performance.now(), durationMs: 0, route: fill.routeLabel, key, bytes: entry.kind === 'response' ? entry.body.length : 0, result: undefined,
    })
    const done = (r: SetResult | undefined, error: unknown, suspended: boolean): void => {
      event.result = r === true ? 'stored' : r === false ? 'declined' : r ?? 'error'
      if (error !== undefined) event.error = error
      this.observer.end(event, suspended)
    }
    let verdict: SetResult | Promise<SetResult>
    try {
      verdict = this.writeAll(writes, fence)
    } catch (err) {
      done(undefined, err, false)
      throw err
    }
    if (!isPromise(verdict)) {
      done(verdict, undefined, false)
      return verdict
    }
    this.observer.suspend(event)
    return verdict.then(
      (r) => {
        done(r, undefined, true)
        return r
      },
      (err: unknown) => {
        done(undefined, err, true)
        throw err
      },
    )
  }

  private writeAll(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined): SetResult | Promise<SetResult> {
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

  servedStale(fallback: ResponseEntry, status: number): void {
    this.counters.stale++
    this.report(new OriginError(`the origin answered ${status} for ${fallback.url}; its stale entry was served instead (stale-if-error)`))
  }

  failed(err: unknown, where: 'store' | 'internal'): void {
    // Redis being away is what health() reports; a fill it could not store is counted, not news.
    if (err instanceof StoreUnavailableError) return
    if (err instanceof CorralError) return this.report(err)
    this.report(where === 'store' ? new StoreError('writing an entry failed; it is not stored', err) : new InternalError('storing a response failed; it is not stored', err))
  }

  settled(fill: Fill, outcome: FillOutcome): void {
    this.reads.settled(fill, outcome)
    if (outcome.stored) this.counters.stored++
    // A superseded fill never reached the origin: its request went on under another key.
    else if (outcome.reason !== 'superseded') this.notStored[outcome.reason] = (this.notStored[outcome.reason] ?? 0) + 1
    const event = fill.event
    if (event !== undefined) {
      event.status = fill.originStatus
      event.stored = outcome.stored
      if (!outcome.stored) event.reason = outcome.reason
      event.bytes = outcome.stored ? fill.bytes : 0
      this.observer.end(event)
    }
  }

  private decide(view: RequestView, route: ResolvedRoute, req: unknown, adopt: Fill | undefined, replay: Replay | undefined, event: LookupEvent | undefined): Decision | Promise<Decision> {
    if (this.closed) {
      adopt?.abandon('aborted')
      return this.bypass('error')
    }
    const reason = requestBypassReason(view, route)
    if (reason !== undefined) {
      if (adopt !== undefined) this.supersede(adopt)
      // A successful unsafe request makes the entries of its URL stale (the tap acts on it).
      const unsafe = reason === 'method' && route.invalidateAfterUnsafe && isUnsafeMethod(view.method)
      return this.bypass(reason, unsafe ? view : undefined)
    }
    let custom: KeyMaterial | undefined
    try {
      if (route.bypass?.(req)) {
        if (adopt !== undefined) this.supersede(adopt)
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
    // One Accept-Encoding per coding, for the variant key and for the origin alike.
    if (route.encodings !== undefined) normalizeAcceptEncoding(view.headers, route.encodings)
    const parts = this.keyOf(view, route, custom)
    if (event !== undefined) event.key = parts.key
    if (adopt !== undefined && !adopt.settled) {
      if (adopt.parts.key === parts.key) {
        adopt.handOver(route, req)
        return { type: 'miss', fill: adopt }
      }
      this.supersede(adopt)
    }
    // A background refresh's own request (marked; the mark is taken off) is never answered stale.
    const refresh = this.refreshes.size > 0 || view.headers[REFRESH_HEADER] !== undefined ? this.refreshes.ticketOf(view, req) : undefined
    return this.reads.lookup({ view, route, req, parts, waits: 0, replay, refresh })
  }

  /**
   * A later lookup of the same request goes another way: the earlier lookup's fill stores nothing,
   * and its miss is not counted (the request is counted by where it goes now).
   */
  private supersede(fill: Fill): void {
    if (fill.settled) return
    this.counters.misses--
    fill.abandon('superseded')
  }

  /** Corral itself failed: report it, give up the adopted fill, and let the request through. */
  private broken(err: unknown, adopt: Fill | null | undefined): Decision {
    adopt?.abandon('error')
    this.report(err instanceof CorralError ? err : new InternalError('deciding on a request failed; it skips the cache', err))
    return this.bypass('error')
  }

  private async invalidateNormalized(sel: NormalizedSelectors): Promise<number> {
    if (isEmpty(sel)) return 0
    const event = this.observer.watching('invalidate') ? this.observer.begin(invalidateEvent(sel, 'local')) : undefined
    this.reads.invalidated(sel)
    let removed: number
    try {
      if (event !== undefined) this.observer.suspend(event)
      removed = await this.store.invalidate(sel, this.namespace)
    } catch (err) {
      const error = err instanceof StoreError ? err : new StoreError('invalidation failed in the store', err)
      if (event !== undefined) {
        event.error = error
        this.observer.end(event)
      }
      throw error
    }
    this.counters.invalidated += removed
    if (event !== undefined) {
      event.removed = removed
      this.observer.end(event)
    }
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
        this.reads.invalidated(sel)
        if (this.observer.watching('invalidate')) this.observer.end(this.observer.begin(invalidateEvent(sel, 'remote')), false)
      },
      observer: this.observer,
      l2Latency: (ms) => this.recent.l2(ms),
    }
  }

  private keyOf(view: RequestView, route: ResolvedRoute, custom: KeyMaterial | undefined): KeyParts {
    const h = view.headers
    if (custom !== undefined || h['x-forwarded-host'] !== undefined || h['x-forwarded-proto'] !== undefined || h.forwarded !== undefined) {
      return makePrimaryKey(this.namespace, view, { query: route.query, custom, scope: route.scope })
    }
    // GET and HEAD share a key, and no other method gets here: host and URL decide it.
    const host = h.host ?? ''
    let parts = this.keys.get(route, host, view.url)
    if (parts === undefined) {
      parts = makePrimaryKey(this.namespace, view, { query: route.query, scope: route.scope })
      this.keys.set(route, host, view.url, parts)
    }
    return parts
  }

  private bypass(reason: BypassReason | 'error', unsafe?: RequestView): Decision {
    this.counters.bypassed++
    return unsafe === undefined ? { type: 'bypass', reason } : { type: 'bypass', reason, unsafe }
  }
}

function invalidateEvent(sel: NormalizedSelectors, source: 'local' | 'remote'): InvalidateEvent {
  return {
    op: 'invalidate', startedAt: performance.now(), durationMs: 0, source, keys: [...sel.paths, ...sel.urls], tags: [...sel.tags], prefixes: [...sel.prefixes], all: sel.all === true, soft: sel.soft === true, removed: 0,
  }
}

/** What a store's health report says is wrong: the first tier that is not ok, and its round trip's error or its eviction policy. */
function storeProblem(h: StoreHealth): string {
  const t = ([h.l2, h.l1] as unknown[]).find((x): x is StoreHealth => typeof x === 'object' && x !== null && (x as StoreHealth).ok === false) ?? h
  const trip = t.roundTrip as { ok?: boolean; error?: string } | undefined
  const eviction = t.eviction as { safe?: boolean; policy?: string } | undefined
  if (trip?.ok === false) return `${t.kind} round trip failed (${trip.error ?? 'unknown'})`
  if (eviction?.safe === false) return `${t.kind} may evict keys (maxmemory-policy ${eviction.policy ?? 'unknown'})`
  return typeof t.error === 'string' ? `${t.kind}: ${t.error}` : `${t.kind} not ok`
}

const NO_REPORT = (): void => undefined

/** Shared by every entry stored without tags. */
const NO_TAGS: readonly string[] = Object.freeze([])

/** Creates a cache. With no `store`, entries live in an in-process LRU bounded by `maxBytes`. */
export function createCache(options?: CacheOptions): Cache {
  return new Cache(options)
}
