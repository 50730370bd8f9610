import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { createResponseEntry, createVaryEntry, freshenedHeaders, storableHeaders, type Entry, type ResponseEntry, type StoredHeaders } from '../model/entry.js'
import { matchesSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { makeVariantKey, type KeyParts, type RequestView } from '../model/key.js'
import type { ResolvedRoute } from '../model/options.js'
import { isNotModified, responseStorability, type NotStoredReason, type Storability } from '../model/policy.js'
import type { Fence, LockGrant, SetResult } from '../stores/types.js'
import type { Flight, FlightOutcome } from './single-flight.js'
import type { TagLog } from './tag-log.js'
import type { Ticket } from './refresh.js'
import type { FillEvent } from '../observe/events.js'
import { routeLabel } from '../observe/observer.js'

export type FillOutcome = { readonly stored: true } | { readonly stored: false; readonly reason: NotStoredReason }

/**
 * What waiters do after a fill: look again when it stored, and when it was invalidated or aborted
 * mid-way (the next response may well be storable: one waiter fetches it, the others wait for it
 * rather than all going to the origin at once); otherwise ask the origin themselves.
 */
export function flightOutcome(outcome: FillOutcome): FlightOutcome {
  if (outcome.stored) return 'stored'
  return outcome.reason === 'invalidated' || outcome.reason === 'aborted' ? 'retry' : outcome.reason === 'origin-error' ? 'failed' : 'not-stored'
}

/** What a fill needs from the cache that owns it. */
export interface FillHost {
  now(): number
  readonly excludedHeaders: ReadonlySet<string>
  readonly tagHeaders: readonly string[]
  readonly maxTags: number
  readonly maxTagLength: number
  /** Reads the current entry at `key` (to extend a Vary marker); errors count as undefined. */
  peek(key: string): Entry | undefined
  /** Writes entries; answers the store's verdict on the last one. Throws or rejects when the store failed. */
  write(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined, fill: Fill): SetResult | Promise<SetResult>
  /** The route's tags for `req`; undefined when its `tags` function failed (already reported). */
  resolveTags(route: ResolvedRoute, req: unknown): readonly string[] | undefined
  settled(fill: Fill, outcome: FillOutcome): void
  /** Reports a failure of the store (`'store'`) or inside the fill itself (`'internal'`: a bug). */
  failed(err: unknown, where: 'store' | 'internal'): void
  /** The origin answered `status` and `fallback`, stale, goes to the client instead (stale-if-error). */
  servedStale(fallback: ResponseEntry, status: number): void
}

export interface FillInit {
  readonly host: FillHost
  readonly parts: KeyParts
  readonly view: RequestView
  readonly route: ResolvedRoute
  readonly req: unknown
  /** The in-process flight this fill leads, if any: its waiters are released when it settles. */
  readonly flight?: Flight
  /** The fleet-wide lock this fill holds, released by the cache when it settles. */
  readonly grant?: LockGrant & { state: 'acquired' }
  /** Where the shared store's invalidation log stood when this fill began. */
  readonly fence?: Fence
  /** The client's If-None-Match / If-Modified-Since, hidden from the origin so that it answers in full. */
  readonly conditionals?: IncomingHttpHeaders
  /** The expired entry this request revalidates: the origin got its validators, and may answer 304. */
  readonly stale?: ResponseEntry
  /** A stale entry within its stale-if-error window: what the client gets if the origin fails. */
  readonly fallback?: ResponseEntry
  /** The background refresh this fill is the replayed request of. */
  readonly ticket?: Ticket | undefined
  /** Never store: a HEAD or a Range request, which has a fill only so that a stale entry can stand in for an error. */
  readonly noStore?: NotStoredReason | undefined
  /** The tags invalidated while fills are in flight, and where it stood when this fill began. */
  readonly tagLog: TagLog
  readonly tagsSince: number
}

/** The stored response a 304 from the origin validated, freshened: what the client gets instead. */
export interface Revalidated {
  readonly status: number
  readonly headers: StoredHeaders
  readonly body: Buffer
}

/** What the adapter does with the response once its head is final. */
export interface HeadDecision {
  /** Tee the body into `end()`; when false, the fill has settled already. */
  readonly capture: boolean
  /**
   * Answer the client 304 instead of this 200, with the same headers less Content-Length and no
   * body: its validators (hidden from the origin) match the fresh response. The body is still
   * captured when `capture` is true.
   */
  readonly notModified: boolean
  /**
   * The origin answered 304 to the validators of a stale entry: send this response (or, when
   * `notModified`, its 304) in place of the origin's. The fill has settled already.
   */
  readonly revalidated?: Revalidated
  /**
   * The origin failed (a 5xx) and `revalidated` is a stale entry served instead (stale-if-error):
   * it replaces the whole response, none of the origin's headers stay.
   */
  readonly stale?: boolean
  /** With `stale`: the entry's remaining freshness in seconds (negative). */
  readonly ttl?: number
  /** Why the response is not stored, when that is known at its head. */
  readonly reason?: NotStoredReason
}

const SKIP: HeadDecision = Object.freeze({ capture: false, notModified: false })
const NO_TAGS: readonly string[] = []

/**
 * One origin response on its way into the cache. The adapter calls `begin` when the head is
 * final, then `end` with the body, or `abandon`. Whatever happens, the fill settles exactly once
 * and its flight (if it leads one) releases its waiters. No method throws.
 */
export class Fill {
  readonly parts: KeyParts
  readonly view: RequestView
  readonly grant: (LockGrant & { state: 'acquired' }) | undefined
  private route: ResolvedRoute
  private req: unknown
  private readonly host: FillHost
  private readonly flight: Flight | undefined
  private readonly fence: Fence | undefined
  private readonly conditionals: IncomingHttpHeaders | undefined
  private readonly stale: ResponseEntry | undefined
  private storability: Extract<Storability, { storable: true }> | undefined
  private headerTags: string[] = []
  private status = 0
  private headers: OutgoingHttpHeaders = {}
  /** The response's own Content-Length; a body of another length did not complete as declared. */
  private declaredLength: number | undefined
  private readonly tagLog: TagLog
  private readonly tagsSince: number
  private readonly fallback: ResponseEntry | undefined
  private readonly noStore: NotStoredReason | undefined
  /** When the origin was asked (the cache's clock), for the entry's `computeMs`. */
  private readonly startedAt: number
  readonly ticket: Ticket | undefined
  /** Its event, when fills are observed (ended by the cache when it settles). */
  event: FillEvent | undefined = undefined
  /** The origin's status, once its head was seen (0 before). */
  originStatus = 0
  /** Bytes of the body stored. */
  bytes = 0
  /** An invalidation of this fill's path or URL landed while it was in flight. */
  private doomed = false
  private settledState = false

  constructor(init: FillInit) {
    this.host = init.host
    this.parts = init.parts
    this.view = init.view
    this.route = init.route
    this.req = init.req
    this.flight = init.flight
    this.grant = init.grant
    this.fence = init.fence
    this.conditionals = init.conditionals
    this.stale = init.stale
    this.tagLog = init.tagLog
    this.tagsSince = init.tagsSince
    this.fallback = init.fallback
    this.noStore = init.noStore
    this.startedAt = init.host.now()
    this.ticket = init.ticket
  }

  /**
   * A later lookup of the same request for the same key (an app-wide middleware, then the
   * route's own) takes this fill over: its route options decide what is stored.
   */
  handOver(route: ResolvedRoute, req: unknown): void {
    this.route = route
    this.req = req
    if (this.event !== undefined) this.event.route = routeLabel(route, this.view)
  }

  /** The route's name in events. */
  get routeLabel(): string {
    return routeLabel(this.route, this.view)
  }

  /** Whether a stale entry stands in if the origin fails (stale-if-error). */
  get hasFallback(): boolean {
    return this.fallback !== undefined
  }

  /** Whether the origin was asked conditionally, for a stale entry it may renew with a 304. */
  get revalidates(): boolean {
    return this.stale !== undefined
  }

  get settled(): boolean {
    return this.settledState
  }

  /** Largest body worth capturing for this fill. */
  get maxBodyBytes(): number {
    return this.route.maxBodyBytes
  }

  /**
   * The response head is final. Reads tag headers, decides whether the response can be stored
   * and whether the client gets a 304. Tag headers are for the cache only: the adapter removes
   * them (see `Cache.tagHeaders`) whatever this returns.
   */
  begin(status: number, headers: OutgoingHttpHeaders): HeadDecision {
    if (this.settledState) return SKIP
    this.originStatus = status
    if (status === 304 && this.stale !== undefined) return this.revalidate(this.stale, headers)
    if (status >= 500 && this.fallback !== undefined && this.fallback.expiresAt + this.fallback.staleIfErrorMs > this.host.now()) {
      return this.serveStale(this.fallback, status)
    }
    if (this.noStore !== undefined) {
      this.finish({ stored: false, reason: this.noStore })
      return { capture: false, notModified: false, reason: this.noStore }
    }
    try {
      for (const name of this.host.tagHeaders) {
        const v = headers[name]
        if (v === undefined) continue
        for (const t of (Array.isArray(v) ? v.join(',') : String(v)).split(/[\s,]+/)) if (t) this.headerTags.push(t)
      }
      const notModified = status === 200 && this.conditionals !== undefined && isNotModified(this.conditionals, text(headers.etag), text(headers['last-modified']), text(headers.date) ?? this.host.now())
      const s = responseStorability(status, headers, this.route, this.host.now())
      if (!s.storable) {
        this.finish({ stored: false, reason: s.reason })
        return { capture: false, notModified, reason: s.reason }
      }
      this.storability = s
      this.status = status
      this.headers = headers
      const length = text(headers['content-length'])
      if (length !== undefined && status !== 204) this.declaredLength = /^\d+$/.test(length.trim()) ? Number(length.trim()) : -1
      return { capture: true, notModified }
    } catch (err) {
      this.fail(err)
      return SKIP
    }
  }

  /**
   * The origin validated the stale entry (RFC 9111 §4.3.3-4.3.4): the stored response, its headers
   * freshened by the 304's, is stored again (if it may be) and goes to the client.
   */
  private revalidate(stale: ResponseEntry, notModifiedHeaders: OutgoingHttpHeaders): HeadDecision {
    try {
      const headers = freshenedHeaders(stale.headers, storableHeaders(notModifiedHeaders, this.host.excludedHeaders))
      const revalidated: Revalidated = { status: stale.status, headers, body: stale.body }
      const notModified =
        this.conditionals !== undefined && isNotModified(this.conditionals, text(headers.etag as OutgoingHttpHeaders[string]), text(headers['last-modified'] as OutgoingHttpHeaders[string]), text(headers.date as OutgoingHttpHeaders[string]) ?? this.host.now())
      // Freshness from the freshened fields, age from the 304 itself.
      const timing: OutgoingHttpHeaders = { ...headers, age: notModifiedHeaders.age, date: notModifiedHeaders.date ?? headers.date } as OutgoingHttpHeaders
      const s = responseStorability(stale.status, timing, this.route, this.host.now())
      if (!s.storable) {
        this.finish({ stored: false, reason: s.reason })
        return { capture: false, notModified, revalidated }
      }
      this.storability = s
      this.status = stale.status
      this.headers = headers as OutgoingHttpHeaders
      this.headerTags.push(...stale.tags)
      this.store(stale.body)
      return { capture: false, notModified, revalidated }
    } catch (err) {
      this.fail(err)
      return SKIP
    }
  }

  /** RFC 5861 stale-if-error: the origin failed; the stale entry answers, and nothing of the error is kept. */
  private serveStale(fallback: ResponseEntry, status: number): HeadDecision {
    this.host.servedStale(fallback, status)
    this.finish({ stored: false, reason: 'origin-error' })
    const ttl = Math.floor((fallback.expiresAt - this.host.now()) / 1000)
    return { capture: false, notModified: false, stale: true, ttl, revalidated: { status: fallback.status, headers: fallback.headers, body: fallback.body } }
  }

  /** The whole body, as the origin produced it. */
  end(body: Buffer): void {
    if (this.settledState) return
    try {
      this.store(body)
    } catch (err) {
      this.fail(err)
    }
  }

  /** The response will not be stored (client went away, handler failed, body too large, ...). */
  abandon(reason: NotStoredReason): void {
    if (this.settledState) return
    this.finish({ stored: false, reason })
  }

  /**
   * Called for every invalidation that lands while this fill is in flight. Its path and URL are
   * known now; its tags only when it stores, so tag selectors are matched then (see `TagLog`).
   */
  invalidated(sel: NormalizedSelectors): void {
    if (!this.doomed && matchesSelectors(sel, { path: this.parts.path, url: this.parts.url, tags: NO_TAGS })) this.doomed = true
  }

  private store(body: Buffer): void {
    const s = this.storability
    if (s === undefined) return this.abandon('aborted')
    // A body that is not what the response declared was cut short (or overran): storing it would
    // turn a truncation the client can see into a complete-looking hit for everyone.
    if (this.declaredLength !== undefined && body.length !== this.declaredLength) return this.abandon('truncated')
    if (body.length > this.route.maxBodyBytes) return this.abandon('too-large')
    const routeTags = this.host.resolveTags(this.route, this.req)
    if (routeTags === undefined) return this.abandon('error')
    const tags = this.headerTags.length === 0 ? routeTags : [...new Set([...routeTags, ...this.headerTags])]
    if (tags.length > this.host.maxTags) return this.abandon('too-many-tags')
    for (const t of tags) if (t.length > this.host.maxTagLength) return this.abandon('tag-too-long')
    const { path, url, key } = this.parts
    if (this.doomed || this.tagLog.touched(this.tagsSince, tags)) {
      // An invalidation landed while this response was being produced: it may predate the change.
      return this.abandon('invalidated')
    }
    const entry = createResponseEntry({
      status: this.status,
      headers: storableHeaders(this.headers, this.host.excludedHeaders),
      body,
      storedAt: this.host.now(),
      lifetimeMs: s.lifetimeMs,
      initialAge: s.initialAge,
      staleWhileRevalidateMs: s.staleWhileRevalidateMs,
      staleIfErrorMs: s.staleIfErrorMs,
      computeMs: Math.max(0, Math.round(this.host.now() - this.startedAt)),
      tags,
      path,
      url,
    })
    const writes: (readonly [string, Entry])[] =
      s.vary.length === 0
        ? [[key, entry]]
        : [
            [key, createVaryEntry(s.vary, entry, this.host.peek(key))],
            [makeVariantKey(key, s.vary, this.view.headers), entry],
          ]
    this.settledState = true
    this.bytes = body.length
    let written: SetResult | Promise<SetResult>
    try {
      written = this.host.write(writes, this.fence, this)
    } catch (err) {
      return this.wrote(err)
    }
    if (typeof written === 'object') written.then((r) => this.wrote(r), (err: unknown) => this.wrote(err))
    else this.wrote(written)
  }

  /** Settles with the store's verdict, or with the error it threw. */
  private wrote(result: SetResult | unknown): void {
    if (result === true) return this.finish({ stored: true })
    if (result === 'too-large' || result === 'invalidated') return this.finish({ stored: false, reason: result })
    if (result === false) return this.finish({ stored: false, reason: 'declined' })
    this.host.failed(result, 'store')
    this.finish({ stored: false, reason: 'store-error' })
  }

  private fail(err: unknown): void {
    if (this.settledState) return
    this.host.failed(err, 'internal')
    this.finish({ stored: false, reason: 'error' })
  }

  private finish(outcome: FillOutcome): void {
    this.settledState = true
    try {
      this.host.settled(this, outcome)
    } finally {
      this.flight?.release(flightOutcome(outcome))
    }
  }
}

function text(v: OutgoingHttpHeaders[string]): string | undefined {
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(', ') : String(v)
}
