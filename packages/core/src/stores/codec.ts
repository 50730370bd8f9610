import { isUtf8 } from 'node:buffer'
import { createHmac, timingSafeEqual } from 'node:crypto'
import {
  createResponseEntry,
  createVaryEntry,
  NEVER_STORED,
  type Entry,
  type HeaderValue,
  type ResponseEntry,
} from '../model/entry.js'

/*
 * The bytes an Entry is stored as in a shared store (Redis, L2), and the way back.
 *
 * Envelope v3, integers big-endian:
 *
 *   offset  size  field
 *   0       4     magic: 0x43 0x52 0x4C 0x00 ("CRL\0")
 *   4       1     version: 3 (2 is read too: it had no stale windows; 1 also held a framework's
 *                 routeLevel flag, and reads as a miss)
 *   5       1     flags: bit 0 = signed; every other bit must be 0
 *   6       32    HMAC-SHA256, present only when signed
 *   6|38    4     u32 metadata length M (at most 256 KiB)
 *   +4      M     metadata: UTF-8 JSON object (schema below)
 *   +M      ...   body: the raw response bytes, to the end of the value (empty for a vary entry)
 *
 * MAC = HMAC-SHA256(key, magic ‖ version ‖ flags ‖ u32 byteLength(cacheKey) ‖ cacheKey UTF-8
 *                        ‖ u32 M ‖ metadata ‖ body)
 * It binds the cache key: a signed value copied under another key does not verify.
 *
 * Metadata, response entry (every key required except storedAt; no other key allowed):
 *   { kind: 'response', status: 100..599, headers: [[name, string | string[]], ...],
 *     ttl, swr, sie, delta, initialAge: whole seconds ≥ 0, bodyLength, tags: string[], path: '/...',
 *     url: path + query, storedAt?: writer's clock, informational }
 * Metadata, vary entry:
 *   { kind: 'vary', names: string[] (non-empty), ttl, retain, tags, path, url, storedAt? }
 *
 * `ttl` (ms, integer ≥ 0) is the entry's fresh lifetime counted from when it was stored in the
 * cache. `swr` and `sie` (ms, integers ≥ 0) are its stale windows (RFC 5861), and the store keeps
 * it for the longer of them past its freshness (`retain` for a vary marker): the TTL given to Redis
 * is what is left of `ttl` plus that. `delta` (ms, integer ≥ 0) is how long the origin took to
 * produce it, for early refresh. The reader derives the expiry and the age from `ttl`, the
 * retention and the key's PTTL, on its own clock; the writer's clock (`storedAt`) is never used.
 * Version 2 had neither windows nor `retain`, and `ttl` ≥ 1.
 */

/**
 * Why `decodeEntry` refused a value: `'malformed'` (not an envelope, truncated, or metadata of the
 * wrong shape), `'version'` (an envelope version this build does not read), `'unsigned'` (keys are
 * configured and the value carries no MAC), `'signature'` (the MAC matches none of the keys, which
 * includes a signed value copied under another cache key). `'key'` is reserved: v1 never returns it.
 */
export type DecodeFailure = 'malformed' | 'version' | 'unsigned' | 'signature' | 'key'

/** The outcome of `decodeEntry`: an entry, or why the bytes were refused. */
export type DecodeResult = { readonly ok: true; readonly entry: Entry } | { readonly ok: false; readonly reason: DecodeFailure }

/** The envelope version `encodeEntry` writes; `decodeEntry` accepts it and version 2. */
export const ENVELOPE_VERSION = 3

const MAGIC = Buffer.from([0x43, 0x52, 0x4c, 0x00])
const FLAG_SIGNED = 0x01
const PREFIX_BYTES = 6 // magic, version, flags
const MAC_BYTES = 32
const MAX_META_BYTES = 256 * 1024
const MAX_TAGS = 1024
/** RFC 9111 §1.2.2: a cache treats a larger age as 2^31 seconds. Keeps `initialAge * 1000` exact. */
const MAX_AGE = 2 ** 31

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
/** Names that could reach an object's prototype if used as a key. */
const PROTOTYPE_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])
/** Fields Corral never stores, and names that could reach an object's prototype. */
const FORBIDDEN_NAMES: ReadonlySet<string> = new Set([...NEVER_STORED, ...PROTOTYPE_NAMES])
const RESPONSE_KEYS_V2 = new Set([
  'kind', 'status', 'headers', 'ttl', 'initialAge', 'bodyLength', 'tags', 'path', 'url', 'storedAt',
])
const VARY_KEYS_V2 = new Set(['kind', 'names', 'ttl', 'tags', 'path', 'url', 'storedAt'])
const RESPONSE_KEYS = new Set([...RESPONSE_KEYS_V2, 'swr', 'sie', 'delta'])
const VARY_KEYS = new Set([...VARY_KEYS_V2, 'retain'])
/** Longest stale window an envelope may carry: the TTL Redis is given stays a safe integer. */
const MAX_WINDOW_MS = 2 ** 31 * 1000

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n, 0)
  return b
}

/** The MAC of everything the envelope says (`rest` is u32 M ‖ metadata ‖ body), bound to `key`. */
function mac(signingKey: Buffer, prefix: Buffer, key: string, rest: Buffer): Buffer {
  return createHmac('sha256', signingKey)
    .update(prefix)
    .update(u32(Buffer.byteLength(key, 'utf8')))
    .update(key, 'utf8')
    .update(rest)
    .digest()
}

/**
 * Bytes for `entry` stored under `key`, with the TTL Redis should hold it for (ms, integer ≥ 1);
 * undefined when the entry has already expired at `now`. Signed with `signingKey` when given.
 *
 * Also undefined when the entry could never be decoded (metadata over 256 KiB, more than 1024
 * tags, an initial age over 2^31 s): such an entry stays in L1 only. Headers are written as
 * stored, less Content-Length (the reader recomputes it); the body is written raw after the
 * metadata. Headers are not validated here: `decodeEntry` is the gatekeeper.
 */
export function encodeEntry(
  key: string,
  entry: Entry,
  now: number,
  signingKey: Buffer | undefined,
): { bytes: Buffer; ttlMs: number } | undefined {
  // Rounded down: the L2 copy never outlives the entry and its stale windows.
  const retain = entry.retainMs
  const ttlMs = Math.floor(entry.expiresAt + retain - now)
  if (!(ttlMs >= 1) || entry.tags.length > MAX_TAGS || !(retain <= MAX_WINDOW_MS)) return undefined
  if (entry.kind === 'response' && entry.initialAge > MAX_AGE) return undefined
  const ttl = Math.max(0, Math.floor(entry.expiresAt - now) + Math.max(0, Math.floor(now - entry.storedAt)))
  let json: string
  let body: Buffer | undefined
  if (entry.kind === 'response') {
    const headers: [string, HeaderValue][] = []
    for (const name of Object.keys(entry.headers)) {
      if (name === 'content-length') continue
      headers.push([name, entry.headers[name] as HeaderValue])
    }
    json = JSON.stringify({
      kind: 'response',
      status: entry.status,
      headers,
      ttl,
      swr: entry.staleWhileRevalidateMs,
      sie: entry.staleIfErrorMs,
      delta: entry.computeMs,
      initialAge: entry.initialAge,
      bodyLength: entry.body.length,
      tags: entry.tags,
      path: entry.path,
      url: entry.url,
      storedAt: entry.storedAt,
    })
    body = entry.body
  } else {
    json = JSON.stringify({
      kind: 'vary',
      names: entry.names,
      ttl,
      retain,
      tags: entry.tags,
      path: entry.path,
      url: entry.url,
      storedAt: entry.storedAt,
    })
  }
  const metaLen = Buffer.byteLength(json, 'utf8')
  if (metaLen > MAX_META_BYTES) return undefined

  const signed = signingKey !== undefined
  const restAt = PREFIX_BYTES + (signed ? MAC_BYTES : 0)
  const metaAt = restAt + 4
  const bodyAt = metaAt + metaLen
  const bytes = Buffer.allocUnsafe(bodyAt + (body?.length ?? 0))
  MAGIC.copy(bytes, 0)
  bytes[4] = ENVELOPE_VERSION
  bytes[5] = signed ? FLAG_SIGNED : 0
  bytes.writeUInt32BE(metaLen, restAt)
  bytes.write(json, metaAt, metaLen, 'utf8')
  if (body) body.copy(bytes, bodyAt)
  if (signed) {
    mac(signingKey, bytes.subarray(0, PREFIX_BYTES), key, bytes.subarray(restAt)).copy(bytes, PREFIX_BYTES)
  }
  return { bytes, ttlMs }
}

const MALFORMED: DecodeResult = Object.freeze({ ok: false, reason: 'malformed' })
const fail = (reason: DecodeFailure): DecodeResult => (reason === 'malformed' ? MALFORMED : { ok: false, reason })

/**
 * Decodes bytes read from `key`. `remainingMs` is the TTL Redis reports for the key (PTTL); expiry
 * and age are computed on the reader's clock `now` from it, never from the writer's clock. With
 * `verifyKeys` non-empty, only entries signed by one of them are accepted.
 *
 * The bytes are untrusted: anything but a well-formed envelope with metadata of exactly the
 * expected shape is refused, and nothing here throws. Without `verifyKeys` there is no integrity:
 * a tampered value that still parses is accepted, so configure signing keys whenever others can
 * write to the store.
 *
 * The entry expires at `now + remainingMs`, with `remainingMs` capped at the lifetime the metadata
 * records (a TTL extended behind the writer's back does not extend the entry). A `remainingMs`
 * that is not positive (0, PTTL's −1 for a key without expiry, −2 for a missing key) gives an
 * entry that expired at `now − 1`: the cache's expiry check drops it, and a value stored without
 * a TTL is never served.
 */
export function decodeEntry(
  key: string,
  bytes: Buffer,
  remainingMs: number,
  now: number,
  verifyKeys: readonly Buffer[],
): DecodeResult {
  try {
    return decode(key, bytes, remainingMs, now, verifyKeys)
  } catch {
    // Nothing above is expected to throw; this keeps the promise for inputs nobody thought of.
    return MALFORMED
  }
}

function decode(key: string, bytes: Buffer, remainingMs: number, now: number, verifyKeys: readonly Buffer[]): DecodeResult {
  if (bytes.length < PREFIX_BYTES || MAGIC.compare(bytes, 0, 4) !== 0) return MALFORMED
  const version = bytes[4]
  if (version !== ENVELOPE_VERSION && version !== 2) return fail('version')
  const v2 = version === 2
  const flags = bytes[5] as number
  if ((flags & ~FLAG_SIGNED) !== 0) return MALFORMED
  const signed = (flags & FLAG_SIGNED) !== 0
  const restAt = PREFIX_BYTES + (signed ? MAC_BYTES : 0)
  if (bytes.length < restAt + 4) return MALFORMED
  const metaLen = bytes.readUInt32BE(restAt)
  const metaAt = restAt + 4
  const bodyAt = metaAt + metaLen
  if (metaLen > MAX_META_BYTES || bodyAt > bytes.length) return MALFORMED

  if (verifyKeys.length > 0) {
    if (!signed) return fail('unsigned')
    const given = bytes.subarray(PREFIX_BYTES, restAt)
    const prefix = bytes.subarray(0, PREFIX_BYTES)
    const rest = bytes.subarray(restAt)
    let verified = false
    for (const k of verifyKeys) {
      if (timingSafeEqual(mac(k, prefix, key, rest), given)) {
        verified = true
        break
      }
    }
    if (!verified) return fail('signature')
  }

  const metaBytes = bytes.subarray(metaAt, bodyAt)
  if (!isUtf8(metaBytes)) return MALFORMED
  let meta: unknown
  try {
    meta = JSON.parse(metaBytes.toString('utf8'))
  } catch {
    return MALFORMED
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return MALFORMED
  const m = meta as Record<string, unknown>
  const kind = m.kind
  const allowed = kind === 'response' ? (v2 ? RESPONSE_KEYS_V2 : RESPONSE_KEYS) : kind === 'vary' ? (v2 ? VARY_KEYS_V2 : VARY_KEYS) : undefined
  if (!allowed) return MALFORMED
  for (const k of Object.keys(m)) if (!allowed.has(k)) return MALFORMED

  // Fields common to both kinds.
  const { ttl, tags, path, url, storedAt } = m
  if (!isInt(ttl, v2 ? 1 : 0)) return MALFORMED
  // The stale windows (none before v3); the store keeps the entry for the longer one.
  const swr = v2 ? 0 : m.swr
  const sie = v2 ? 0 : m.sie
  const retainField = v2 ? 0 : m.retain
  const delta = v2 ? 0 : m.delta
  if (kind === 'response' && !(isInt(swr, 0) && isInt(sie, 0) && swr <= MAX_WINDOW_MS && sie <= MAX_WINDOW_MS && isInt(delta, 0) && delta <= MAX_WINDOW_MS)) return MALFORMED
  if (kind === 'vary' && !(isInt(retainField, 0) && retainField <= MAX_WINDOW_MS)) return MALFORMED
  const retain = kind === 'response' ? Math.max(swr as number, sie as number) : (retainField as number)
  if (!Array.isArray(tags) || tags.length > MAX_TAGS || !tags.every((t) => typeof t === 'string')) return MALFORMED
  if (typeof path !== 'string' || !path.startsWith('/')) return MALFORMED
  if (typeof url !== 'string' || !url.startsWith(path)) return MALFORMED
  if (storedAt !== undefined && !(typeof storedAt === 'number' && Number.isFinite(storedAt))) return MALFORMED

  // Reader's clock only. What is left of its freshness is the TTL less the retention (capped at
  // `ttl`: a TTL extended behind the writer's back extends nothing); it has been in the cache for
  // (ttl − that). A key without a TTL is expired, and past every window.
  const kept = remainingMs > 0
  const remaining = kept ? Math.min(remainingMs - retain, ttl) : -1
  const expiresAt = now + remaining
  const stored = now - Math.max(0, ttl - remaining)
  const windows = kept ? { staleWhileRevalidateMs: swr as number, staleIfErrorMs: sie as number } : { staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }

  if (kind === 'vary') {
    const names = m.names
    if (bodyAt !== bytes.length) return MALFORMED
    if (!Array.isArray(names) || names.length === 0) return MALFORMED
    const seen = new Set<string>()
    for (const n of names) {
      if (typeof n !== 'string' || !TOKEN.test(n) || PROTOTYPE_NAMES.has(n)) {
        return MALFORMED
      }
      if (seen.has(n)) return MALFORMED
      seen.add(n)
    }
    // createVaryEntry takes its timing and routing fields from a variant; hand it a stand-in
    // so that the marker (its size in particular) is built exactly as a fresh one is.
    const of: ResponseEntry = {
      kind: 'response',
      status: 200,
      headers: NO_HEADERS,
      notModifiedHeaders: NO_HEADERS,
      body: NO_BODY,
      storedAt: stored,
      expiresAt,
      staleWhileRevalidateMs: kept ? retain : 0,
      staleIfErrorMs: 0,
      retainMs: kept ? retain : 0,
      computeMs: 0,
      initialAge: 0,
      etag: undefined,
      lastModified: undefined,
      tags: tags as string[],
      path,
      url,
      size: 0,
    }
    return { ok: true, entry: createVaryEntry(names as string[], of, undefined) }
  }

  const { status, initialAge, bodyLength } = m
  if (!isInt(status, 100) || status > 599) return MALFORMED
  if (!isInt(initialAge, 0) || initialAge > MAX_AGE) return MALFORMED
  if (!isInt(bodyLength, 0) || bodyAt + bodyLength !== bytes.length) return MALFORMED
  const headers = readHeaders(m.headers)
  if (!headers) return MALFORMED

  const entry = createResponseEntry({
    status,
    headers,
    // No copy: the entry answers one response, unless L1 keeps it, which copies what it keeps
    // (MemoryStore's body arena): `bytes` may be a slice of a much larger socket buffer.
    body: bytes.subarray(bodyAt),
    storedAt: stored,
    // createResponseEntry sets expiresAt = storedAt + lifetimeMs − initialAge·1000.
    lifetimeMs: expiresAt - stored + initialAge * 1000,
    initialAge,
    computeMs: delta as number,
    ...windows,
    tags: tags as string[],
    path,
    url,
  })
  return { ok: true, entry }
}

const NO_HEADERS: Readonly<Record<string, HeaderValue>> = Object.freeze(Object.create(null) as Record<string, HeaderValue>)
const NO_BODY = Buffer.alloc(0)

function isInt(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min
}

/** `[[name, value], ...]` into a plain record, or undefined when anything is off. */
function readHeaders(v: unknown): Record<string, HeaderValue> | undefined {
  if (!Array.isArray(v)) return undefined
  // A plain object (compact in V8), safe because the names are validated tokens and none of
  // them is `__proto__`, `constructor` or `prototype` (checked below), so none reaches a prototype.
  const out: Record<string, HeaderValue> = {}
  for (const pair of v as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined
    const name: unknown = pair[0]
    const value: unknown = pair[1]
    if (typeof name !== 'string' || !TOKEN.test(name) || FORBIDDEN_NAMES.has(name)) return undefined
    if (Object.hasOwn(out, name)) return undefined
    if (typeof value === 'string') {
      if (!FIELD_VALUE.test(value)) return undefined
      out[name] = value
    } else if (Array.isArray(value)) {
      if (value.length === 0) return undefined
      for (const s of value as unknown[]) if (typeof s !== 'string' || !FIELD_VALUE.test(s)) return undefined
      out[name] = value as string[]
    } else return undefined
  }
  return out
}
