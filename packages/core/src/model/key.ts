import * as crypto from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/** JSON-like material a route's `key` function may return; it is hashed into the key, never joined. */
export type KeyMaterial =
  | string
  | number
  | boolean
  | null
  | readonly KeyMaterial[]
  | { readonly [name: string]: KeyMaterial }

/** A query parameter after canonicalisation: `null` value means the name had no `=`. */
export type QueryParam = readonly [name: string, value: string | null]

/** Which query parameters take part in the key. Patterns ending in `*` match by prefix. */
export type QueryRule = { include: readonly string[] } | { exclude: readonly string[] } | false

/** The framework-independent view of a request that keys and policy are computed from. */
export interface RequestView {
  /** Upper-case method as received. */
  readonly method: string
  /** Path and query exactly as received on the request line (before any router rewrites). */
  readonly url: string
  /**
   * The framework's live header object (Node's `req.headers`), not a copy: a leading miss removes
   * `If-None-Match` / `If-Modified-Since` from it so that the origin answers in full.
   */
  readonly headers: IncomingHttpHeaders
  /** The route pattern that matched, when the adapter knows it: the route's name in events when it has no `name`. */
  readonly route?: string | undefined
}

const KEY_VERSION = 'v1'
const sha256: (data: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'base64url')
    : (data) => crypto.createHash('sha256').update(data).digest('base64url')

const PCT = /%([0-9a-fA-F]{2})/g
const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * Percent-encoding normalisation (RFC 3986 §6.2.2): escapes of unreserved characters are decoded
 * and other escapes upper-cased. Reserved characters (`%26`, `%2F`, `%3D`, ...) stay encoded, so
 * `a%26b=1` never becomes the two parameters `a` and `b=1`, and `%2F` never becomes a `/`.
 */
export function normalizePercent(s: string): string {
  if (s.indexOf('%') === -1) return s
  return s.replace(PCT, (_, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`
  })
}

/** Splits a raw URL into its path and raw query (without `?`); the fragment is never sent. */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?')
  if (q === -1) return { path: normalizePercent(url), query: '' }
  return { path: normalizePercent(url.slice(0, q)), query: url.slice(q + 1) }
}

function matchesAny(name: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p) return true
  }
  return false
}

/**
 * The name a bracket-notation parser files a parameter under (qs, which is Express's `extended`
 * query parser): `sort[]`, `sort[0]` and `sort%5B%5D` are all `sort`.
 */
function baseName(name: string): string {
  const bracket = name.indexOf('[')
  const encoded = name.indexOf('%5B')
  const at = bracket === -1 ? encoded : encoded === -1 ? bracket : Math.min(bracket, encoded)
  return at === -1 ? name : name.slice(0, at)
}

const byName = (a: readonly [string, ...unknown[]], b: readonly [string, ...unknown[]]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0

/**
 * Canonical query: parameters split on literal `&` only, normalised, filtered by the route's rule,
 * and stably sorted by name so that duplicates keep their order (`a=1&a=2` differs from `a=2&a=1`).
 * Parameters that a bracket-notation parser merges (`sort[]=x&sort=y` becomes `sort: [x, y]`) are
 * sorted by their common name, so they too keep their relative order.
 */
export function canonicalQuery(rawQuery: string, rule: QueryRule = { exclude: [] }): QueryParam[] {
  if (rawQuery.length === 0 || rule === false) return []
  const params: QueryParam[] = []
  let brackets = false
  for (const part of rawQuery.split('&')) {
    if (part.length === 0) continue
    const eq = part.indexOf('=')
    const name = normalizePercent(eq === -1 ? part : part.slice(0, eq))
    const value = eq === -1 ? null : normalizePercent(part.slice(eq + 1))
    if ('include' in rule ? !matchesAny(name, rule.include) : matchesAny(name, rule.exclude)) continue
    params.push([name, value])
    if (!brackets && (name.includes('[') || name.includes('%5B'))) brackets = true
  }
  // Array.prototype.sort is stable, which keeps duplicate names in request order.
  if (!brackets) return params.sort(byName)
  return params
    .map((p): [string, QueryParam] => [baseName(p[0]), p])
    .sort(byName)
    .map(([, p]) => p)
}

/** `name=value&...` of a canonical query, used to match invalidation keys. */
export function serializeQuery(params: readonly QueryParam[]): string {
  return params.map(([n, v]) => (v === null ? n : `${n}=${v}`)).join('&')
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null
  return Array.isArray(v) ? v.join(', ') : v
}

const MAX_MATERIAL_DEPTH = 32
const MAX_MATERIAL_NODES = 10_000

/**
 * Checks that a route's `key` function returned JSON-like material that hashes without loss:
 * `undefined`, functions, symbols, BigInts, non-finite numbers, class instances (Dates, Maps,
 * Buffers) and cycles either throw in `JSON.stringify` or collapse into the same text as another
 * value (`[undefined]` and `[null]`), so they are refused with a TypeError.
 */
export function assertKeyMaterial(value: unknown): asserts value is KeyMaterial {
  let nodes = 0
  const visit = (v: unknown, depth: number, at: string): void => {
    if (++nodes > MAX_MATERIAL_NODES) throw new TypeError(`key material has more than ${MAX_MATERIAL_NODES} values`)
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return
    if (typeof v === 'number') {
      if (Number.isFinite(v)) return
      throw new TypeError(`key material${at} is ${v}, which hashes like null`)
    }
    if (typeof v !== 'object') throw new TypeError(`key material${at} is ${v === undefined ? 'undefined' : `a ${typeof v}`}, which cannot be hashed without loss`)
    if (depth >= MAX_MATERIAL_DEPTH) throw new TypeError(`key material is nested deeper than ${MAX_MATERIAL_DEPTH} levels (or is circular)`)
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(v[i], depth + 1, `${at}[${i}]`)
      return
    }
    const proto: unknown = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) throw new TypeError(`key material${at} is an instance of a class; return plain objects, arrays, strings, numbers, booleans or null`)
    for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], depth + 1, `${at}.${k}`)
  }
  visit(value, 0, '')
}

/** Where a key came from: the hashed key and the readable URL that invalidation matches against. */
export interface KeyParts {
  readonly key: string
  readonly path: string
  /** Path plus canonical query, e.g. `/products?page=2`. */
  readonly url: string
}

/** What a route adds to the request when deriving its key. */
export interface KeyRules {
  /** Which query parameters count. @default every parameter */
  readonly query?: QueryRule
  /** The route's `key` callback's answer, when it has one. */
  readonly custom?: KeyMaterial
  /** The route's scope (see `ResolvedRoute.scope`). @default '' */
  readonly scope?: string
}

/**
 * Derives the primary key. The key is a hash of a structured value, never a joined string
 * (undici#5012). Headers that frameworks use to build absolute URLs (`X-Forwarded-Host`,
 * `X-Forwarded-Proto`, `Forwarded`) are part of the key, so an app that reflects them cannot be
 * poisoned through them.
 */
export function makePrimaryKey(namespace: string, view: RequestView, rules: KeyRules = {}): KeyParts {
  const { custom, scope = '' } = rules
  const { path, query } = splitUrl(view.url)
  const params = canonicalQuery(query, rules.query)
  const h = view.headers
  const material = [
    KEY_VERSION,
    // HEAD is answered from the GET entry (RFC 9110 §9.3.2), so both share a method class.
    view.method === 'HEAD' ? 'GET' : view.method,
    (h.host ?? '').toLowerCase(),
    headerValue(h['x-forwarded-host']),
    headerValue(h['x-forwarded-proto']),
    headerValue(h.forwarded),
    path,
    params,
    custom === undefined ? null : custom,
    // The route's rules for which requests may share an entry, when they are not the cache's.
    scope,
  ]
  const url = params.length === 0 ? path : `${path}?${serializeQuery(params)}`
  return { key: `${namespace}:${KEY_VERSION}:${sha256(JSON.stringify(material))}`, path, url }
}

/**
 * The key of one variant under a primary key: the values of the request headers the stored
 * response's `Vary` names. An absent header (`null`) never equals a present one, even if empty.
 */
export function makeVariantKey(primary: string, names: readonly string[], headers: IncomingHttpHeaders): string {
  const values = names.map((n) => variantValue(n, headers[n]))
  return `${primary}:${sha256(JSON.stringify([names, values]))}`
}

/** Fields whose values compare without regard to case: language tags, content codings, charsets. */
const CASE_INSENSITIVE: ReadonlySet<string> = new Set(['accept-language', 'accept-encoding', 'accept-charset'])
/** What a value needs normalising for: list and parameter separators, whitespace. */
const SPACING = /[,;=\s]/

/**
 * A varied request field's value, normalised so that forms that mean the same select the same
 * variant (RFC 9111 §4.1): list members trimmed and empty ones dropped (several field lines are
 * one list), no whitespace around parameters, and lower case where the field ignores case. A
 * value with a quoted string is only trimmed: its whitespace may matter.
 */
export function variantValue(name: string, v: string | string[] | undefined): string | null {
  const text = headerValue(v)
  if (text === null) return null
  const fold = CASE_INSENSITIVE.has(name)
  // The common case (one token, nothing to normalise) costs one test on every varied hit.
  if (!SPACING.test(text)) return fold ? text.toLowerCase() : text
  if (text.includes('"')) return text.trim()
  let out = ''
  for (const member of text.split(',')) {
    const m = member.trim().replace(/\s*([;=])\s*/g, '$1')
    if (m !== '') out = out === '' ? m : `${out},${m}`
  }
  return fold ? out.toLowerCase() : out
}
