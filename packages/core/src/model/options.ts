import { ConfigError } from './errors.js'
import { describeValue, parseDuration, type Duration } from './duration.js'
import type { KeyMaterial, QueryRule } from './key.js'

/** Statuses stored by default: RFC 9110's heuristically cacheable successes and permanent redirects. */
export const DEFAULT_STATUSES: readonly number[] = [200, 203, 204, 300, 301, 308]
export const NEVER_STORED_STATUSES: ReadonlySet<number> = new Set([206, 304])

/**
 * What a route may say about caching. Used per route (`corral(cache, options)` in Express,
 * `config.cache` in Fastify) and, for the options that take no request, as defaults in
 * `createCache`. `Req` is the framework's request type.
 */
export interface RouteOptions<Req = unknown> {
  /**
   * Freshness when the response has no `s-maxage`, `max-age` or `Expires`. Milliseconds (at least
   * 1000 as a bare number: `ttl: 300` is refused, write `'300s'` or `'300ms'`) or `'30s'`, `'5m'`,
   * ... Without it (here or in `createCache`), such responses are not stored: Corral never guesses
   * a lifetime.
   * @default undefined (inherit `createCache({ ttl })`)
   * @example { ttl: '10m' }
   */
  ttl?: Duration
  /**
   * After an entry's freshness ends, how long it may still be served (`X-Cache: STALE`) while one
   * background request refreshes it (RFC 5861 `stale-while-revalidate`), when the response does not
   * say itself. Never for a response with `must-revalidate`, `proxy-revalidate`, `no-cache`, or
   * `s-maxage` without its own `stale-while-revalidate` (RFC 9111 §4.2.4). `0` turns it off.
   * @default 0
   * @example { staleWhileRevalidate: '30s' }
   */
  staleWhileRevalidate?: Duration | 0
  /**
   * After an entry's freshness ends, how long it may still be served (`X-Cache: STALE`) instead of
   * an origin error: a 5xx, a handler that throws, an origin call that fails (RFC 5861
   * `stale-if-error`), when the response does not say itself. The same exceptions as
   * `staleWhileRevalidate`. `0` turns it off.
   * @default 0
   * @example { staleIfError: '1h' }
   */
  staleIfError?: Duration | 0
  /**
   * Probabilistic early refresh (XFetch: Vattani, Chierichetti and Lowenstein, VLDB 2015): each
   * hit on a fresh entry starts a background refresh with a probability that rises as expiry nears,
   * scaled by how long the entry's last origin call took (`beta` above 1 refreshes earlier). Hot
   * keys are refreshed before they expire; cold keys are left to expire. `true` is `{ beta: 1 }`.
   * @default false
   * @example { earlyRefresh: { beta: 2 } }
   */
  earlyRefresh?: boolean | { beta?: number }
  /**
   * Refresh after write (Caffeine's `refreshAfterWrite`): a hit on an entry stored longer ago than
   * this starts a background refresh, so a key read steadily never expires. Shorter than its
   * freshness to be of use.
   * @default undefined (off)
   * @example { refreshAfter: '1m' }
   */
  refreshAfter?: Duration
  /**
   * Tags (surrogate keys) attached to the stored entry, for `invalidate({ tags })`. Added to those
   * the response sends in a `Cache-Tag` or `Surrogate-Key` header (which is not sent on to the client).
   * @default undefined
   * @example { tags: (req) => [`product:${req.params.id}`] }
   */
  tags?: readonly string[] | ((req: Req) => readonly string[])
  /**
   * Extra key material: requests for the same URL whose material differs get different entries.
   * Return a stable JSON-like value; it is hashed, never joined.
   * @default undefined
   * @example { key: (req) => req.headers['x-tenant'] ?? null }
   */
  key?: (req: Req) => KeyMaterial
  /**
   * Which query parameters are part of the key. Names ending in `*` match by prefix; `false`
   * ignores the whole query string.
   * @default { exclude: [] } (every parameter counts)
   * @example { query: { exclude: ['utm_*', 'fbclid'] } }
   */
  query?: QueryRule
  /**
   * Content codings a request's `Accept-Encoding` is narrowed to, in order of preference: the
   * first one the client accepts (else `identity`) replaces the field before the lookup and the
   * origin see it, as Varnish does, so a response that varies on it is stored once per coding
   * instead of once per way clients write their lists. Put `'br'` first when the app's compression
   * produces brotli. `false` leaves the field as it is.
   * @default ['gzip', 'br', 'deflate']
   */
  encodings?: readonly string[] | false
  /**
   * Cacheable methods. A HEAD is answered from the GET entry but never creates one.
   * @default ['GET', 'HEAD']
   */
  methods?: readonly ('GET' | 'HEAD')[]
  /**
   * Response statuses that may be stored, with their own freshness or the route's `ttl`. While no
   * list is given, any other 2xx or 3xx status (a 302, 303 or 307 redirect, a 299) is stored too
   * when the response gives its own freshness (`max-age`, `s-maxage`, `Expires`, a targeted
   * field), as RFC 9111 §3 allows; a list given here is exact. Error statuses are opt-in: a stored
   * error is an outage for every user (cache-poisoned denial of service). 206 and 304 are never
   * stored.
   * @default [200, 203, 204, 300, 301, 308], and other 2xx and 3xx statuses with explicit freshness
   */
  statuses?: readonly number[]
  /**
   * Heuristic freshness (RFC 9111 §4.2.2) for a response with a listed status, a `Last-Modified`
   * and no freshness of its own: this fraction of the time since it was last modified (`0.1` is
   * the usual choice), at most a day. It comes before the route's `ttl`. `0` turns it off: Corral
   * does not guess a lifetime unless asked to.
   * @default 0
   * @example { heuristic: 0.1 }
   */
  heuristic?: number
  /**
   * Responses with `Set-Cookie`: `'skip'` stores nothing (the cookie may be one user's session);
   * `'strip'` stores the response without its `Set-Cookie` fields, so the client that caused the
   * fill gets its cookie and hits get none. Say `'strip'` only where the body is the same for
   * every user whatever cookie it comes with.
   * @default 'skip'
   */
  setCookie?: 'skip' | 'strip'
  /**
   * Largest body captured and stored, in bytes. Larger responses still reach the client intact.
   * @default 1048576 (1 MiB)
   */
  maxBodyBytes?: number
  /**
   * Skip the cache for this request (X-Cache: BYPASS): no lookup and no store.
   * @default undefined
   * @example { bypass: (req) => req.query.preview !== undefined }
   */
  bypass?: (req: Req) => boolean
  /**
   * Requests carrying `Cookie`: `'bypass'` skips the cache; `'ignore'` treats the route as public,
   * so one response is shared by every user whatever their cookies (use `key` to split).
   * @default 'bypass'
   */
  cookies?: 'bypass' | 'ignore'
  /**
   * Requests carrying `Authorization`: `'bypass'` skips the cache (RFC 9111 §3.5); `'ignore'`
   * shares responses across credentials (use `key` to split by user).
   * @default 'bypass'
   */
  authorization?: 'bypass' | 'ignore'
  /**
   * GET and HEAD requests that carry a body (`Content-Length` above 0 or `Transfer-Encoding`):
   * `'bypass'` skips the cache, because the body is not part of the key and an app that parses it
   * (`express.json()`) would otherwise answer one client's body to another. `'ignore'` caches
   * them anyway: say so only where the handler never reads the body, or where `key` includes it.
   * @default 'bypass'
   */
  requestBody?: 'bypass' | 'ignore'
  /**
   * After an unsafe request (POST, PUT, DELETE, PATCH or any method other than GET, HEAD, OPTIONS
   * and TRACE) passing through Corral is answered with a 2xx or 3xx, drop the entries of its URL
   * and of the same-origin URLs its `Location` and `Content-Location` name (RFC 9111 §4.4), on
   * every instance. `false` leaves invalidation to the routes' own `invalidate` helpers.
   * @default true
   */
  invalidateAfterUnsafe?: boolean
  /**
   * Targeted cache-control fields (RFC 9213), in order of precedence: the first of these a response
   * carries with a valid, non-empty value decides its caching instead of `Cache-Control` and
   * `Expires`, so an app can give Corral (and CDNs) a policy of their own while browsers get
   * `Cache-Control`. Lower-case header names; `[]` turns this off.
   * @default ['surrogate-control', 'cdn-cache-control']
   */
  targetedCacheControl?: readonly string[]
  /**
   * The route's name in metrics, logs, traces and plugin events (the `route` label): keep it to
   * a bounded set of values, like a route pattern. Fastify routes are named by their pattern, and
   * Express routes by `baseUrl + path`, when not given; app-wide lookups (Express `app.use`,
   * `@corral/node`) are named `'*'`.
   * @default the route pattern, or '*'
   */
  name?: string
}

/** Route options that need no request, accepted as defaults by `createCache`. */
export type DefaultRouteOptions = Pick<
  RouteOptions,
  | 'ttl' | 'staleWhileRevalidate' | 'staleIfError' | 'earlyRefresh' | 'refreshAfter' | 'query' | 'encodings' | 'methods' | 'statuses' | 'heuristic' | 'setCookie' | 'maxBodyBytes' | 'cookies' | 'authorization' | 'requestBody'
  | 'invalidateAfterUnsafe' | 'targetedCacheControl'
>

/** Route options after validation, with every default filled in. */
export interface ResolvedRoute<Req = unknown> {
  readonly ttl: number | undefined
  /** Milliseconds; 0 when off. */
  readonly staleWhileRevalidate: number
  readonly staleIfError: number
  /** XFetch's beta; 0 when early refresh is off. */
  readonly earlyRefreshBeta: number
  /** Milliseconds, or undefined when off. */
  readonly refreshAfter: number | undefined
  readonly tags: readonly string[] | ((req: Req) => readonly string[]) | undefined
  readonly key: ((req: Req) => KeyMaterial) | undefined
  readonly query: QueryRule
  /** Codings Accept-Encoding is narrowed to, or undefined when it is left alone. */
  readonly encodings: readonly string[] | undefined
  readonly methods: ReadonlySet<'GET' | 'HEAD'>
  readonly statuses: ReadonlySet<number>
  /** No `statuses` list was given: other 2xx and 3xx statuses are stored when the response gives its freshness. */
  readonly otherStatusesWhenFresh: boolean
  readonly heuristic: number
  readonly setCookie: 'skip' | 'strip'
  readonly maxBodyBytes: number
  readonly bypass: ((req: Req) => boolean) | undefined
  readonly cookies: 'bypass' | 'ignore'
  readonly authorization: 'bypass' | 'ignore'
  readonly requestBody: 'bypass' | 'ignore'
  readonly invalidateAfterUnsafe: boolean
  readonly targetedCacheControl: readonly string[]
  /** The route's `name` option, if given. */
  readonly name: string | undefined
  /**
   * Which requests may share this route's entries, as a fingerprint of the options that decide it
   * (the bypass and key functions, the query rule, the credential and body rules, the methods):
   * '' when they are the cache's own. It is part of the key, so that an entry stored under one set
   * of rules is never answered under another (Express's app-wide middleware and a route's own).
   */
  readonly scope: string
}

const ROUTE_KEYS = new Set([
  'ttl', 'staleWhileRevalidate', 'staleIfError', 'earlyRefresh', 'refreshAfter', 'tags', 'key', 'query', 'encodings', 'methods', 'statuses', 'heuristic', 'setCookie', 'maxBodyBytes', 'bypass', 'cookies', 'authorization',
  'requestBody', 'invalidateAfterUnsafe', 'targetedCacheControl', 'name',
])

function fail(option: string, expected: string, got: unknown): never {
  throw new ConfigError(`expected ${option} to be ${expected}, got ${describeValue(got)}`)
}

const DEFAULT_TARGETED: readonly string[] = Object.freeze(['surrogate-control', 'cdn-cache-control'])
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** A list of header names (possibly empty), lower-cased. */
function headerNames(v: unknown, option: string): readonly string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && HEADER_NAME.test(s))) fail(option, 'an array of HTTP header names', v)
  return Object.freeze((v as string[]).map((s) => s.toLowerCase()))
}

function flag(v: unknown, option: string, inherited: boolean): boolean {
  if (v === undefined) return inherited
  if (typeof v !== 'boolean') fail(option, 'true or false', v)
  return v
}

function stringList(v: unknown, option: string): readonly string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && s.length > 0)) {
    fail(option, 'an array of non-empty strings', v)
  }
  return v as string[]
}

/** Throws on a key that is not an option, naming it: a typo must not silently do nothing. */
export function rejectUnknown(options: object, known: ReadonlySet<string>, prefix: string): void {
  for (const k of Object.keys(options)) {
    if (!known.has(k)) throw new ConfigError(`unknown option ${prefix}${k}`)
  }
}

export function positiveInt(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(option, 'a positive whole number', v)
  return v
}

/**
 * Validates route options over a base (app defaults or a parent route) and fills in defaults.
 * Throws a ConfigError naming the option at construction time.
 */
export function resolveRoute<Req>(
  options: RouteOptions<Req> | undefined,
  base: ResolvedRoute<Req> | undefined,
  prefix: string,
  allowed: ReadonlySet<string> = ROUTE_KEYS,
): ResolvedRoute<Req> {
  const o = options ?? {}
  if (typeof o !== 'object' || o === null || Array.isArray(o)) fail(prefix.replace(/\.$/, '') || 'options', 'an object', o)
  rejectUnknown(o, allowed, prefix)
  const at = (k: string) => `${prefix}${k}`

  let query = base?.query ?? { exclude: [] }
  if (o.query !== undefined) {
    const q: unknown = o.query
    if (q === false) query = false
    else if (q && typeof q === 'object' && !Array.isArray(q) && Object.keys(q).length === 1 && 'include' in q) {
      query = { include: stringList((q as { include: unknown }).include, at('query.include')) }
    } else if (q && typeof q === 'object' && !Array.isArray(q) && Object.keys(q).length === 1 && 'exclude' in q) {
      query = { exclude: stringList((q as { exclude: unknown }).exclude, at('query.exclude')) }
    } else fail(at('query'), "false, { include: [...] } or { exclude: [...] }", q)
  }

  let methods = base?.methods ?? new Set<'GET' | 'HEAD'>(['GET', 'HEAD'])
  if (o.methods !== undefined) {
    const list = stringList(o.methods, at('methods'))
    for (const m of list) if (m !== 'GET' && m !== 'HEAD') fail(at('methods'), "a list of 'GET' and 'HEAD'", m)
    methods = new Set(list as ('GET' | 'HEAD')[])
  }

  let statuses = base?.statuses ?? new Set(DEFAULT_STATUSES)
  if (o.statuses !== undefined) {
    const s: unknown = o.statuses
    if (!Array.isArray(s)) fail(at('statuses'), 'an array of HTTP status codes', s)
    for (const code of s) {
      if (!Number.isInteger(code) || code < 100 || code > 599) fail(at('statuses'), 'an array of HTTP status codes', code)
      if (NEVER_STORED_STATUSES.has(code)) {
        throw new ConfigError(`${at('statuses')} may not contain ${code}: partial and not-modified responses are never stored`)
      }
    }
    statuses = new Set(s as number[])
  }

  const fn = <F>(k: 'key' | 'bypass', v: unknown, inherited: F | undefined): F | undefined => {
    if (v === undefined) return inherited
    if (typeof v !== 'function') fail(at(k), 'a function of the request', v)
    return v as F
  }
  let tags = base?.tags
  if (o.tags !== undefined) {
    if (typeof o.tags === 'function') tags = o.tags
    else tags = stringList(o.tags, at('tags'))
  }
  const choice = (k: 'cookies' | 'authorization' | 'requestBody', inherited: 'bypass' | 'ignore') => {
    const v: unknown = o[k]
    if (v === undefined) return inherited
    if (v !== 'bypass' && v !== 'ignore') fail(at(k), "'bypass' or 'ignore'", v)
    return v
  }

  const route = {
    ttl: o.ttl === undefined ? base?.ttl : ttlOf(o.ttl, at('ttl')),
    staleWhileRevalidate: o.staleWhileRevalidate === undefined ? (base?.staleWhileRevalidate ?? 0) : windowOf(o.staleWhileRevalidate, at('staleWhileRevalidate')),
    staleIfError: o.staleIfError === undefined ? (base?.staleIfError ?? 0) : windowOf(o.staleIfError, at('staleIfError')),
    earlyRefreshBeta: o.earlyRefresh === undefined ? (base?.earlyRefreshBeta ?? 0) : betaOf(o.earlyRefresh, at('earlyRefresh')),
    refreshAfter: o.refreshAfter === undefined ? base?.refreshAfter : parseDuration(o.refreshAfter, at('refreshAfter')),
    tags,
    key: fn<(req: Req) => KeyMaterial>('key', o.key, base?.key),
    query,
    encodings: o.encodings === undefined ? (base === undefined ? DEFAULT_ENCODINGS : base.encodings) : encodingsOf(o.encodings, at('encodings')),
    methods,
    statuses,
    otherStatusesWhenFresh: o.statuses === undefined ? (base?.otherStatusesWhenFresh ?? true) : false,
    heuristic: o.heuristic === undefined ? (base?.heuristic ?? 0) : fraction(o.heuristic, at('heuristic')),
    setCookie: o.setCookie === undefined ? (base?.setCookie ?? 'skip') : oneOf(o.setCookie, ['skip', 'strip'] as const, at('setCookie')),
    maxBodyBytes: o.maxBodyBytes === undefined ? (base?.maxBodyBytes ?? 1024 * 1024) : positiveInt(o.maxBodyBytes, at('maxBodyBytes')),
    bypass: fn<(req: Req) => boolean>('bypass', o.bypass, base?.bypass),
    cookies: choice('cookies', base?.cookies ?? 'bypass'),
    authorization: choice('authorization', base?.authorization ?? 'bypass'),
    requestBody: choice('requestBody', base?.requestBody ?? 'bypass'),
    invalidateAfterUnsafe: flag(o.invalidateAfterUnsafe, at('invalidateAfterUnsafe'), base?.invalidateAfterUnsafe ?? true),
    targetedCacheControl:
      o.targetedCacheControl === undefined ? (base?.targetedCacheControl ?? DEFAULT_TARGETED) : headerNames(o.targetedCacheControl, at('targetedCacheControl')),
    name: o.name === undefined ? base?.name : nameOf(o.name, at('name')),
  }
  return { ...route, scope: '' }
}

const DEFAULT_ENCODINGS: readonly string[] = Object.freeze(['gzip', 'br', 'deflate'])
const CODING = /^[!#$%&'*+.^_`|~0-9a-z-]+$/

function encodingsOf(v: unknown, option: string): readonly string[] | undefined {
  if (v === false) return undefined
  if (!Array.isArray(v) || v.length === 0 || !v.every((c) => typeof c === 'string' && CODING.test(c.toLowerCase()) && c !== '*' && c.toLowerCase() !== 'identity')) {
    fail(option, "false or a non-empty list of content codings, such as ['gzip', 'br']", v)
  }
  return Object.freeze((v as string[]).map((c) => c.toLowerCase()))
}

function nameOf(v: unknown, option: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 200) fail(option, 'a route name of 1 to 200 characters', v)
  return v
}

/** XFetch's beta from `earlyRefresh`: 0 for off. */
function betaOf(v: unknown, option: string): number {
  if (v === false) return 0
  if (v === true) return 1
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).every((k) => k === 'beta')) {
    const beta = (v as { beta?: unknown }).beta
    if (beta === undefined) return 1
    if (typeof beta === 'number' && Number.isFinite(beta) && beta > 0 && beta <= 100) return beta
  }
  fail(option, 'true, false or { beta } with beta a number above 0 and at most 100', v)
}

/** A stale window in milliseconds: a duration, or 0 for none. */
function windowOf(v: unknown, option: string): number {
  return v === 0 ? 0 : parseDuration(v, option)
}

function fraction(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) fail(option, 'a number from 0 to 1', v)
  return v
}

function oneOf<T extends string>(v: unknown, values: readonly T[], option: string): T {
  if (!values.includes(v as T)) fail(option, values.map((x) => `'${x}'`).join(' or '), v)
  return v as T
}

/**
 * A ttl in milliseconds. A bare number under a second is refused: `ttl: 300` would be 0.3 s, and
 * was most likely meant as seconds.
 */
function ttlOf(v: unknown, option: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0 && v < 1000) {
    throw new ConfigError(`expected ${option} in milliseconds, and ${v} would be ${v} ms; write '${v}s' for seconds, or '${v}ms' if you mean it`)
  }
  return parseDuration(v, option)
}

const functionIds = new WeakMap<object, number>()
let nextFunctionId = 0

/** The same number for the same function, every time: functions are told apart by identity. */
function functionId(f: object | undefined): number | null {
  if (f === undefined) return null
  let id = functionIds.get(f)
  if (id === undefined) functionIds.set(f, (id = ++nextFunctionId))
  return id
}

/** What decides which requests may share a route's entries, in a comparable form. */
function servingRules(r: ResolvedRoute): string {
  return JSON.stringify([functionId(r.bypass), functionId(r.key), r.query, r.cookies, r.authorization, r.requestBody, [...r.methods].sort()])
}

/**
 * `route` with its scope: '' when the rules that decide which requests may share its entries are
 * those of `defaults`, else a fingerprint of them (see `ResolvedRoute.scope`).
 */
export function withScope<Req>(route: ResolvedRoute<Req>, defaults: ResolvedRoute<Req>): ResolvedRoute<Req> {
  const rules = servingRules(route as ResolvedRoute)
  return { ...route, scope: rules === servingRules(defaults as ResolvedRoute) ? '' : rules }
}

export const DEFAULT_ROUTE_KEYS: ReadonlySet<string> = new Set([
  'ttl', 'staleWhileRevalidate', 'staleIfError', 'earlyRefresh', 'refreshAfter', 'query', 'encodings', 'methods', 'statuses', 'heuristic', 'setCookie', 'maxBodyBytes', 'cookies', 'authorization', 'requestBody',
  'invalidateAfterUnsafe', 'targetedCacheControl',
])
