import type { OutgoingHttpHeaders } from 'node:http'

/** Header values as they are written: a string, or a list for repeated fields. */
export type HeaderValue = string | readonly string[]
export type StoredHeaders = Readonly<Record<string, HeaderValue>>

/** A stored response: everything needed to answer a request without touching the origin. */
export interface ResponseEntry {
  readonly kind: 'response'
  readonly status: number
  /** Filtered and ready to write: no hop-by-hop fields, no Age, Content-Length matches `body`. */
  readonly headers: StoredHeaders
  /** The fields a 304 carries (RFC 9110 §15.4.5), ready to write (built when asked for). */
  readonly notModifiedHeaders: StoredHeaders
  readonly body: Buffer
  /** Clock time (ms) when stored. */
  readonly storedAt: number
  /** Clock time (ms) when its freshness ends. */
  readonly expiresAt: number
  /** How long past `expiresAt` it may be served while a refresh runs (RFC 5861; ms, 0: never). */
  readonly staleWhileRevalidateMs: number
  /** How long past `expiresAt` it may be served instead of an origin error (RFC 5861; ms, 0: never). */
  readonly staleIfErrorMs: number
  /** How long past `expiresAt` a store keeps it: the longer stale window (ms). */
  readonly retainMs: number
  /** How long the origin took to produce it (ms): what early refresh (XFetch) weighs. */
  readonly computeMs: number
  /** The origin's `Age` in seconds; a hit's `Age` adds the time spent in the cache. */
  readonly initialAge: number
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  readonly tags: readonly string[]
  /** Path of the request, for invalidation by key and prefix. */
  readonly path: string
  /** Path plus canonical query, for invalidation by key. */
  readonly url: string
  /** Approximate bytes held, for the L1 byte budget. */
  readonly size: number
}

/** Marks a primary key whose response varies: the variant lives under a key derived from `names`. */
export interface VaryEntry {
  readonly kind: 'vary'
  readonly names: readonly string[]
  readonly storedAt: number
  readonly expiresAt: number
  /** How long past `expiresAt` a store keeps it: as long as the variants it leads to (ms). */
  readonly retainMs: number
  readonly tags: readonly string[]
  readonly path: string
  readonly url: string
  readonly size: number
}

export type Entry = ResponseEntry | VaryEntry

/**
 * Fields an entry never holds: RFC 9110 §7.6.1 hop-by-hop fields, and those recomputed on every
 * hit or private to one user. The codec refuses a stored entry that has one.
 */
export const NEVER_STORED: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'age', 'content-length', 'set-cookie',
])
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']
// What an entry costs beyond its body and header strings, measured (bench: memory): the entry
// object, the Buffer and ArrayBuffer objects, the allocation of the body, the LRU and index
// slots, and the key. Counting it keeps the process within `maxBytes` plus a fixed baseline.
// (In MemoryStore a body is a view into a slab of its body arena: no ArrayBuffer or allocation of
// its own, but an owner slot and up to 7 bytes of alignment, which cost less than those.)
const ENTRY_OVERHEAD = 1280
/** A tag's slot in the entry's list and in the tag index (a Map slot, or a Set member), beyond its characters. */
const TAG_OVERHEAD = 96

/** Bytes the tags of one entry cost in L1: the strings (two bytes a character, to be safe) and their index slots. */
export function tagsSize(tags: readonly string[]): number {
  let size = 0
  for (const t of tags) size += TAG_OVERHEAD + 2 * t.length
  return size
}

function text(v: OutgoingHttpHeaders[string]): HeaderValue | undefined {
  if (v === undefined) return undefined
  if (Array.isArray(v)) return v.map(String)
  return String(v)
}

/**
 * Filters the origin's headers into what a hit replays: hop-by-hop fields and the fields the
 * Connection header names are dropped (RFC 9111 §3.1), as are `exclude` (the cache status header
 * and tag headers).
 */
export function storableHeaders(headers: OutgoingHttpHeaders, exclude: ReadonlySet<string>): Record<string, HeaderValue> {
  const connection = text(headers.connection)
  const named = new Set(
    (typeof connection === 'string' ? connection : (connection?.join(',') ?? ''))
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
  // A plain object (V8 keeps it compact, unlike a null-prototype one, which costs ~200 bytes more
  // per entry); the one name that could reach its prototype is dropped.
  const out: Record<string, HeaderValue> = {}
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase()
    if (NEVER_STORED.has(lower) || named.has(lower) || exclude.has(lower) || lower === '__proto__') continue
    const v = text(headers[name])
    if (v !== undefined) out[lower] = v
  }
  return out
}

/**
 * Fields a 304 does not change in the stored response (RFC 9111 §3.2, §4.3.4): those that
 * describe the stored body as it is (its length, encoding, range and digest) and the validator it
 * was matched on.
 */
const KEPT_ON_304: ReadonlySet<string> = new Set(['content-length', 'content-encoding', 'content-range', 'content-md5', 'etag'])

/**
 * The stored response's headers freshened by a 304 that validated it: each field the 304 carries
 * (already filtered by `storableHeaders`) replaces the stored one, except those in `KEPT_ON_304`.
 */
export function freshenedHeaders(stored: StoredHeaders, fromNotModified: StoredHeaders): Record<string, HeaderValue> {
  const out: Record<string, HeaderValue> = { ...stored }
  for (const name of Object.keys(fromNotModified)) {
    if (!KEPT_ON_304.has(name)) out[name] = fromNotModified[name] as HeaderValue
  }
  return out
}

export interface EntryInit {
  status: number
  headers: Record<string, HeaderValue>
  body: Buffer
  storedAt: number
  lifetimeMs: number
  initialAge: number
  /** @default 0 */
  staleWhileRevalidateMs?: number
  /** @default 0 */
  staleIfErrorMs?: number
  /** @default 0 */
  computeMs?: number
  tags: readonly string[]
  path: string
  url: string
}

/**
 * A copy of `bytes` that owns its memory (`bytes` itself when it does). Small Buffers are usually
 * slices of Node's shared 8 KiB pool, and bodies read from L2 slices of a socket buffer; keeping one
 * would keep the whole allocation alive while the byte budget counts only the slice.
 */
export function ownedBuffer(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) return bytes
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength)
  bytes.copy(copy)
  return copy
}

/**
 * A stored response. A class so that every entry shares one compact shape, and so that the 304
 * header set, needed only when a validator matches, is built on demand instead of being kept in
 * every entry.
 */
class StoredResponse implements ResponseEntry {
  constructor(
    readonly status: number,
    readonly headers: StoredHeaders,
    /** Read-only to everyone but `replaceBody`. */
    public body: Buffer,
    readonly storedAt: number,
    readonly expiresAt: number,
    readonly staleWhileRevalidateMs: number,
    readonly staleIfErrorMs: number,
    readonly computeMs: number,
    readonly initialAge: number,
    readonly etag: string | undefined,
    readonly lastModified: string | undefined,
    readonly tags: readonly string[],
    readonly path: string,
    readonly url: string,
    readonly size: number,
  ) {}

  get kind(): 'response' {
    return 'response'
  }

  get retainMs(): number {
    return Math.max(this.staleWhileRevalidateMs, this.staleIfErrorMs)
  }

  get notModifiedHeaders(): StoredHeaders {
    const out: Record<string, HeaderValue> = {}
    for (const f of NOT_MODIFIED_FIELDS) {
      const v = this.headers[f]
      if (v !== undefined) out[f] = v
    }
    return out
  }
}

/**
 * A stored response for `init`, with `init.body` as it is: no copy. The store that keeps the
 * entry takes its own copy when it needs one (`MemoryStore` copies the body into its body arena
 * once, on its way into L1; a shared store encodes it), so a body is copied once, not twice.
 */
export function createResponseEntry(init: EntryInit): ResponseEntry {
  const headers = init.headers
  const body = init.body
  // 204 and 304 have no body and must not carry Content-Length (RFC 9110 §8.6).
  if (init.status !== 204 && init.status !== 304) headers['content-length'] = String(body.length)
  let size = ENTRY_OVERHEAD + body.length + (init.url.length + init.path.length) * 2 + tagsSize(init.tags)
  for (const name of Object.keys(headers)) size += name.length + String(headers[name]).length + 32
  const etag = headers.etag
  const lastModified = headers['last-modified']
  return new StoredResponse(
    init.status,
    headers,
    body,
    init.storedAt,
    init.storedAt + init.lifetimeMs - init.initialAge * 1000,
    init.staleWhileRevalidateMs ?? 0,
    init.staleIfErrorMs ?? 0,
    init.computeMs ?? 0,
    init.initialAge,
    typeof etag === 'string' ? etag : undefined,
    typeof lastModified === 'string' ? lastModified : undefined,
    init.tags,
    init.path,
    init.url,
    size,
  )
}

/**
 * Points `e` at `body`, another copy of the same bytes, without making a new entry (so that a
 * store's LRU order, TTL and anything keyed by the entry object are unchanged). Internal: only for
 * the store that holds `e`, moving its body into (or within) its own memory (`MemoryStore`'s body
 * arena); a reader that already took the old `body` sends the same bytes. False when `e` was not
 * made by `createResponseEntry` (its body cannot be replaced).
 */
export function replaceBody(e: ResponseEntry, body: Buffer): boolean {
  if (!(e instanceof StoredResponse) || body.length !== e.body.length) return false
  e.body = body
  return true
}

/**
 * The entry as a soft purge leaves it: the same response, its freshness ended at `now` (if it had
 * not already), its stale windows counted from then. Other entries are returned as they are.
 */
export function expiredAt(e: Entry, now: number): Entry {
  if (e.kind !== 'response' || e.expiresAt <= now) return e
  return new StoredResponse(
    e.status, e.headers, e.body, e.storedAt, now, e.staleWhileRevalidateMs, e.staleIfErrorMs, e.computeMs,
    e.initialAge, e.etag, e.lastModified, e.tags, e.path, e.url, e.size,
  )
}

export function createVaryEntry(names: readonly string[], of: ResponseEntry, previous: Entry | undefined): VaryEntry {
  // Keep the marker as long as the longest-lived variant it leads to, stale windows included.
  const same = previous?.kind === 'vary' && sameNames(previous.names, names)
  const expiresAt = same ? Math.max(previous.expiresAt, of.expiresAt) : of.expiresAt
  const keptUntil = same ? Math.max(previous.expiresAt + previous.retainMs, of.expiresAt + of.retainMs) : of.expiresAt + of.retainMs
  return {
    kind: 'vary',
    names,
    storedAt: of.storedAt,
    expiresAt,
    retainMs: keptUntil - expiresAt,
    tags: of.tags,
    path: of.path,
    url: of.url,
    size: ENTRY_OVERHEAD + (of.url.length + of.path.length) * 2 + names.join().length + tagsSize(of.tags),
  }
}

export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i])
}

/** `Age` of a hit, in whole seconds (RFC 9111 §4.2.3). */
export function ageOf(entry: ResponseEntry, now: number): number {
  return entry.initialAge + Math.max(0, Math.floor((now - entry.storedAt) / 1000))
}
