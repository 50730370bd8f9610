/**
 * `@corral/core/prometheus`: a plugin that reports a cache on a prom-client `Registry`.
 *
 * prom-client is an optional peer of core and is loaded only by this subpath, so apps that do
 * not import it never need it. Request and fill counts are kept in plain numbers as events
 * arrive and handed to prom-client's counters when the registry is scraped: a hit costs a map
 * lookup and an increment, never a label hash. Everything `cache.stats()` knows (entries, bytes,
 * errors, ...) is read at scrape time.
 */
import {
  Counter,
  Gauge,
  Histogram,
  register as globalRegistry,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client'
import type { CacheStats } from '../metrics.js'
import { describeValue } from '../model/duration.js'
import { ConfigError } from '../model/errors.js'
import type { CacheEvent, CachePlugin, FillEvent, L2Event, LookupEvent, ObservedCache, Operation } from '../observe/events.js'
import type { BreakerState } from '../stores/breaker.js'

/** A prom-client registry, whichever exposition format it writes. */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>

/** Options of {@link prometheus}. */
export interface PrometheusOptions {
  /**
   * The prom-client registry the metrics are registered on; serve `await registry.metrics()` on
   * your `/metrics` route.
   * @default prom-client's global `register`
   * @example prometheus({ registry: new Registry() })
   */
  readonly registry?: PrometheusRegistry
  /**
   * Prepended to every metric name (`corral_requests_total`, ...). Letters, digits, `_` and `:`,
   * not starting with a digit; may be empty.
   * @default 'corral_'
   * @example prometheus({ prefix: 'shop_cache_' })
   */
  readonly prefix?: string
  /**
   * Labels with a fixed value on every series of this cache. Several caches may report on one
   * registry (and prefix): they share the metrics, and each needs its own label values; all of
   * them must use the same label names (and the same buckets). A second cache with the same
   * values (or none) is refused with a ConfigError, as its series would overwrite the first's.
   * The values are taken from the plugin's `createCache` until that cache closes.
   * @default {} (one cache per registry and prefix)
   * @example prometheus({ registry, labels: { cache: 'pages' } })
   */
  readonly labels?: Readonly<Record<string, string>>
  /**
   * Bucket upper bounds, in seconds, of `corral_fill_duration_seconds` (origin calls whose
   * response may be stored), strictly increasing.
   * @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   * @example prometheus({ fillBuckets: [0.05, 0.1, 0.5, 1, 5, 30] })
   */
  readonly fillBuckets?: readonly number[]
  /**
   * Bucket upper bounds, in seconds, of `corral_l2_duration_seconds` (Redis reads and writes),
   * strictly increasing.
   * @default [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
   * @example prometheus({ l2Buckets: [0.001, 0.005, 0.02, 0.1] })
   */
  readonly l2Buckets?: readonly number[]
  /**
   * Distinct values of the `route` label kept for this cache, so an unexpected source of route
   * names cannot flood Prometheus with series. Routes seen after the limit are counted under
   * `route="(other)"`. A positive integer, or `Infinity` for no limit.
   * @default 100
   * @example prometheus({ maxRoutes: 500 })
   */
  readonly maxRoutes?: number
}

const DEFAULT_FILL_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
const DEFAULT_L2_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
const DEFAULT_MAX_ROUTES = 100
/** The `route` label of routes past `maxRoutes`. */
export const OTHER_ROUTE = '(other)'

const OPTION_NAMES = ['registry', 'prefix', 'labels', 'fillBuckets', 'l2Buckets', 'maxRoutes'] as const
/** Label names the metrics use themselves (and `le`, the histograms'). */
const RESERVED_LABELS = new Set(['route', 'result', 'reason', 'op', 'source', 'mode', 'trigger', 'le'])
const PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** `corral_breaker_state`: 0 closed, 1 half-open, 2 open. */
const BREAKER_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 }
/** The operations counted (not `store`: a fill's event says whether it was stored). */
const OPS: readonly Operation[] = Object.freeze(['lookup', 'fill', 'l2.read', 'l2.write', 'invalidate', 'revalidate'] as const)

type Labels = Record<string, string>
type LookupResult = NonNullable<LookupEvent['result']>

/**
 * A plugin for `createCache({ plugins: [prometheus({ registry })] })` that registers Corral's
 * metrics on a prom-client registry (see the core README for the list). One plugin per cache;
 * bad options throw a ConfigError naming the option.
 * @example
 * import { Registry } from 'prom-client'
 * import { createCache } from '@corral/core'
 * import { prometheus } from '@corral/core/prometheus'
 *
 * const registry = new Registry()
 * const cache = createCache({ ttl: '5m', plugins: [prometheus({ registry })] })
 * app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()))
 */
export function prometheus(options: PrometheusOptions = {}): CachePlugin {
  const o = resolveOptions(options)
  const family = familyFor(o)
  const claim = JSON.stringify(family.labelNames.map((n) => o.labels[n]))
  // Checked now, so the mistake shows where it is made, and again when a cache takes the values:
  // a plugin that never served a cache (its createCache threw) holds nothing.
  const unclaimed = (): void => {
    if (!family.claimed.has(claim)) return
    const which = family.labelNames.length === 0 ? 'without options.labels' : `with options.labels ${JSON.stringify(o.labels)}`
    throw new ConfigError(
      `another cache reports ${which} on this registry (prefix '${o.prefix}') already, and their series would overwrite each other: give each cache distinct options.labels (e.g. { cache: 'pages' }), or another options.prefix or options.registry`,
    )
  }
  unclaimed()

  let member: Member | undefined
  let closed = false
  return {
    name: 'prometheus',
    ops: OPS,
    attach(cache) {
      if (member !== undefined) throw new Error('this prometheus() plugin serves another cache already: make one per cache')
      unclaimed()
      family.claimed.add(claim)
      member = new Member(cache, o.labels, o.maxRoutes)
      family.members.add(member)
    },
    after(event) {
      member?.count(event, family.metrics)
    },
    close() {
      if (closed || member === undefined) return
      closed = true
      family.claimed.delete(claim)
      // What was counted since the last scrape is handed over now; the gauges drop the cache at the next one.
      member.flush(family.metrics)
      family.members.delete(member)
    },
  }
}

// ---- options -----------------------------------------------------------------------------------

interface Resolved {
  readonly registry: PrometheusRegistry
  readonly prefix: string
  readonly labels: Readonly<Labels>
  readonly fillBuckets: readonly number[]
  readonly l2Buckets: readonly number[]
  readonly maxRoutes: number
}

function resolveOptions(options: PrometheusOptions): Resolved {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`expected the options of prometheus() to be an object, got ${describeValue(options)}`)
  }
  for (const name of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(`unknown option options.${name} of prometheus(); expected one of ${OPTION_NAMES.join(', ')}`)
    }
  }
  const registry = options.registry ?? globalRegistry
  const r = registry as Partial<Record<'registerMetric' | 'getSingleMetric' | 'metrics', unknown>> | null
  if (typeof r !== 'object' || r === null || typeof r.registerMetric !== 'function' || typeof r.getSingleMetric !== 'function' || typeof r.metrics !== 'function') {
    throw new ConfigError(`expected options.registry to be a prom-client Registry (new Registry() from 'prom-client'), got ${describeValue(registry)}`)
  }
  const prefix = options.prefix ?? 'corral_'
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new ConfigError(`expected options.prefix to be the start of a Prometheus metric name (letters, digits, '_' and ':', not starting with a digit) like 'corral_', got ${describeValue(prefix)}`)
  }
  return {
    registry,
    prefix,
    labels: constLabels(options.labels),
    fillBuckets: buckets(options.fillBuckets, 'options.fillBuckets', DEFAULT_FILL_BUCKETS),
    l2Buckets: buckets(options.l2Buckets, 'options.l2Buckets', DEFAULT_L2_BUCKETS),
    maxRoutes: maxRoutes(options.maxRoutes),
  }
}

function constLabels(value: unknown): Readonly<Labels> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`expected options.labels to be an object of label names to string values like { cache: 'pages' }, got ${describeValue(value)}`)
  }
  const out: Labels = {}
  for (const [name, v] of Object.entries(value)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new ConfigError(`expected the names in options.labels to be Prometheus label names (letters, digits and '_', not starting with a digit or '__'), got ${describeValue(name)}`)
    }
    if (RESERVED_LABELS.has(name)) {
      throw new ConfigError(`options.labels may not use the label name '${name}': Corral's metrics use it (${[...RESERVED_LABELS].join(', ')})`)
    }
    if (typeof v !== 'string') throw new ConfigError(`expected options.labels.${name} to be a string, got ${describeValue(v)}`)
    out[name] = v
  }
  return Object.freeze(out)
}

function buckets(value: unknown, option: string, fallback: readonly number[]): readonly number[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(`expected ${option} to be a non-empty array of upper bounds in seconds like [0.01, 0.1, 1], got ${describeValue(value)}`)
  }
  let last = 0
  for (const b of value as unknown[]) {
    if (typeof b !== 'number' || !Number.isFinite(b) || b <= last) {
      throw new ConfigError(`expected ${option} to hold finite, positive and strictly increasing numbers of seconds, got ${describeValue(b)} after ${last}`)
    }
    last = b
  }
  return Object.freeze([...(value as number[])])
}

function maxRoutes(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_ROUTES
  if (typeof value !== 'number' || !(Number.isInteger(value) || value === Infinity) || value < 1) {
    throw new ConfigError(`expected options.maxRoutes to be a positive integer (or Infinity), got ${describeValue(value)}`)
  }
  return value
}

// ---- the metrics on one registry ---------------------------------------------------------------

interface Metrics {
  readonly requests: Counter<string>
  readonly collapsed: Counter<string>
  readonly fills: Counter<string>
  readonly notStored: Counter<string>
  readonly fillDuration: Histogram<string>
  readonly l2Duration: Histogram<string>
  readonly invalidations: Counter<string>
  readonly invalidatedEntries: Counter<string>
  readonly revalidations: Counter<string>
  readonly stored: Counter<string>
  readonly errors: Counter<string>
  readonly rejected: Counter<string>
}

/**
 * Corral's metrics on one registry under one prefix, and the caches reporting on them. Kept per
 * registry, so that a second cache reuses the metrics instead of registering them again (which
 * prom-client refuses).
 */
interface Family {
  /** Names of the constant labels, sorted: the same for every cache of the family. */
  readonly labelNames: readonly string[]
  readonly fillBuckets: readonly number[]
  readonly l2Buckets: readonly number[]
  readonly metrics: Metrics
  /** The first metric registered, to see whether the registry still holds them (`registry.clear()`). */
  readonly probe: { readonly name: string; readonly metric: unknown }
  /** The constant label values of the caches attached, as JSON arrays in `labelNames` order. */
  readonly claimed: Set<string>
  /** Caches attached. */
  readonly members: Set<Member>
}

const families = new WeakMap<object, Map<string, Family>>()

function familyFor(o: Resolved): Family {
  let byPrefix = families.get(o.registry)
  if (byPrefix === undefined) {
    byPrefix = new Map()
    families.set(o.registry, byPrefix)
  }
  const names = Object.keys(o.labels).sort()
  const existing = byPrefix.get(o.prefix)
  if (existing !== undefined && o.registry.getSingleMetric(existing.probe.name) === existing.probe.metric) {
    if (names.join(',') !== existing.labelNames.join(',')) {
      throw new ConfigError(
        `expected options.labels to have the label names of the other caches reporting on this registry (prefix '${o.prefix}'): [${existing.labelNames.join(', ')}], got [${names.join(', ')}]`,
      )
    }
    if (o.fillBuckets.join() !== existing.fillBuckets.join()) {
      throw new ConfigError(`expected options.fillBuckets to be those of the other caches reporting on this registry (prefix '${o.prefix}'): [${existing.fillBuckets.join(', ')}], got [${o.fillBuckets.join(', ')}]`)
    }
    if (o.l2Buckets.join() !== existing.l2Buckets.join()) {
      throw new ConfigError(`expected options.l2Buckets to be those of the other caches reporting on this registry (prefix '${o.prefix}'): [${existing.l2Buckets.join(', ')}], got [${o.l2Buckets.join(', ')}]`)
    }
    return existing
  }
  const family = createFamily(o, names)
  byPrefix.set(o.prefix, family)
  return family
}

function createFamily(o: Resolved, constNames: readonly string[]): Family {
  const p = o.prefix
  const taken = NAMES.map((n) => p + n).filter((name) => o.registry.getSingleMetric(name) !== undefined)
  if (taken.length > 0) {
    throw new ConfigError(
      `the registry holds metrics named ${taken.join(', ')} already, not registered by this copy of @corral/core/prometheus (or dropped from it since): choose another options.prefix or options.registry`,
    )
  }
  const members = new Set<Member>()
  const registers = [o.registry]
  const labelNames = (...own: string[]): string[] => [...constNames, ...own]
  const counter = (name: string, help: string, own: string[], collect: (this: Counter<string>) => void): Counter<string> =>
    new Counter({ name: p + name, help, labelNames: labelNames(...own), registers, collect })
  const gauge = (name: string, help: string, read: (m: Member) => number | undefined): Gauge<string> =>
    new Gauge({
      name: p + name,
      help,
      labelNames: labelNames(),
      registers,
      collect(this: Gauge<string>) {
        // Set afresh at every scrape: a cache that closed (or has no breaker) has no series.
        this.reset()
        if (constNames.length === 0) this.remove({})
        for (const m of members) {
          const v = read(m)
          if (v !== undefined) this.set(m.labels, v)
        }
      },
    })
  const fromStats = (name: string, help: string, field: StatsCounter): Counter<string> =>
    counter(name, help, [], function () {
      for (const m of members) m.flushStat(this, field)
    })

  const metrics: Metrics = {
    requests: counter('requests_total', 'Requests looked up in the cache, by route and result: hit (fresh entry), stale (entry past its freshness), miss (sent to the origin), bypass (skipped the cache).', ['route', 'result'], function () {
      for (const m of members) m.flushRequests(this)
    }),
    collapsed: counter('collapsed_total', "Requests that waited for another request's origin call on the same key instead of calling the origin themselves.", ['route'], function () {
      for (const m of members) m.flushCollapsed(this)
    }),
    fills: counter('fills_total', 'Origin responses that could be stored, by route and result: stored or not_stored.', ['route', 'result'], function () {
      for (const m of members) m.flushFills(this)
    }),
    notStored: counter('not_stored_total', 'Origin responses not stored, by route and reason (private, no-store, status, too-large, ...).', ['route', 'reason'], function () {
      for (const m of members) m.flushNotStored(this)
    }),
    fillDuration: new Histogram({
      name: `${p}fill_duration_seconds`,
      help: "Time from a miss to the end of the origin's response (origin calls whose response may be stored), by route.",
      labelNames: labelNames('route'),
      buckets: [...o.fillBuckets],
      registers,
    }),
    l2Duration: new Histogram({
      name: `${p}l2_duration_seconds`,
      help: 'Time of reads from and writes to the shared store (Redis), by op (read, write) and result (hit, miss, stored, declined, error).',
      labelNames: labelNames('op', 'result'),
      buckets: [...o.l2Buckets],
      registers,
    }),
    invalidations: counter('invalidations_total', 'Invalidations, by source (local: made here; remote: heard from another instance) and mode (hard: removed; soft: marked stale).', ['source', 'mode'], function () {
      for (const m of members) m.flushInvalidations(this)
    }),
    invalidatedEntries: fromStats('invalidated_entries_total', 'Entries removed (or marked stale) by local invalidations.', 'invalidated'),
    revalidations: counter('revalidations_total', 'Background refreshes, by trigger (stale, early) and result (stored, held: another instance refreshes, invalidated, failed).', ['trigger', 'result'], function () {
      for (const m of members) m.flushRevalidations(this)
    }),
    stored: fromStats('stored_total', 'Responses stored.', 'stored'),
    errors: fromStats('errors_total', 'Store failures and user callbacks that threw (each was reported to onError).', 'errors'),
    rejected: fromStats('rejected_total', 'Entries read from the shared store that failed to decode or verify: never served, deleted.', 'rejected'),
  }
  gauge('entries', 'Entries held in memory (L1).', (m) => m.snapshot().entries)
  gauge('bytes', 'Bytes held in memory (L1), entries with their indexes.', (m) => m.snapshot().bytes)
  gauge('overhead_bytes', 'Bytes of the memo of recent keys and of the hit-for-pass table.', (m) => m.snapshot().overheadBytes)
  gauge('in_flight', 'Origin calls under way that other requests may wait on.', (m) => m.snapshot().inFlight)
  gauge('breaker_state', "State of the shared store's circuit breaker: 0 closed, 1 half-open, 2 open (absent without a shared store).", (m) => m.breaker())
  return {
    labelNames: constNames,
    fillBuckets: o.fillBuckets,
    l2Buckets: o.l2Buckets,
    metrics,
    probe: { name: p + NAMES[0], metric: o.registry.getSingleMetric(p + NAMES[0]) },
    claimed: new Set(),
    members,
  }
}

/** Every metric name, without the prefix; the first is the family's probe. */
const NAMES = [
  'requests_total', 'collapsed_total', 'fills_total', 'not_stored_total', 'fill_duration_seconds', 'l2_duration_seconds', 'invalidations_total',
  'invalidated_entries_total', 'revalidations_total', 'stored_total', 'errors_total', 'rejected_total', 'entries', 'bytes', 'overhead_bytes',
  'in_flight', 'breaker_state',
] as const

// ---- one cache's counts ------------------------------------------------------------------------

/**
 * One series of a counter, counted as a plain number as events come, and added to prom-client's
 * counter when it is scraped (so the hot path never hashes labels). A series is exported from its
 * creation, at 0 if need be, so `rate()` sees it start.
 */
class Tally {
  value = 0
  private sent = 0
  private shown = false
  constructor(readonly labels: Labels) {}

  flush(counter: Counter<string>): void {
    const d = this.value - this.sent
    // Below what was sent: a lookup taken back after a scrape; the counter waits for it to catch up.
    if (d < 0 || (d === 0 && this.shown)) return
    counter.inc(this.labels, d)
    this.sent = this.value
    this.shown = true
  }
}

/** Values of a two-label series, made on first use. */
class Grid<T> {
  private readonly rows = new Map<string, Map<string, T>>()
  constructor(private readonly make: (a: string, b: string) => T) {}

  at(a: string, b: string): T {
    let row = this.rows.get(a)
    if (row === undefined) {
      row = new Map()
      this.rows.set(a, row)
    }
    let v = row.get(b)
    if (v === undefined) {
      v = this.make(a, b)
      row.set(b, v)
    }
    return v
  }

  forEach(fn: (v: T) => void): void {
    for (const row of this.rows.values()) for (const v of row.values()) fn(v)
  }
}

/** Everything counted for one route. */
class RouteCounts {
  readonly hit: Tally
  readonly stale: Tally
  readonly miss: Tally
  readonly bypass: Tally
  readonly collapsed: Tally
  readonly stored: Tally
  readonly notStoredFills: Tally
  /** Not stored, by reason. */
  readonly reasons = new Map<string, Tally>()
  /** The fill duration histogram's labels. */
  readonly labels: Labels
  /** Whether the route had a lookup, and a fill: only then are its request and fill series exported (at 0 if need be). */
  looked = false
  filled = false

  constructor(constLabels: Readonly<Labels>, readonly route: string) {
    this.labels = { ...constLabels, route }
    const requests = (result: LookupResult): Tally => new Tally({ ...constLabels, route, result })
    this.hit = requests('hit')
    this.stale = requests('stale')
    this.miss = requests('miss')
    this.bypass = requests('bypass')
    this.collapsed = new Tally(this.labels)
    this.stored = new Tally({ ...constLabels, route, result: 'stored' })
    this.notStoredFills = new Tally({ ...constLabels, route, result: 'not_stored' })
  }

  reason(reason: string): Tally {
    let t = this.reasons.get(reason)
    if (t === undefined) {
      t = new Tally({ ...this.labels, reason })
      this.reasons.set(reason, t)
    }
    return t
  }
}

type StatsCounter = 'stored' | 'errors' | 'rejected' | 'invalidated'

/** A cache attached to the family, and what it counted. */
class Member {
  private readonly routes = new Map<string, RouteCounts>()
  private readonly invalidations: Grid<Tally>
  private readonly revalidations: Grid<Tally>
  private readonly l2: Grid<Labels>
  /** Stats counters as last added to the registry's counters. */
  private readonly sent: Record<StatsCounter, number> = { stored: 0, errors: 0, rejected: 0, invalidated: 0 }
  /** `cache.stats()` for the scrape under way: read once, for every metric that needs it. */
  private stats: CacheStats | undefined

  constructor(
    private readonly cache: ObservedCache,
    readonly labels: Readonly<Labels>,
    private readonly maxRoutes: number,
  ) {
    this.invalidations = new Grid((source, mode) => new Tally({ ...labels, source, mode }))
    this.revalidations = new Grid((trigger, result) => new Tally({ ...labels, trigger, result }))
    this.l2 = new Grid((op, result) => ({ ...labels, op, result }))
    // Known from the start, so dashboards see them at 0 rather than absent.
    for (const source of ['local', 'remote']) for (const mode of ['hard', 'soft']) this.invalidations.at(source, mode)
  }

  /** One event, on the path of every request: no allocation once its route has been seen. */
  count(e: CacheEvent, metrics: Metrics): void {
    switch (e.op) {
      case 'lookup':
        return this.lookedUp(e)
      case 'fill':
        return this.filled(e, metrics.fillDuration)
      case 'l2.read':
      case 'l2.write':
        return this.l2Done(e, metrics.l2Duration)
      case 'invalidate':
        this.invalidations.at(e.source, e.soft ? 'soft' : 'hard').value++
        return
      case 'revalidate':
        if (e.result !== undefined) this.revalidations.at(e.trigger, e.result).value++
        return
      default:
        return
    }
  }

  private lookedUp(e: LookupEvent): void {
    // A request is counted once, by the lookup that decided it: a later lookup of the same request
    // (an Express route's own middleware) takes back the one it replaces.
    if (e.again) {
      if (e.replaces === undefined) return
      this.tally(e.replaces, -1)
    }
    this.tally(e, 1)
  }

  private tally(e: LookupEvent, by: 1 | -1): void {
    if (e.result === undefined) return
    const r = this.route(e.route)
    r.looked = true
    // The route's tallies are named after the results.
    r[e.result].value += by
    if (e.collapsed) r.collapsed.value += by
  }

  private filled(e: FillEvent, histogram: Histogram<string>): void {
    // Never reached the origin: a later lookup of its request went on under another key.
    if (e.reason === 'superseded') return
    const r = this.route(e.route)
    r.filled = true
    if (e.stored) r.stored.value++
    else {
      r.notStoredFills.value++
      r.reason(e.reason ?? 'unknown').value++
    }
    histogram.observe(r.labels, e.durationMs / 1000)
  }

  private l2Done(e: L2Event, histogram: Histogram<string>): void {
    if (e.result === undefined) return
    histogram.observe(this.l2.at(e.op === 'l2.read' ? 'read' : 'write', e.result), e.durationMs / 1000)
  }

  private route(name: string): RouteCounts {
    let r = this.routes.get(name)
    if (r === undefined) {
      if (this.routes.size >= this.maxRoutes && name !== OTHER_ROUTE) return this.route(OTHER_ROUTE)
      r = new RouteCounts(this.labels, name)
      this.routes.set(name, r)
    }
    return r
  }

  // ---- at scrape time ----

  snapshot(): CacheStats {
    let s = this.stats
    if (s === undefined) {
      s = this.cache.stats()
      this.stats = s
      // prom-client collects every metric of a scrape in one turn; the next scrape reads afresh.
      queueMicrotask(() => {
        this.stats = undefined
      })
    }
    return s
  }

  breaker(): number | undefined {
    const state = this.cache.breakerState()
    return state === undefined ? undefined : BREAKER_VALUE[state]
  }

  flushRequests(c: Counter<string>): void {
    for (const r of this.routes.values()) {
      if (!r.looked) continue
      r.hit.flush(c)
      r.stale.flush(c)
      r.miss.flush(c)
      r.bypass.flush(c)
    }
  }

  flushCollapsed(c: Counter<string>): void {
    for (const r of this.routes.values()) if (r.looked) r.collapsed.flush(c)
  }

  flushFills(c: Counter<string>): void {
    for (const r of this.routes.values()) {
      if (!r.filled) continue
      r.stored.flush(c)
      r.notStoredFills.flush(c)
    }
  }

  flushNotStored(c: Counter<string>): void {
    for (const r of this.routes.values()) for (const t of r.reasons.values()) t.flush(c)
  }

  flushInvalidations(c: Counter<string>): void {
    this.invalidations.forEach((t) => t.flush(c))
  }

  flushRevalidations(c: Counter<string>): void {
    this.revalidations.forEach((t) => t.flush(c))
  }

  flushStat(c: Counter<string>, field: StatsCounter): void {
    const now = this.snapshot()[field]
    const d = now - this.sent[field]
    if (d <= 0) return
    c.inc(this.labels, d)
    this.sent[field] = now
  }

  /** Hands everything counted to the counters (when the cache closes). */
  flush(m: Metrics): void {
    this.flushRequests(m.requests)
    this.flushCollapsed(m.collapsed)
    this.flushFills(m.fills)
    this.flushNotStored(m.notStored)
    this.flushInvalidations(m.invalidations)
    this.flushRevalidations(m.revalidations)
    try {
      for (const [field, c] of [['stored', m.stored], ['errors', m.errors], ['rejected', m.rejected], ['invalidated', m.invalidatedEntries]] as const) this.flushStat(c, field)
    } catch {
      // A store that cannot say its size after closing: its last counts stay as last scraped.
    }
  }
}
