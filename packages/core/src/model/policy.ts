import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { deltaSeconds, parseCacheControl, type CacheControl } from './cache-control.js'
import { parseHttpDate } from './http-date.js'
import type { RequestView } from './key.js'
import { NEVER_STORED_STATUSES, type ResolvedRoute } from './options.js'

/** Why a request is not looked up (X-Cache: BYPASS). */
export type BypassReason = 'method' | 'authorization' | 'cookie' | 'body' | 'route'

/**
 * May this request be answered from the cache, and may its response be stored?
 * Returns the reason when it may not. `bypass` is the route's own predicate, already evaluated.
 */
export function requestBypassReason(view: RequestView, route: ResolvedRoute): BypassReason | undefined {
  const m = view.method
  if (m === 'GET' ? !route.methods.has('GET') : m === 'HEAD' ? !route.methods.has('HEAD') : true) return 'method'
  const h = view.headers
  // RFC 9111 §3.5: a shared cache must not reuse a response to an authenticated request unless told.
  if (h.authorization !== undefined && route.authorization !== 'ignore') return 'authorization'
  // Cookies usually select per-user content that the origin forgets to mark Vary: Cookie.
  if (h.cookie !== undefined && route.cookies !== 'ignore') return 'cookie'
  // A body is not part of the key: an app that reads it would answer one client's body to another.
  if (route.requestBody !== 'ignore' && hasBody(h)) return 'body'
  return undefined
}

/** RFC 9112 §6.3: a request has a body when it says how long it is (and it is not 0) or is chunked. */
function hasBody(h: IncomingHttpHeaders): boolean {
  if (h['transfer-encoding'] !== undefined) return true
  const length = h['content-length']
  return length !== undefined && length !== '0'
}

/** Why a response is not stored. */
export type NotStoredReason =
  // The response says so, or the route's options do not allow it:
  | 'status'
  | 'no-store'
  | 'private'
  | 'no-cache'
  | 'set-cookie'
  | 'vary-star'
  | 'partial'
  /** Over the route's `maxBodyBytes`, or over what the store takes for one entry. */
  | 'too-large'
  | 'no-freshness'
  | 'stale'
  /** More tags than `maxTags`. */
  | 'too-many-tags'
  /** A tag longer than `maxTagLength`. */
  | 'tag-too-long'
  // The response did not complete as declared:
  /** The body's length differs from the response's own Content-Length. */
  | 'truncated'
  /** The client went away, or the handler or its stream failed, before the body was complete. */
  | 'aborted'
  // Nothing wrong with the response:
  | 'head'
  | 'invalidated'
  /** The store could not be written (Redis failed, timed out or is away). */
  | 'store-error'
  /** The store chose not to keep it (e.g. Redis with an unsafe eviction policy). */
  | 'declined'
  /** A route callback (`tags`) or Corral itself failed. */
  | 'error'
  /** The origin failed (a 5xx) and the request was answered with a stale entry (stale-if-error). */
  | 'origin-error'
  /**
   * A later lookup of the same request went on under another key (Express: a route's own
   * middleware, whose options change the key, after the app-wide lookup); not counted as a miss.
   */
  | 'superseded'

export type Storability =
  | { readonly storable: false; readonly reason: NotStoredReason }
  | {
      readonly storable: true
      /** Freshness lifetime in ms, measured from when the origin generated the response. */
      readonly lifetimeMs: number
      /** The origin's `Age`, in seconds. */
      readonly initialAge: number
      /** Lower-case, sorted, de-duplicated `Vary` field names; empty when the response does not vary. */
      readonly vary: readonly string[]
      /** How long past its freshness it may be served while a refresh runs (ms, 0: never). */
      readonly staleWhileRevalidateMs: number
      /** How long past its freshness it may be served instead of an origin error (ms, 0: never). */
      readonly staleIfErrorMs: number
    }

function one(v: OutgoingHttpHeaders[string]): string | undefined {
  if (v === undefined) return undefined
  return Array.isArray(v) ? v.join(', ') : String(v)
}

/** Parses `Vary` into sorted lower-case names; `['*']` when it contains `*`. */
export function parseVary(v: OutgoingHttpHeaders[string]): string[] {
  const text = one(v)
  if (!text) return []
  const names = new Set<string>()
  for (const raw of text.split(',')) {
    const n = raw.trim().toLowerCase()
    if (n === '*') return ['*']
    if (n) names.add(n)
  }
  return [...names].sort()
}

/**
 * May this response be stored, and for how long? Pure: `headers` are the final response headers,
 * `now` the clock in ms.
 */
export function responseStorability(
  status: number,
  headers: OutgoingHttpHeaders,
  route: ResolvedRoute,
  now: number,
): Storability {
  // A stored error is an outage for everyone (CPDoS): only listed statuses are stored, and (unless
  // the route gave a list) other non-error statuses whose response gives its own freshness.
  const listed = route.statuses.has(status)
  if (!listed && !(route.otherStatusesWhenFresh && status >= 200 && status < 400 && !NEVER_STORED_STATUSES.has(status))) {
    return { storable: false, reason: 'status' }
  }
  // RFC 9213: a targeted field the route listed replaces Cache-Control and Expires.
  const targeted = targetedField(headers, route.targetedCacheControl)
  const cc = targeted ?? parseCacheControl(headers['cache-control'] as string | string[] | undefined)
  // RFC 9111 §5.2.2.3 must-understand: only a cache that knows the status's rules may store it,
  // and such a cache ignores the no-store sent along for older caches.
  const understood = cc.has('must-understand') ? UNDERSTOOD_STATUSES.has(status) : undefined
  if (understood === false) return { storable: false, reason: 'status' }
  // RFC 9111 §5.2.2.5 no-store, §5.2.2.7 private (with or without field names: we do not strip fields).
  if (cc.has('no-store') && understood !== true) return { storable: false, reason: 'no-store' }
  if (cc.has('private')) return { storable: false, reason: 'private' }
  // RFC 9111 §5.2.2.4 no-cache (qualified or not): stored already stale, so that every use is
  // revalidated with its validator; without one, storing it would save nothing.
  const revalidateEachUse = cc.has('no-cache')
  if (revalidateEachUse && headers.etag === undefined && headers['last-modified'] === undefined) return { storable: false, reason: 'no-cache' }
  if (headers['set-cookie'] !== undefined && route.setCookie === 'skip') return { storable: false, reason: 'set-cookie' }
  if (headers['content-range'] !== undefined) return { storable: false, reason: 'partial' }
  const vary = parseVary(headers.vary)
  // RFC 9111 §4.1: Vary: * never matches.
  if (vary[0] === '*') return { storable: false, reason: 'vary-star' }
  const length = Number(one(headers['content-length']))
  if (Number.isFinite(length) && length > route.maxBodyBytes) return { storable: false, reason: 'too-large' }

  if (revalidateEachUse) return { storable: true, lifetimeMs: 0, initialAge: 0, vary, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }
  const lifetimeS = freshnessLifetime(cc, headers, now, targeted === undefined)
  const heuristic = HEURISTIC_STATUSES.has(status) || cc.has('public') ? route.heuristic : 0
  const lifetimeMs = lifetimeS !== undefined ? lifetimeS * 1000 : listed ? (heuristicMs(headers, heuristic, now) ?? route.ttl) : undefined
  // No heuristic freshness unless asked for: without explicit freshness, a heuristic or a ttl, do not store.
  if (lifetimeMs === undefined) return { storable: false, reason: 'no-freshness' }
  const initialAge = initialAgeSeconds(headers, now)
  // An Age that is not one non-negative integer says the response may be older than it looks.
  if (initialAge === undefined || lifetimeMs - initialAge * 1000 <= 0) return { storable: false, reason: 'stale' }
  return { storable: true, lifetimeMs, initialAge, vary, ...staleWindows(cc, route) }
}

const NO_STALE = { staleWhileRevalidateMs: 0, staleIfErrorMs: 0 } as const

/**
 * RFC 5861 stale windows (ms): the response's `stale-while-revalidate` / `stale-if-error`, else
 * the route's. None where RFC 9111 §4.2.4 forbids serving stale: `must-revalidate`,
 * `proxy-revalidate`, `no-cache`. `s-maxage` implies proxy-revalidate for a shared cache
 * (§5.2.2.10): then only the response's own stale directives allow it, not the route's defaults.
 */
export function staleWindows(cc: CacheControl, route: ResolvedRoute): { staleWhileRevalidateMs: number; staleIfErrorMs: number } {
  if (cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('no-cache')) return NO_STALE
  const defaults = !cc.has('s-maxage')
  const window = (directive: string, fallback: number): number => {
    const seconds = deltaSeconds(cc, directive)
    return seconds !== undefined ? seconds * 1000 : defaults ? fallback : 0
  }
  return { staleWhileRevalidateMs: window('stale-while-revalidate', route.staleWhileRevalidate), staleIfErrorMs: window('stale-if-error', route.staleIfError) }
}

/** RFC 9111 §4.2.1: s-maxage (shared caches), then max-age, then Expires - Date. Seconds. */
export function freshnessLifetime(
  cc: ReturnType<typeof parseCacheControl>,
  headers: OutgoingHttpHeaders,
  now: number,
  useExpires = true,
): number | undefined {
  const shared = deltaSeconds(cc, 's-maxage')
  if (shared !== undefined) return shared
  const maxAge = deltaSeconds(cc, 'max-age')
  if (maxAge !== undefined) return maxAge
  const expires = headers.expires
  if (useExpires && expires !== undefined) {
    // An invalid Expires (e.g. "0", or more than one) means already expired (RFC 9111 §5.3).
    const exp = Array.isArray(expires) ? NaN : parseHttpDate(String(expires), now)
    if (Number.isNaN(exp)) return 0
    return Math.max(0, Math.floor((exp - generatedAt(headers, now)) / 1000))
  }
  return undefined
}

/** RFC 9110 §15.1: statuses heuristically cacheable (206 aside: partial responses are not stored). */
const HEURISTIC_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/** The final statuses RFC 9110 §15 defines, whose caching rules Corral follows (for must-understand). */
const UNDERSTOOD_STATUSES: ReadonlySet<number> = new Set([
  200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426,
  500, 501, 502, 503, 504, 505,
])

/** Heuristic freshness is never longer than this (RFC 9111 §4.2.2 asks for care beyond a day). */
const MAX_HEURISTIC_MS = 86_400_000

/** RFC 9111 §4.2.2: `fraction` of the time since `Last-Modified`, in ms; undefined when off or not dated. */
function heuristicMs(headers: OutgoingHttpHeaders, fraction: number, now: number): number | undefined {
  const lm = headers['last-modified']
  if (fraction === 0 || typeof lm !== 'string') return undefined
  const modified = parseHttpDate(lm, now)
  if (Number.isNaN(modified)) return undefined
  const since = generatedAt(headers, now) - modified
  return since > 0 ? Math.min(MAX_HEURISTIC_MS, Math.floor(since * fraction)) : undefined
}

/** When the origin generated the response: its `Date`, or `now` when it has no valid one. */
function generatedAt(headers: OutgoingHttpHeaders, now: number): number {
  const date = headers.date
  const t = date === undefined || Array.isArray(date) ? NaN : parseHttpDate(String(date), now)
  return Number.isNaN(t) ? now : t
}

/** RFC 9111 §1.2.2: a larger age is read as 2^31 seconds. */
const MAX_AGE = 2 ** 31

/**
 * The origin's `Age` in seconds: 0 when absent, undefined when it is not one non-negative integer
 * (a list, several field lines, a sign, a fraction, a parameter), which the caller treats as stale.
 */
export function parseAge(v: OutgoingHttpHeaders[string]): number | undefined {
  if (v === undefined) return 0
  if (Array.isArray(v)) return v.length === 1 ? parseAge(v[0]) : undefined
  const text = String(v).trim()
  return /^\d+$/.test(text) ? Math.min(Number(text), MAX_AGE) : undefined
}

/**
 * RFC 9111 §4.2.3 corrected initial age, in seconds: the larger of the origin's `Age` and the
 * apparent age `now - Date` (a response generated a while ago is that much older already).
 * Undefined when the `Age` is invalid (see `parseAge`).
 */
export function initialAgeSeconds(headers: OutgoingHttpHeaders, now: number): number | undefined {
  const age = parseAge(headers.age)
  if (age === undefined) return undefined
  const apparent = Math.max(0, Math.floor((now - generatedAt(headers, now)) / 1000))
  return Math.max(age, apparent)
}

const ENTITY_TAG = /(?:W\/)?("[^"]*")/g

/** RFC 9110 §13.1.2 weak comparison of an If-None-Match list with a stored ETag. */
export function etagMatches(ifNoneMatch: string, etag: string | undefined): boolean {
  if (etag === undefined) return false
  if (ifNoneMatch.trim() === '*') return true
  const opaque = etag.startsWith('W/') ? etag.slice(2) : etag
  // Entity-tags are quoted and may contain commas, so match them rather than split on commas.
  for (const m of ifNoneMatch.matchAll(ENTITY_TAG)) if (m[1] === opaque) return true
  return false
}

/**
 * Conditional request against a stored entry (RFC 9110 §13.2.2): If-None-Match wins; otherwise
 * If-Modified-Since against Last-Modified or, when the response has none, against `received`:
 * its `Date`, or the clock time (ms) it was received (RFC 9111 §4.3.2: a response was not
 * modified after it was generated).
 */
export function isNotModified(
  requestHeaders: IncomingHttpHeaders,
  etag: string | undefined,
  lastModified: string | undefined,
  received?: string | number,
): boolean {
  const inm = requestHeaders['if-none-match']
  if (inm !== undefined) return etagMatches(inm, etag)
  const ims = requestHeaders['if-modified-since']
  const stamp = lastModified ?? received
  if (ims === undefined || stamp === undefined) return false
  const since = parseHttpDate(ims)
  const modified = typeof stamp === 'number' ? Math.floor(stamp / 1000) * 1000 : parseHttpDate(stamp)
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since
}

/** The directives of the first listed targeted field the response has with a non-empty value. */
function targetedField(headers: OutgoingHttpHeaders, names: readonly string[]): CacheControl | undefined {
  for (const name of names) {
    const v = headers[name]
    if (v === undefined) continue
    const cc = parseCacheControl(Array.isArray(v) ? v : String(v))
    if (cc.size > 0) return cc
  }
  return undefined
}

/** RFC 9110 §9.2.1. Any other method, known or not, is unsafe. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method)
}

/** One field value as text, or undefined when absent or given more than once. */
function single(v: OutgoingHttpHeaders[string]): string | undefined {
  if (Array.isArray(v)) return v.length === 1 ? String(v[0]) : undefined
  return v === undefined ? undefined : String(v)
}

/**
 * RFC 9111 §4.4: what an unsafe request answered with a non-error status (2xx, 3xx) makes stale —
 * its own URL, and the URLs in `Location` and `Content-Location` when they are on the request's
 * host (another origin's entries are not this request's to drop). Request paths with their
 * queries, for `invalidate({ keys })`; empty for an error status.
 */
export function unsafeTargets(view: RequestView, status: number, headers: OutgoingHttpHeaders): string[] {
  if (status < 200 || status >= 400) return []
  // The request's own URL as it was keyed; an absolute-form request target is reduced to its path.
  const own = view.url.startsWith('/') ? view.url : safeUrl(view.url, undefined)
  const out = new Set<string>()
  if (typeof own === 'string') out.add(own)
  else if (own !== undefined && (own.protocol === 'http:' || own.protocol === 'https:')) out.add(own.pathname + own.search)
  const base = safeUrl(view.url, `http://${view.headers.host ?? 'origin.invalid'}/`)
  if (base === undefined) return [...out]
  for (const field of [single(headers.location), single(headers['content-location'])]) {
    if (field === undefined) continue
    const u = safeUrl(field, base.href)
    if (u !== undefined && u.host === base.host && (u.protocol === 'http:' || u.protocol === 'https:')) out.add(u.pathname + u.search)
  }
  return [...out]
}

function safeUrl(text: string, base: string | undefined): URL | undefined {
  try {
    return new URL(text, base)
  } catch {
    return undefined
  }
}

/**
 * XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh a fresh entry early when
 * `now − computeMs·beta·ln(rand) ≥ expiresAt`, `rand` uniform in (0, 1]. The chance,
 * e^(−remaining / (computeMs·beta)), rises as expiry nears, and more for entries that are slow to
 * compute; an entry that took no measurable time is never refreshed early.
 */
export function xfetchDue(expiresAt: number, computeMs: number, beta: number, now: number, rand: number): boolean {
  if (computeMs <= 0 || beta <= 0) return false
  const u = rand > 0 && rand <= 1 ? rand : Number.MIN_VALUE
  return now - computeMs * beta * Math.log(u) >= expiresAt
}

/** Whether a hit on a fresh entry starts a background refresh: refresh-after-write, then XFetch. */
export function earlyRefreshDue(
  e: { readonly expiresAt: number; readonly storedAt: number; readonly computeMs: number },
  route: ResolvedRoute,
  now: number,
  random: () => number,
): boolean {
  if (route.refreshAfter !== undefined && now - e.storedAt >= route.refreshAfter) return true
  return route.earlyRefreshBeta > 0 && xfetchDue(e.expiresAt, e.computeMs, route.earlyRefreshBeta, now, 1 - random())
}
