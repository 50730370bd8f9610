import { isUtf8 } from 'node:buffer'
import { createHmac, timingSafeEqual } from 'node:crypto'
import {
  createResponseEntry,
  createVaryEntry,
  NEVER_STORED,
  ownedBuffer,
  type Entry,
  type HeaderValue,
  type ResponseEntry,
} from '../model/entry.js'

/*
 * The bytes an Entry is stored as in a shared store (Redis, L2), and the way back.
 *
 * Envelope v1, integers big-endian:
 *
 *   offset  size  field
 *   0       4     magic: 0x43 0x52 0x4C 0x00 ("CRL\0")
 *   4       1     version: 2 (version 1 also held a framework's routeLevel flag; it reads as a miss)
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
 *     ttl, initialAge: whole seconds ≥ 0, bodyLength, tags: string[], path: '/...',
 *     url: path + query, storedAt?: writer's clock, informational }
 * Metadata, vary entry:
 *   { kind: 'vary', names: string[] (non-empty), ttl, tags, path, url, storedAt? }
 *
 * `ttl` (ms, integer ≥ 1) is the entry's lifetime counted from when it was stored in the cache: the
 * TTL given to Redis plus the time the entry had already been cached when it was encoded (0 when
 * it is encoded as it is stored). The reader derives both the expiry and the age from it and the
 * key's PTTL, on its own clock; the writer's clock (`storedAt`) is never used.
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

/** The envelope version `encodeEntry` writes and `decodeEntry` accepts. */
export const ENVELOPE_VERSION = 2

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
const RESPONSE_KEYS = new Set([
  'kind', 'status', 'headers', 'ttl', 'initialAge', 'bodyLength', 'tags', 'path', 'url', 'storedAt',
])
const VARY_KEYS = new Set(['kind', 'names', 'ttl', 'tags', 'path', 'url', 'storedAt'])

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
  // Rounded down: the L2 copy never outlives the entry.
  const ttlMs = Math.floor(entry.expiresAt - now)
  if (!(ttlMs >= 1) || entry.tags.length > MAX_TAGS) return undefined
  if (entry.kind === 'response' && entry.initialAge > MAX_AGE) return undefined
  const ttl = ttlMs + Math.max(0, Math.floor(now - entry.storedAt))
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
  if (bytes[4] !== ENVELOPE_VERSION) return fail('version')
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
  const allowed = kind === 'response' ? RESPONSE_KEYS : kind === 'vary' ? VARY_KEYS : undefined
  if (!allowed) return MALFORMED
  for (const k of Object.keys(m)) if (!allowed.has(k)) return MALFORMED

  // Fields common to both kinds.
  const { ttl, tags, path, url, storedAt } = m
  if (!isInt(ttl, 1)) return MALFORMED
  if (!Array.isArray(tags) || tags.length > MAX_TAGS || !tags.every((t) => typeof t === 'string')) return MALFORMED
  if (typeof path !== 'string' || !path.startsWith('/')) return MALFORMED
  if (typeof url !== 'string' || !url.startsWith(path)) return MALFORMED
  if (storedAt !== undefined && !(typeof storedAt === 'number' && Number.isFinite(storedAt))) return MALFORMED

  // Reader's clock only: the entry has been in the cache for (ttl − remaining).
  const remaining = remainingMs > 0 ? Math.min(remainingMs, ttl) : -1
  const expiresAt = now + remaining
  const stored = now - Math.max(0, ttl - remaining)

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
    // A copy: `bytes` may be a slice of a much larger socket buffer.
    body: ownedBuffer(bytes.subarray(bodyAt)),
    storedAt: stored,
    // createResponseEntry sets expiresAt = storedAt + lifetimeMs − initialAge·1000.
    lifetimeMs: expiresAt - stored + initialAge * 1000,
    initialAge,
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
