import type { IncomingHttpHeaders } from 'node:http'
import { ageOf, type Entry, type ResponseEntry, type StoredHeaders, type VaryEntry } from './model/entry.js'
import { StoreError, StoreUnavailableError, type CorralError } from './model/errors.js'
import { Fill, flightOutcome, type FillHost, type FillOutcome } from './fill/fill.js'
import { PassTable } from './fill/pass.js'
import { SingleFlight, type Flight, type FlightOutcome } from './fill/single-flight.js'
import type { KeyParts, RequestView } from './model/key.js'
import type { Counters } from './metrics.js'
import type { ResolvedRoute } from './model/options.js'
import { earlyRefreshDue, isNotModified, type BypassReason, type NotStoredReason } from './model/policy.js'
import { isPromise, withDeadline, type MaybePromise } from './model/maybe-promise.js'
import type { NormalizedSelectors } from './model/invalidation.js'
import { TagLog } from './fill/tag-log.js'
import type { Refreshes, Replay, Ticket } from './fill/refresh.js'
import { OriginError } from './model/errors.js'
import { byteRange, ifRangeMatches, type RangeAnswer } from './model/range.js'
import type { CacheStore, Fence, FillLock, LockGrant } from './stores/types.js'
import type { FillEvent, RevalidateEvent } from './observe/events.js'
import { routeLabel, type Observer } from './observe/observer.js'

/** What an adapter should do with a request. */
export type Decision =
  | {
      readonly type: 'bypass'
      readonly reason: BypassReason | 'error'
      /** An unsafe request whose success must invalidate its URLs (see `unsafeTargets`). */
      readonly unsafe?: RequestView
    }
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
      /** Past its freshness, within its stale-while-revalidate window (X-Cache: STALE). */
      readonly stale?: boolean
      /** This cache's Cache-Status member (RFC 9211), when it sends one. */
      readonly cacheStatus?: string | undefined
      /** It waited for another request's origin call first (RFC 9211 `collapsed`). */
      readonly collapsed?: boolean
    }
  /** Go to the origin; when `fill` is set, feed it the response so it can be stored. */
  | {
      readonly type: 'miss'
      readonly fill: Fill | null
      /** Why it went forward (RFC 9211 `fwd`): nothing stored, no stored variant, or stale. */
      readonly fwd?: Forward
      /** It waited for another request's origin call first (RFC 9211 `collapsed`). */
      readonly collapsed?: boolean
    }

/** RFC 9211 `fwd` values of a request that went to the origin after a lookup. */
export type Forward = 'uri-miss' | 'vary-miss' | 'stale'

/** One request on its way through the read path. */
export interface Lookup {
  readonly view: RequestView
  readonly route: ResolvedRoute
  readonly req: unknown
  readonly parts: KeyParts
  /** Leaders this request has waited for so far. */
  waits: number
  /** The expired entry found under the key, when it has a validator to revalidate it with. */
  stale?: ResponseEntry | undefined
  /** The expired entry found under the key, within its stale-if-error window. */
  fallback?: ResponseEntry | undefined
  /** How the adapter runs a request through the app again (for background refreshes), if it can. */
  readonly replay?: Replay | undefined
  /** This request is the replay of a background refresh: never answered with a stale entry. */
  readonly refresh?: Ticket | undefined
  /** The key its entry was looked for under (the variant's, for a varied response). */
  fillKey?: string | undefined
  /** The primary key held a Vary marker. */
  varied?: boolean
  /** Why it goes forward, if it does. */
  fwd?: Forward
}

/** What the read path works with, owned by the cache. */
export interface ReadPathDeps {
  readonly store: CacheStore
  /** The fleet-wide lock of a shared store, if any. */
  readonly locks: FillLock | undefined
  readonly lockTimeoutMs: number
  /** Budget of the hit-for-pass table, in bytes. */
  readonly passBytes: number
  readonly counters: Counters
  /** What a fill reports to (the cache). */
  readonly fillHost: FillHost
  readonly refreshes: Refreshes
  /** This cache's name in Cache-Status, or undefined when none is sent. */
  readonly cacheStatus: string | undefined
  /** The key of the variant of `primary` that `headers` select under `marker` (`makeVariantKey`, remembered). */
  variantKey(primary: string, marker: VaryEntry, headers: IncomingHttpHeaders): string
  now(): number
  random(): number
  report(error: CorralError): void
  readonly observer: Observer
}

/**
 * Tag names the log of invalidations keeps for the fills in flight (references to the
 * invalidations' own sets). A fill that outlives this many invalidated tags is not stored.
 */
const TAG_LOG_NAMES = 65_536
/** After this many waits a request stops waiting and goes to the origin (bounded coalescing). */
const MAX_WAITS = 2
/** How long a key stays in hit-for-pass after a response that could not be shared. */
const PASS_MS = 10_000
/** Reasons that belong to the response, so the next one will most likely be the same. */
const PASS_REASONS: ReadonlySet<NotStoredReason> = new Set<NotStoredReason>([
  'status', 'no-store', 'private', 'no-cache', 'set-cookie', 'vary-star', 'partial', 'too-large', 'no-freshness', 'stale',
  'too-many-tags', 'tag-too-long',
])


/**
 * From a request's key to a decision: the entry (following a Vary marker), or a wait for the
 * request already calling the origin for it (in this process, then across the fleet), or a fill
 * of its own; hit-for-pass for keys whose responses cannot be shared; and the bookkeeping when a
 * fill settles. Answers synchronously when the store does.
 */
export class ReadPath {
  readonly flights: SingleFlight
  /** Fills under way, told about every invalidation that lands meanwhile (see `invalidated`). */
  readonly inflight = new Set<Fill>()
  private readonly tagLog = new TagLog(TAG_LOG_NAMES)
  /** Keys a background refresh is under way for, in this process. */
  private readonly refreshing = new Set<string>()
  private readonly passes: PassTable
  /** Fills that took longer than lockTimeout and gave up their fleet lock already. */
  private readonly overran = new WeakSet<Fill>()

  constructor(private readonly deps: ReadPathDeps) {
    // A flight nobody armed (its leader still asking the fleet lock) ends after two lock lifetimes.
    this.flights = new SingleFlight(2 * deps.lockTimeoutMs)
    this.passes = new PassTable(deps.passBytes, PASS_MS)
  }

  get passBytes(): number {
    return this.passes.bytes
  }

  /**
   * An invalidation landed (here, or on another instance): a fill in flight that it selects must
   * not store what it is producing, which may predate the change.
   */
  invalidated(sel: NormalizedSelectors): void {
    if (this.inflight.size === 0) return
    this.tagLog.add(sel.tags)
    for (const fill of this.inflight) fill.invalidated(sel)
  }

  /** A fill settled: release its fleet lock, and put its key in or out of hit-for-pass. */
  settled(fill: Fill, outcome: FillOutcome): void {
    this.inflight.delete(fill)
    if (fill.ticket !== undefined) {
      fill.ticket.stored = outcome.stored
      fill.ticket.reason = outcome.stored ? undefined : outcome.reason
      fill.ticket.fill = undefined
    }
    if (this.inflight.size === 0) this.tagLog.clear()
    if (fill.grant !== undefined && !this.overran.has(fill)) this.deps.locks?.release(fill.grant, flightOutcome(outcome))
    const key = fill.parts.key
    if (outcome.stored) this.passes.delete(key)
    else if (PASS_REASONS.has(outcome.reason)) this.passes.add(key, this.deps.now())
  }

  /** The entry under `key`; a store that cannot answer is a miss (its failures reported, its absence not). */
  private get(key: string): MaybePromise<Entry | undefined> {
    try {
      const r = this.deps.store.get(key)
      return isPromise(r) ? r.catch(this.readFailed) : r
    } catch (err) {
      return this.readFailed(err)
    }
  }

  /** One function for every failed read (none is made per lookup). */
  private readonly readFailed = (err: unknown): undefined => {
    if (!(err instanceof StoreUnavailableError)) {
      this.deps.report(err instanceof StoreError ? err : new StoreError('reading an entry failed; treated as a miss', err))
    }
    return undefined
  }

  lookup(l: Lookup): Decision | Promise<Decision> {
    const got = this.get(l.parts.key)
    if (isPromise(got)) return got.then((e) => this.afterPrimary(l, e))
    return this.afterPrimary(l, got)
  }

  private afterPrimary(l: Lookup, e: Entry | undefined): Decision | Promise<Decision> {
    // An expired marker is still followed: its variant, stale too, may be revalidated.
    if (e?.kind !== 'vary') return this.found(l, l.parts.key, e)
    // The response varies: the primary entry names the request headers that select the variant.
    l.varied = true
    const variantKey = this.deps.variantKey(l.parts.key, e, l.view.headers)
    const got = this.get(variantKey)
    if (isPromise(got)) return got.then((v) => this.found(l, variantKey, v))
    return this.found(l, variantKey, got)
  }

  private found(l: Lookup, fillKey: string, e: Entry | undefined): Decision | Promise<Decision> {
    l.stale = l.fallback = undefined
    l.fillKey = fillKey
    l.fwd = e?.kind === 'response' ? 'stale' : l.varied === true ? 'vary-miss' : 'uri-miss'
    if (e?.kind === 'response') {
      const now = this.deps.now()
      // A replayed request uses only an entry stored since its refresh began (by another request or instance).
      if (e.expiresAt > now && (l.refresh === undefined || e.storedAt > l.refresh.before)) {
        this.deps.counters.hits++
        if (l.refresh !== undefined) {
          if (ownKey(l.refresh, fillKey)) l.refresh.stored = true
        }
        else if (l.replay !== undefined && earlyRefreshDue(e, l.route, now, this.deps.random)) {
          this.deps.counters.earlyRefreshes++
          this.refresh(l, fillKey, e, 'early')
        }
        return this.hit(e, l)
      }
      // RFC 5861 stale-while-revalidate: answer now, refresh in the background.
      if (l.refresh === undefined && e.expiresAt <= now && now < e.expiresAt + e.staleWhileRevalidateMs) {
        this.deps.counters.stale++
        this.refresh(l, fillKey, e, 'stale')
        return this.hit(e, l, true)
      }
      if (e.etag !== undefined || e.lastModified !== undefined) l.stale = e
      // A refresh's own request answers nobody: its failure is the refresh's, reported once.
      if (l.refresh === undefined && now < e.expiresAt + e.staleIfErrorMs) l.fallback = e
    }
    if (this.passes.size > 0 && this.passes.has(l.parts.key, this.deps.now())) return this.miss(l, undefined)
    const flight = this.flights.get(fillKey)
    if (flight !== undefined && l.waits < MAX_WAITS) {
      this.deps.counters.coalesced++
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
    if (outcome === 'failed') {
      // The leader's origin call failed where a stale entry could answer: so does ours.
      const f = l.fallback
      if (f !== undefined && f.expiresAt + f.staleIfErrorMs > this.deps.now()) {
        this.deps.counters.stale++
        return this.hit(f, l, true)
      }
      return this.miss(l, undefined)
    }
    return outcome === 'not-stored' ? this.miss(l, undefined) : this.lookup(l)
  }

  /**
   * A stale hit: refresh `fillKey` in the background, once in this process (not while a request
   * is filling it or another refresh runs) and once in the fleet (the fill lock), by replaying the
   * request through the app. Nothing happens when the adapter cannot replay, after a refresh of
   * the key failed lately (hit-for-pass), or when too many refreshes are under way already: the
   * entry is still served stale, and the request after its window ends goes to the origin.
   */
  private refresh(l: Lookup, fillKey: string, e: ResponseEntry, trigger: RevalidateEvent['trigger']): void {
    if (l.replay === undefined || this.flights.get(fillKey) !== undefined || this.refreshing.has(fillKey)) return
    if (this.passes.size > 0 && this.passes.has(l.parts.key, this.deps.now())) return
    const ticket = this.deps.refreshes.issue(fillKey, e.storedAt)
    if (ticket === undefined) return
    this.refreshing.add(fillKey)
    this.deps.counters.revalidations++
    const obs = this.deps.observer
    const event = obs.watching('revalidate')
      ? obs.begin<RevalidateEvent>({ op: 'revalidate', startedAt: performance.now(), durationMs: 0, url: l.view.url, route: routeLabel(l.route, l.view), key: fillKey, trigger, result: undefined })
      : undefined
    if (event !== undefined) obs.suspend(event)
    void this.runRefresh(l, e, ticket, l.replay, event).then(({ replayed }) => {
      // The ticket (one of the 64) and the key stay taken until the replay is over, or a grace
      // period after it was given up (an app whose handler never ends keeps its request anyway).
      const release = () => {
        this.refreshing.delete(fillKey)
        this.deps.refreshes.close(ticket)
      }
      const grace = setTimeout(release, this.deps.lockTimeoutMs)
      grace.unref()
      void replayed.finally(() => {
        clearTimeout(grace)
        release()
      })
    })
  }

  /** Runs one refresh; resolves (never rejects) with the replay itself, settled or not (wrapped: a promise would be awaited). */
  private async runRefresh(l: Lookup, e: ResponseEntry, ticket: Ticket, replay: Replay, event: RevalidateEvent | undefined): Promise<{ replayed: Promise<unknown> }> {
    const locks = this.deps.locks
    let replayed: Promise<unknown> = Promise.resolve()
    const ended = (result: NonNullable<RevalidateEvent['result']>, error?: unknown): void => {
      if (event === undefined) return
      event.result = result
      if (error !== undefined) event.error = error
      this.deps.observer.end(event)
    }
    try {
      if (locks !== undefined) {
        const grant = await locks.acquire(fillKeyOf(ticket), this.deps.lockTimeoutMs)
        // Another instance refreshes it; this one keeps serving stale and reads its entry from L2.
        if (grant.state === 'held') {
          ended('held')
          return { replayed }
        }
        if (grant.state === 'acquired') ticket.grant = grant
      }
      const request = this.deps.refreshes.request(l.view, e.headers.vary as string | string[] | undefined, ticket)
      replayed = Promise.resolve().then(() => replay(request))
      replayed.catch(() => undefined)
      await withDeadline(replayed, this.deps.lockTimeoutMs)
      if (ticket.stored !== true) throw new Error(refreshFailure(ticket))
      ended('stored')
    } catch (err) {
      // Given up: the replay's fill stores nothing now. (The app's handler keeps its request as
      // long as it runs, as it would a client's; nothing of Corral's waits on it.)
      ticket.fill?.abandon('aborted')
      // An invalidation landed while it ran: nothing failed, and the next stale hit refreshes again.
      if (ticket.reason === 'invalidated') {
        ended('invalidated')
        return { replayed }
      }
      this.deps.counters.revalidationFailures++
      // Not again for a while: the stale entry serves until its window ends.
      this.passes.add(l.parts.key, this.deps.now())
      const error = new OriginError(`a background refresh of ${l.view.url} failed; the stale entry is served until its window ends`, err)
      ended('failed', error)
      this.deps.report(error)
    } finally {
      // A grant the replayed request's fill did not take is given back here.
      if (ticket.grant !== undefined) locks?.release(ticket.grant, ticket.stored === true ? 'stored' : 'not-stored')
    }
    return { replayed }
  }

  /** Go to the origin, leading a flight on `fillKey` when given (others will wait for us). */
  private miss(l: Lookup, fillKey: string | undefined): Decision | Promise<Decision> {
    // A HEAD is answered from the GET entry but never creates one; nor does a Range request (the
    // origin answers it with part of the body).
    if (l.view.method === 'HEAD' || l.view.headers.range !== undefined) return this.startFill(l, undefined, undefined)
    const flight = fillKey === undefined ? undefined : this.flights.lead(fillKey)
    // The replay of a background refresh holds the fleet lock already.
    const ticket = l.refresh
    if (flight !== undefined && ticket?.grant !== undefined && ticket.fillKey === fillKey) {
      const grant = ticket.grant
      ticket.grant = undefined
      return this.startFill(l, flight, grant)
    }
    if (flight === undefined || fillKey === undefined || this.deps.locks === undefined) return this.startFill(l, flight, undefined)
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
    const locks = this.deps.locks as FillLock
    const grant = await locks.acquire(fillKey, this.deps.lockTimeoutMs)
    if (grant.state === 'unavailable') return this.startFill(l, flight, undefined)
    if (grant.state === 'acquired') {
      // Look again: another instance may have stored the entry and let the lock go between our
      // read and our lock request, and its message went out before we listened.
      const e = await this.stored(l, fillKey)
      if (e === undefined) return this.startFill(l, flight, grant)
      locks.release(grant, 'stored')
      flight.release('stored')
      this.deps.counters.hits++
      return this.hit(e, l)
    }
    this.deps.counters.coalesced++
    const outcome = await locks.wait(fillKey, grant.holder, this.deps.lockTimeoutMs)
    flight.release(outcome)
    return this.afterWait(l, outcome)
  }

  /** The fresh response stored under `key` (following a Vary marker), if any. */
  private async stored(l: Lookup, key: string): Promise<ResponseEntry | undefined> {
    let e = await this.get(key)
    if (e?.kind === 'vary' && e.expiresAt > this.deps.now()) e = await this.get(this.deps.variantKey(key, e, l.view.headers))
    return e?.kind === 'response' && e.expiresAt > this.deps.now() ? e : undefined
  }

  private startFill(l: Lookup, flight: Flight | undefined, grant: (LockGrant & { state: 'acquired' }) | undefined): Decision {
    this.deps.counters.misses++
    const partial = l.view.method === 'HEAD' || l.view.headers.range !== undefined
    // A HEAD or Range request stores nothing, but a stale entry still stands in for an error.
    if (partial && l.fallback === undefined) return { type: 'miss', fill: null, fwd: l.fwd ?? 'uri-miss', collapsed: l.waits > 0 }
    const ticket = l.refresh !== undefined && ownKey(l.refresh, l.fillKey) ? l.refresh : undefined
    // The origin must answer in full so the response can be stored (a 304 cannot, and would send
    // every waiter to the origin); the client's validators are evaluated against that response.
    const conditionals = flight === undefined || partial ? undefined : hideConditionals(l.view.headers)
    // Revalidate an expired entry with its validators (RFC 9111 §4.3.1): a 304 renews it.
    const stale = flight === undefined || partial ? undefined : l.stale
    if (stale !== undefined) askConditionally(l.view.headers, stale)
    const fill = new Fill({
      host: this.deps.fillHost,
      fallback: l.fallback,
      ticket,
      noStore: partial ? (l.view.method === 'HEAD' ? 'head' : 'partial') : undefined,
      parts: l.parts,
      view: l.view,
      route: l.route,
      req: l.req,
      flight,
      grant,
      fence: this.fence(),
      conditionals,
      stale,
      tagLog: this.tagLog,
      tagsSince: this.tagLog.head,
    })
    if (ticket !== undefined) ticket.fill = fill
    const obs = this.deps.observer
    if (obs.watching('fill')) {
      fill.event = obs.begin<FillEvent>({
        op: 'fill', startedAt: performance.now(), durationMs: 0, method: l.view.method, url: l.view.url, route: routeLabel(l.route, l.view), key: l.fillKey ?? l.parts.key,
        background: l.refresh !== undefined, req: l.req, status: 0, stored: false, reason: undefined, bytes: 0,
      })
      obs.suspend(fill.event)
    }
    this.inflight.add(fill)
    flight?.arm(this.deps.lockTimeoutMs, () => this.overrun(fill))
    return { type: 'miss', fill, fwd: l.fwd ?? 'uri-miss', collapsed: l.waits > 0 }
  }

  /** The leader took longer than lockTimeout: its waiters took the lead over; so may other instances. */
  private overrun(fill: Fill): void {
    if (fill.settled || fill.grant === undefined) return
    this.overran.add(fill)
    this.deps.locks?.release(fill.grant, 'retry')
  }

  private fence(): Fence | undefined {
    if (this.deps.store.fence === undefined) return undefined
    try {
      return this.deps.store.fence().catch(() => undefined)
    } catch {
      return undefined
    }
  }

  private hit(e: ResponseEntry, l: Lookup, stale = false): Decision {
    const now = this.deps.now()
    const age = String(ageOf(e, now))
    const view = l.view
    const h = view.headers
    // RFC 9211: a hit, its remaining freshness (negative when stale), and whether it waited for another's fill.
    const name = this.deps.cacheStatus
    const collapsed = l.waits > 0
    const cacheStatus = name === undefined ? undefined : `${name}; hit; ttl=${Math.floor((e.expiresAt - now) / 1000)}${collapsed ? '; collapsed' : ''}`
    if (isNotModified(h, e.etag, e.lastModified, dateOf(e))) {
      return { type: 'hit', entry: e, status: 304, headers: e.notModifiedHeaders, body: EMPTY, age, stale, cacheStatus, collapsed }
    }
    // RFC 9110 §14.2: a range of a stored 200 (conditions first, §13.2.2).
    if (h.range !== undefined && view.method === 'GET' && e.status === 200 && ifRangeMatches(h, e.etag, e.lastModified)) {
      return rangeHit(e, byteRange(h.range, e.body.length), age, stale, cacheStatus, collapsed)
    }
    return { type: 'hit', entry: e, status: e.status, headers: e.headers, body: e.body, age, stale, cacheStatus, collapsed }
  }
}

function rangeHit(e: ResponseEntry, range: RangeAnswer, age: string, stale: boolean, cacheStatus: string | undefined, collapsed: boolean): Decision {
  const length = e.body.length
  if (range.kind === 'full') return { type: 'hit', entry: e, status: e.status, headers: e.headers, body: e.body, age, stale, cacheStatus, collapsed }
  if (range.kind === 'unsatisfiable') {
    return { type: 'hit', entry: e, status: 416, headers: { 'content-range': `bytes */${length}`, 'content-length': '0' }, body: EMPTY, age, stale, cacheStatus, collapsed }
  }
  const headers = { ...e.headers, 'content-range': `bytes ${range.start}-${range.end}/${length}`, 'content-length': String(range.end - range.start + 1) }
  return { type: 'hit', entry: e, status: 206, headers, body: e.body.subarray(range.start, range.end + 1), age, stale, cacheStatus, collapsed }
}


const EMPTY = Buffer.alloc(0)

/** When the stored response was generated: its Date, or when it was stored. */
function dateOf(e: ResponseEntry): string | number {
  const d = e.headers.date
  return typeof d === 'string' ? d : e.storedAt
}

/** Gives the request the origin sees the stored entry's validators. */
function askConditionally(headers: IncomingHttpHeaders, stale: ResponseEntry): void {
  if (stale.etag !== undefined) headers['if-none-match'] = stale.etag
  if (stale.lastModified !== undefined) headers['if-modified-since'] = stale.lastModified
}

/** Removes the client's validators from the request the origin sees; answers them, if any. */
function hideConditionals(headers: IncomingHttpHeaders): IncomingHttpHeaders | undefined {
  const inm = headers['if-none-match']
  const ims = headers['if-modified-since']
  if (inm === undefined && ims === undefined) return undefined
  if (inm !== undefined) delete headers['if-none-match']
  if (ims !== undefined) delete headers['if-modified-since']
  return { 'if-none-match': inm, 'if-modified-since': ims }
}

/** Why a refresh's replay did not store. */
function refreshFailure(ticket: Ticket): string {
  if (ticket.stored === false) return `its response was not stored (${ticket.reason ?? 'unknown'})`
  // Its request reached no fill for the key: it was answered elsewhere, or under another key.
  return "the replay did not reach the entry's key: the app did not pass it through Corral, or the key depends on what a refresh does not carry (cookies, credentials, headers a key function reads)"
}

/** Whether a replayed request looking up `fillKey` is the one its ticket is for (any key for warming). */
function ownKey(ticket: Ticket, fillKey: string | undefined): boolean {
  return ticket.fillKey === undefined || ticket.fillKey === fillKey
}

function fillKeyOf(ticket: Ticket): string {
  if (ticket.fillKey === undefined) throw new Error('a refresh ticket without a key')
  return ticket.fillKey
}
