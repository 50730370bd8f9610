import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { decodeEntry, encodeEntry, ENVELOPE_VERSION, type DecodeResult } from '../src/stores/codec.js'
import {
  ageOf,
  createResponseEntry,
  createVaryEntry,
  type Entry,
  type HeaderValue,
  type ResponseEntry,
  type VaryEntry,
} from '../src/model/entry.js'

const T = 1_700_000_000_000
const HOUR = 3_600_000
const KEY = 'corral:v1:GET:example.com/products?id=1'
const KEY_A = Buffer.from('key-a-0123456789abcdef0123456789')
const KEY_B = Buffer.from('key-b-0123456789abcdef0123456789')
const MAGIC = Buffer.from([0x43, 0x52, 0x4c, 0x00])

function responseEntry(over: Partial<{ status: number; headers: Record<string, HeaderValue>; body: Buffer; storedAt: number; lifetimeMs: number; initialAge: number; tags: string[]; swr: number; sie: number; computeMs: number }> = {}): ResponseEntry {
  const headers: Record<string, HeaderValue> = Object.create(null)
  Object.assign(
    headers,
    over.headers ?? {
      'content-type': 'application/octet-stream',
      'cache-control': 'public, max-age=60',
      etag: '"v1-abc"',
      'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT',
      date: 'Tue, 14 Nov 2023 22:13:20 GMT',
      vary: 'accept-encoding',
      link: ['</a.css>; rel=preload', '</b.js>; rel=preload'],
      'x-latin1': 'caf\u00e9',
    },
  )
  return createResponseEntry({
    status: over.status ?? 200,
    headers,
    body: over.body ?? Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a, 0x80, 0x7f, 0x22, 0x5c]),
    storedAt: over.storedAt ?? T,
    lifetimeMs: over.lifetimeMs ?? 60_000,
    initialAge: over.initialAge ?? 0,
    staleWhileRevalidateMs: over.swr ?? 0,
    staleIfErrorMs: over.sie ?? 0,
    computeMs: over.computeMs ?? 0,
    tags: over.tags ?? ['product:1', 'products'],
    path: '/products',
    url: '/products?id=1',
  })
}

function ok(r: DecodeResult): Entry {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}`)
  return r.entry
}
function okResponse(r: DecodeResult): ResponseEntry {
  const e = ok(r)
  if (e.kind !== 'response') throw new Error('expected a response entry')
  return e
}
function reason(r: DecodeResult): string {
  return r.ok ? 'ok' : r.reason
}
function encoded(entry: Entry, now: number, signingKey?: Buffer, key = KEY): Buffer {
  const out = encodeEntry(key, entry, now, signingKey)
  if (!out) throw new Error('expected bytes')
  return out.bytes
}
function isPolluted(): boolean {
  return ({} as Record<string, unknown>).polluted !== undefined || (Object.prototype as Record<string, unknown>).polluted !== undefined
}

/**
 * An envelope assembled by hand from arbitrary metadata text, independently of codec.ts, so that
 * each check below targets exactly one rule.
 */
function envelope(
  meta: string | object,
  body: Buffer = Buffer.alloc(0),
  o: { signWith?: Buffer; key?: string; version?: number; flags?: number } = {},
): Buffer {
  const metaBytes = Buffer.from(typeof meta === 'string' ? meta : JSON.stringify(meta), 'utf8')
  const signed = o.signWith !== undefined
  const prefix = Buffer.concat([MAGIC, Buffer.from([o.version ?? ENVELOPE_VERSION, o.flags ?? (signed ? 1 : 0)])])
  const len = Buffer.alloc(4)
  len.writeUInt32BE(metaBytes.length)
  const rest = Buffer.concat([len, metaBytes, body])
  if (!o.signWith) return Buffer.concat([prefix, rest])
  const key = Buffer.from(o.key ?? KEY, 'utf8')
  const keyLen = Buffer.alloc(4)
  keyLen.writeUInt32BE(key.length)
  const mac = createHmac('sha256', o.signWith).update(Buffer.concat([prefix, keyLen, key, rest])).digest()
  return Buffer.concat([prefix, mac, rest])
}

/** Valid response metadata for `body`; each test breaks one thing. */
function meta(body: Buffer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'response',
    status: 200,
    headers: [
      ['content-type', 'text/plain'],
      ['link', ['</a>; rel=preload', '</b>; rel=preload']],
    ],
    ttl: 60_000,
    swr: 0,
    sie: 0,
    delta: 0,
    initialAge: 0,
    bodyLength: body.length,
    tags: ['t'],
    path: '/p',
    url: '/p?q=1',
    ...over,
  }
}
const BODY = Buffer.from('hello world')
const decodeAt = (bytes: Buffer, keys: readonly Buffer[] = [], key = KEY) => decodeEntry(key, bytes, 30_000, T, keys)
const decodeMeta = (m: string | object, body = BODY) => reason(decodeAt(envelope(m, body)))

describe('encodeEntry / decodeEntry round trip', () => {
  it('round-trips a response entry on the reader clock, even with the writer an hour ahead', () => {
    const writer = T + HOUR
    const original = responseEntry({ storedAt: writer, lifetimeMs: 60_000, initialAge: 7 })
    // Written 2 s after it was stored, read 3 s after it was written, by a reader an hour behind.
    const out = encodeEntry(KEY, original, writer + 2_000, undefined)
    expect(out?.ttlMs).toBe(60_000 - 7_000 - 2_000)
    const readerNow = T + 5_000
    const e = okResponse(decodeEntry(KEY, out!.bytes, out!.ttlMs - 3_000, readerNow, []))

    expect(e.status).toBe(200)
    expect(e.body.equals(original.body)).toBe(true)
    expect(e.tags).toEqual(['product:1', 'products'])
    expect([e.path, e.url]).toEqual(['/products', '/products?id=1'])
    expect({ ...e.headers }).toEqual({ ...original.headers })
    expect(e.headers.link).toEqual(['</a.css>; rel=preload', '</b.js>; rel=preload'])
    expect(e.headers['content-length']).toBe(String(original.body.length))
    expect(Object.getPrototypeOf(e.headers)).toBe(Object.prototype)
    expect(e.etag).toBe('"v1-abc"')
    expect(e.lastModified).toBe('Tue, 14 Nov 2023 22:13:20 GMT')
    expect({ ...e.notModifiedHeaders }).toEqual({ ...original.notModifiedHeaders })
    expect(e.size).toBe(original.size)
    expect(e.initialAge).toBe(7)

    // Reader's clock: expires `remaining` from now; has been cached 5 s (2 s before the write, 3 s in Redis).
    expect(e.expiresAt).toBe(readerNow + out!.ttlMs - 3_000)
    expect(e.storedAt).toBe(readerNow - 5_000)
    expect(ageOf(e, readerNow)).toBe(7 + 5)
    expect(ageOf(e, readerNow)).toBe(ageOf(original, writer + 5_000))
    expect(ageOf(e, readerNow + 10_000)).toBe(7 + 15)
  })

  it('keeps an entry in Redis for its longer stale window, and gives it back stale with both windows', () => {
    const original = responseEntry({ lifetimeMs: 60_000, swr: 30_000, sie: 120_000, computeMs: 250 })
    const out = encodeEntry(KEY, original, T + 1_000, undefined)!
    expect(out.ttlMs).toBe(59_000 + 120_000)
    // Read 70 s after it was stored: 10 s past its freshness.
    const e = okResponse(decodeEntry(KEY, out.bytes, out.ttlMs - 69_000, T + 70_000, []))
    expect([e.expiresAt, e.storedAt, e.staleWhileRevalidateMs, e.staleIfErrorMs, e.retainMs, e.computeMs]).toEqual([T + 60_000, T, 30_000, 120_000, 120_000, 250])
    // Still stored (and written) while stale: no-cache entries and stale windows live on.
    const late = encodeEntry(KEY, e, T + 100_000, undefined)!
    expect(late.ttlMs).toBe(80_000)
    const again = okResponse(decodeEntry(KEY, late.bytes, late.ttlMs, T + 100_000, []))
    expect([again.expiresAt, again.storedAt]).toEqual([T + 60_000, T])
    expect(encodeEntry(KEY, e, T + 180_000, undefined)).toBeUndefined()
    // A key without a TTL: expired, and no window lets it be served.
    const none = okResponse(decodeEntry(KEY, out.bytes, -1, T, []))
    expect([none.expiresAt, none.retainMs]).toEqual([T - 1, 0])
  })

  it('writes the body raw after the metadata, without Content-Length in the metadata', () => {
    const original = responseEntry()
    const bytes = encoded(original, T)
    expect(bytes.subarray(0, 4).equals(MAGIC)).toBe(true)
    expect([bytes[4], bytes[5]]).toEqual([ENVELOPE_VERSION, 0])
    const len = bytes.readUInt32BE(6)
    const m = JSON.parse(bytes.subarray(10, 10 + len).toString('utf8')) as { headers: [string, HeaderValue][] }
    expect(Array.isArray(m.headers)).toBe(true)
    expect(m.headers.map(([n]) => n)).not.toContain('content-length')
    expect(bytes.subarray(10 + len).equals(original.body)).toBe(true)
    expect(bytes.length).toBe(10 + len + original.body.length)
  })

  it('round-trips every byte value and a 5 MB body read from a slice of a larger buffer', () => {
    const all = Buffer.alloc(256)
    for (let i = 0; i < 256; i++) all[i] = i
    expect(okResponse(decodeAt(encoded(responseEntry({ body: all }), T))).body.equals(all)).toBe(true)

    const big = randomBytes(5 * 1024 * 1024)
    const bytes = encoded(responseEntry({ body: big }), T, KEY_A)
    const socket = Buffer.concat([randomBytes(1000), bytes, randomBytes(1000)])
    const slice = socket.subarray(1000, 1000 + bytes.length)
    const e = okResponse(decodeAt(slice, [KEY_A]))
    expect(e.body.equals(big)).toBe(true)
    expect(e.headers['content-length']).toBe(String(big.length))
    // The decoded body is a view of the reply (no copy for the one response it answers); what L1
    // keeps is its own copy (test/stores/tiered.test.ts).
    expect(e.body.buffer).toBe(socket.buffer)
  })

  it('round-trips a 204 without adding Content-Length', () => {
    const e = okResponse(decodeAt(encoded(responseEntry({ status: 204, body: Buffer.alloc(0), headers: { 'x-a': 'b' } }), T)))
    expect(e.status).toBe(204)
    expect(e.body.length).toBe(0)
    expect({ ...e.headers }).toEqual({ 'x-a': 'b' })
  })

  it('round-trips a vary entry', () => {
    const variant = responseEntry({ storedAt: T + HOUR })
    const original = createVaryEntry(['accept-encoding', 'accept-language'], variant, undefined)
    const out = encodeEntry(KEY, original, T + HOUR + 1_000, undefined)!
    expect(out.ttlMs).toBe(59_000)
    const e = ok(decodeEntry(KEY, out.bytes, 50_000, T, [])) as VaryEntry
    const expected: VaryEntry = { ...original, storedAt: T - 10_000, expiresAt: T + 50_000 }
    expect(e).toEqual(expected)
  })

  it('keeps a vary marker as long as the longest stale window of its variants', () => {
    const a = responseEntry({ lifetimeMs: 60_000, sie: 100_000 })
    const b = responseEntry({ lifetimeMs: 120_000, swr: 10_000 })
    const marker = createVaryEntry(['accept'], b, createVaryEntry(['accept'], a, undefined))
    expect([marker.expiresAt, marker.retainMs]).toEqual([T + 120_000, 40_000])
    const out = encodeEntry(KEY, marker, T, undefined)!
    expect(out.ttlMs).toBe(160_000)
    const e = ok(decodeEntry(KEY, out.bytes, out.ttlMs, T, [])) as VaryEntry
    expect([e.expiresAt, e.retainMs]).toEqual([T + 120_000, 40_000])
  })

  it('returns undefined for an entry that has expired, and a whole-millisecond TTL otherwise', () => {
    const e = responseEntry({ lifetimeMs: 1_000 })
    expect(encodeEntry(KEY, e, T + 1_000, undefined)).toBeUndefined()
    expect(encodeEntry(KEY, e, T + 5_000, undefined)).toBeUndefined()
    expect(encodeEntry(KEY, e, T + 999, undefined)?.ttlMs).toBe(1)
    expect(encodeEntry(KEY, e, T + 998.5, undefined)?.ttlMs).toBe(1)
    expect(encodeEntry(KEY, e, T + 999.5, undefined)).toBeUndefined()
  })

  it('gives an already expired entry when Redis reports no positive TTL', () => {
    const bytes = encoded(responseEntry(), T)
    for (const remaining of [0, -1, -2]) {
      const e = ok(decodeEntry(KEY, bytes, remaining, T, []))
      expect(e.expiresAt).toBe(T - 1)
      expect(e.storedAt).toBeLessThanOrEqual(T)
    }
  })

  it('never lets the store extend an entry past the lifetime it was written with', () => {
    const bytes = encoded(responseEntry({ lifetimeMs: 60_000 }), T)
    const e = ok(decodeEntry(KEY, bytes, 10 * HOUR, T + HOUR, []))
    expect(e.expiresAt).toBe(T + HOUR + 60_000)
    expect(e.storedAt).toBe(T + HOUR)
  })
})

describe('signing', () => {
  const entry = responseEntry()

  it('round-trips a signed entry and accepts it without keys too', () => {
    const bytes = encoded(entry, T, KEY_A)
    expect(bytes[5]).toBe(1)
    expect(okResponse(decodeAt(bytes, [KEY_A])).body.equals(entry.body)).toBe(true)
    expect(okResponse(decodeAt(bytes, [])).body.equals(entry.body)).toBe(true)
  })

  it('verifies with every key of a rotation', () => {
    const bytes = encoded(entry, T, KEY_A)
    expect(reason(decodeAt(bytes, [KEY_B, KEY_A]))).toBe('ok')
    expect(reason(decodeAt(bytes, [KEY_A, KEY_B]))).toBe('ok')
    expect(reason(decodeAt(bytes, [KEY_B]))).toBe('signature')
  })

  it("refuses an unsigned entry when keys are configured ('unsigned')", () => {
    expect(reason(decodeAt(encoded(entry, T), [KEY_A]))).toBe('unsigned')
  })

  it('refuses a signed value copied under another key', () => {
    const bytes = encoded(entry, T, KEY_A)
    expect(reason(decodeAt(bytes, [KEY_A], KEY + 'x'))).toBe('signature')
    expect(reason(decodeAt(bytes, [KEY_A], 'corral:v1:GET:example.com/admin'))).toBe('signature')
  })

  it('refuses any flipped byte after the flags', () => {
    const bytes = encoded(entry, T, KEY_A)
    for (const at of [6, 37, 38, 41, 42, bytes.length - entry.body.length, bytes.length - 1]) {
      const t = Buffer.from(bytes)
      t[at] = (t[at] as number) ^ 0x01
      expect(reason(decodeAt(t, [KEY_A])), `byte ${at}`).not.toBe('ok')
    }
    const t = Buffer.from(bytes)
    t[t.length - 1] = (t[t.length - 1] as number) ^ 0x40
    expect(reason(decodeAt(t, [KEY_A]))).toBe('signature')
  })

  it('without keys, accepts a tampered body that still parses: integrity needs signing keys', () => {
    const bytes = Buffer.from(encoded(entry, T))
    bytes[bytes.length - 1] = 0x21
    const e = okResponse(decodeAt(bytes))
    expect(e.body.equals(entry.body)).toBe(false)
    expect(e.body[e.body.length - 1]).toBe(0x21)
  })

  it('matches the documented MAC: prefix, key length and key, then everything after the MAC', () => {
    const bytes = encoded(entry, T, KEY_A)
    const len = bytes.readUInt32BE(38)
    const rebuilt = envelope(bytes.subarray(42, 42 + len).toString('utf8'), bytes.subarray(42 + len), { signWith: KEY_A })
    expect(rebuilt.equals(bytes)).toBe(true)
  })

  it('signs and checks the key as UTF-8 bytes', () => {
    const key = 'corral:v1:GET:example.com/caf\u00e9/\u{1f600}'
    const bytes = encoded(entry, T, KEY_A, key)
    expect(reason(decodeAt(bytes, [KEY_A], key))).toBe('ok')
    const m = envelope(meta(BODY), BODY, { signWith: KEY_A, key })
    expect(reason(decodeAt(m, [KEY_A], key))).toBe('ok')
  })
})

describe('decodeEntry on untrusted bytes', () => {
  it('accepts the hand-built baseline that the rule checks below break', () => {
    expect(decodeMeta(meta(BODY))).toBe('ok')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { signWith: KEY_A }), [KEY_A]))).toBe('ok')
  })

  it('never throws and never accepts random bytes', () => {
    let seed = 12345
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const prefixes = [Buffer.alloc(0), MAGIC, Buffer.concat([MAGIC, Buffer.from([1, 0])]), Buffer.concat([MAGIC, Buffer.from([1, 1])])]
    for (let i = 0; i < 4000; i++) {
      const tail = Buffer.alloc(rand(300))
      for (let j = 0; j < tail.length; j++) tail[j] = rand(256)
      const bytes = Buffer.concat([prefixes[i % 4] as Buffer, tail])
      // Often a plausible metadata length, to get past the framing checks.
      const at = bytes[5] === 1 ? 38 : 6
      if (i % 3 === 0 && bytes.length >= at + 4) bytes.writeUInt32BE(rand(bytes.length), at)
      for (const keys of [[], [KEY_A]]) {
        let r: DecodeResult | undefined
        expect(() => (r = decodeAt(bytes, keys))).not.toThrow()
        expect(r?.ok).toBe(false)
      }
    }
  })

  it('refuses every truncation and any extension of a valid envelope', () => {
    const body = Buffer.alloc(300, 0x61)
    for (const signWith of [undefined, KEY_A]) {
      const bytes = encoded(responseEntry({ body }), T, signWith)
      for (let n = 0; n < bytes.length; n++) {
        const cut = bytes.subarray(0, n)
        expect(reason(decodeAt(cut)), `cut at ${n}`).not.toBe('ok')
        if (signWith) expect(reason(decodeAt(cut, [KEY_A]))).not.toBe('ok')
      }
      expect(reason(decodeAt(Buffer.concat([bytes, Buffer.from('x')])))).toBe('malformed')
    }
    const vary = encoded(createVaryEntry(['accept'], responseEntry(), undefined), T)
    for (let n = 0; n < vary.length; n++) expect(reason(decodeAt(vary.subarray(0, n)))).not.toBe('ok')
  })

  it("detects a cut body of an unsigned entry through bodyLength ('malformed')", () => {
    const bytes = encoded(responseEntry({ body: Buffer.alloc(100, 1) }), T)
    expect(reason(decodeAt(bytes.subarray(0, bytes.length - 1)))).toBe('malformed')
    expect(decodeMeta(meta(BODY, { bodyLength: BODY.length + 1 }))).toBe('malformed')
    expect(decodeMeta(meta(BODY, { bodyLength: BODY.length - 1 }))).toBe('malformed')
  })

  it('checks magic, version and flags', () => {
    const good = envelope(meta(BODY), BODY)
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { version: 4 })))).toBe('version')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { version: 0 })))).toBe('version')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { version: 4 }), [KEY_A]))).toBe('version')
    // Version 2 (no stale windows) is read, without them; the v3 fields are refused there.
    const { swr: _swr, sie: _sie, delta: _delta, ...v2 } = meta(BODY)
    expect(reason(decodeAt(envelope(v2, BODY, { version: 2 })))).toBe('ok')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { version: 2 })))).toBe('malformed')
    expect(reason(decodeAt(envelope({ ...v2, ttl: 0 }, BODY, { version: 2 })))).toBe('malformed')
    // Version 1 (before the framework-specific routeLevel flag left the format) is a miss.
    expect(reason(decodeAt(envelope({ ...meta(BODY), routeLevel: false }, BODY, { version: 1 })))).toBe('version')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { flags: 0x02 })))).toBe('malformed')
    expect(reason(decodeAt(envelope(meta(BODY), BODY, { flags: 0x80 })))).toBe('malformed')
    for (let i = 0; i < 4; i++) {
      const t = Buffer.from(good)
      t[i] = (t[i] as number) ^ 0x20
      expect(reason(decodeAt(t))).toBe('malformed')
    }
    expect(reason(decodeAt(Buffer.from('{"kind":"response"}')))).toBe('malformed')
  })

  it('refuses __proto__, constructor and prototype keys anywhere, and pollutes nothing', () => {
    const base = JSON.stringify(meta(BODY))
    const texts = [
      // top level
      base.replace('{', '{"__proto__":{"polluted":1},'),
      base.replace('{', '{"constructor":{"prototype":{"polluted":1}},'),
      base.replace('{', '{"prototype":{"polluted":1},'),
      // as header names, alone or among valid ones
      base.replace('"headers":[', '"headers":[["__proto__","x"],'),
      base.replace('"headers":[', '"headers":[["constructor","x"],'),
      base.replace('"headers":[', '"headers":[["prototype","x"],'),
      // pairs and values that are objects
      base.replace('"headers":[', '"headers":[{"__proto__":{"polluted":1}},'),
      base.replace('"headers":[', '"headers":[["x-a",{"__proto__":{"polluted":1}}],'),
      base.replace(/"headers":\[.*?\]\]/, '"headers":{"__proto__":{"polluted":1}}'),
      base.replace(/"headers":\[.*?\]\]/, '"headers":{"constructor":{"prototype":{"polluted":1}}}'),
      base.replace('"tags":["t"]', '"tags":{"__proto__":{"polluted":1}}'),
    ]
    for (const text of texts) {
      expect(text).not.toBe(base)
      expect(decodeMeta(text), text).toBe('malformed')
      expect(reason(decodeAt(envelope(text, BODY, { signWith: KEY_A }), [KEY_A])), text).toBe('malformed')
      expect(isPolluted()).toBe(false)
    }
    const vary = JSON.stringify({ kind: 'vary', names: ['accept'], ttl: 1000, retain: 0, tags: [], path: '/', url: '/' })
    expect(decodeMeta(vary, Buffer.alloc(0))).toBe('ok')
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      expect(decodeMeta(vary.replace('"accept"', `"${name}"`), Buffer.alloc(0))).toBe('malformed')
    }
    expect(decodeMeta(vary.replace('{', '{"__proto__":{"polluted":1},'), Buffer.alloc(0))).toBe('malformed')
    expect(({} as Record<string, unknown>).polluted).toBe(undefined)
  })

  it('refuses header values with CR, LF, NUL or characters beyond Latin-1', () => {
    for (const bad of ['a\r\nx-injected: 1', 'a\n', 'a\r', 'a\u0000b', 'a\u007fb', '\u0100', '\u{1f600}']) {
      expect(decodeMeta(meta(BODY, { headers: [['x-a', bad]] })), JSON.stringify(bad)).toBe('malformed')
      expect(decodeMeta(meta(BODY, { headers: [['x-a', ['ok', bad]]] })), JSON.stringify(bad)).toBe('malformed')
    }
    expect(decodeMeta(meta(BODY, { headers: [['x-a', 'tab\there, caf\u00e9 ~']] }))).toBe('ok')
    expect(decodeMeta(meta(BODY, { headers: [['x-a', '']] }))).toBe('ok')
  })

  it('refuses header names that are not lower-case tokens', () => {
    for (const bad of ['Content-Type', 'X-A', 'x a', 'x:a', '', 'x\r\n', 'x"', 'caf\u00e9', ' x']) {
      expect(decodeMeta(meta(BODY, { headers: [[bad, 'v']] })), JSON.stringify(bad)).toBe('malformed')
    }
    expect(decodeMeta(meta(BODY, { headers: [["x!#$%&'*+.^_`|~09az-", 'v']] }))).toBe('ok')
  })

  it('refuses fields Corral never stores', () => {
    const forbidden = [
      'content-length', 'set-cookie', 'transfer-encoding', 'connection', 'keep-alive', 'age', 'te', 'trailer',
      'upgrade', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
    ]
    for (const name of forbidden) {
      expect(decodeMeta(meta(BODY, { headers: [[name, 'v']] })), name).toBe('malformed')
    }
    expect(decodeMeta(meta(BODY, { headers: [['set-cookie', ['a=1', 'b=2']]] }))).toBe('malformed')
  })

  it('refuses malformed header lists', () => {
    const cases: unknown[] = [
      { 'content-type': 'text/plain' }, // an object, not pairs
      [['x-a', 'v'], ['x-a', 'w']], // duplicate
      [['x-a']],
      [['x-a', 'v', 'w']],
      [['x-a', []]],
      [['x-a', ['v', 1]]],
      [['x-a', 1]],
      [['x-a', null]],
      [['x-a', [['v']]]],
      ['x-a'],
      [null],
      'content-type: text/plain',
    ]
    for (const headers of cases) expect(decodeMeta(meta(BODY, { headers })), JSON.stringify(headers)).toBe('malformed')
    expect(decodeMeta(meta(BODY, { headers: [] }))).toBe('ok')
  })

  it('checks status, numbers, tags, path and url', () => {
    const bad: Record<string, unknown>[] = [
      { status: 42 }, { status: 99 }, { status: 600 }, { status: 200.5 }, { status: '200' }, { status: null },
      { ttl: -5 }, { ttl: 1.5 }, { ttl: '60000' }, { ttl: 1e300 },
      { delta: -1 }, { delta: 1.5 }, { delta: '5' },
      { swr: -1 }, { swr: 0.5 }, { swr: '1000' }, { swr: 2 ** 31 * 1000 + 1 }, { sie: -1 }, { sie: null },
      { initialAge: -1 }, { initialAge: 0.5 }, { initialAge: 2 ** 31 + 1 },
      { bodyLength: -1 }, { bodyLength: '11' },
      { tags: 't' }, { tags: [1] }, { tags: [null] }, { tags: Array.from({ length: 1025 }, (_, i) => `t${i}`) },
      { path: 'p' }, { path: '' }, { path: 1 }, { url: '/other' }, { url: 1 },
      { routeLevel: true },
      { storedAt: 'now' }, { storedAt: null },
      { kind: 'other' }, { kind: 'vary' }, { extra: 1 }, { Status: 200 },
    ]
    for (const over of bad) expect(decodeMeta(meta(BODY, over)), JSON.stringify(over).slice(0, 60)).toBe('malformed')
    for (const missing of ['kind', 'status', 'headers', 'ttl', 'swr', 'sie', 'delta', 'initialAge', 'bodyLength', 'tags', 'path', 'url']) {
      const m = meta(BODY)
      delete m[missing]
      expect(decodeMeta(m), missing).toBe('malformed')
    }
    expect(decodeMeta(meta(BODY, { tags: Array.from({ length: 1024 }, (_, i) => `t${i}`) }))).toBe('ok')
    expect(decodeMeta(meta(BODY, { status: 599, storedAt: 12345 }))).toBe('ok')
    expect(decodeMeta(meta(BODY, { status: 100, initialAge: 2 ** 31 }))).toBe('ok')
  })

  it('refuses metadata that is not a JSON object in UTF-8, or is over 256 KiB', () => {
    for (const text of ['', 'null', '[]', '"x"', '1', '{', '{"kind":"response",}', JSON.stringify(meta(BODY)) + 'x']) {
      expect(decodeMeta(text), text).toBe('malformed')
    }
    const raw = Buffer.from(JSON.stringify(meta(BODY, { tags: ['X'] })))
    raw[raw.indexOf('"X"') + 1] = 0xff
    const len = Buffer.alloc(4)
    len.writeUInt32BE(raw.length)
    expect(reason(decodeAt(Buffer.concat([MAGIC, Buffer.from([ENVELOPE_VERSION, 0]), len, raw, BODY])))).toBe('malformed')

    const big = meta(BODY, { tags: [''.padEnd(256 * 1024, 'x')] })
    expect(decodeMeta(big)).toBe('malformed')
    const fits = meta(BODY, { tags: [] })
    const pad = 256 * 1024 - JSON.stringify({ ...fits, tags: [''] }).length
    expect(decodeMeta({ ...fits, tags: [''.padEnd(pad, 'x')] })).toBe('ok')
    expect(decodeMeta({ ...fits, tags: [''.padEnd(pad + 1, 'x')] })).toBe('malformed')
  })

  it('checks vary metadata', () => {
    const vary = { kind: 'vary', names: ['accept', 'accept-language'], ttl: 1000, retain: 0, tags: [], path: '/', url: '/?a' }
    const none = Buffer.alloc(0)
    expect(decodeMeta(vary, none)).toBe('ok')
    expect(decodeMeta(vary, Buffer.from('x'))).toBe('malformed')
    for (const names of [[], ['Accept'], ['accept', 'accept'], ['a b'], [1], 'accept', null]) {
      expect(decodeMeta({ ...vary, names }, none), JSON.stringify(names)).toBe('malformed')
    }
    for (const extra of ['status', 'headers', 'bodyLength', 'initialAge', 'swr', 'x']) {
      expect(decodeMeta({ ...vary, [extra]: 0 }, none), extra).toBe('malformed')
    }
    const { retain: _retain, ...noRetain } = vary
    expect(decodeMeta(noRetain, none)).toBe('malformed')
    expect(decodeMeta({ ...vary, retain: -1 }, none)).toBe('malformed')
  })

  it('gives decoded entries headers that are own data fields only, and touches no prototype', () => {
    const headers = [['tostring', 'x'], ['hasownproperty', 'y'], ['valueof', ['z']], ['etag', '"e"']]
    const e = okResponse(decodeAt(envelope(meta(BODY, { headers }), BODY)))
    expect(Object.getPrototypeOf(e.headers)).toBe(Object.prototype)
    expect(Object.keys(e.headers).sort()).toEqual(['content-length', 'etag', 'hasownproperty', 'tostring', 'valueof'])
    expect({ ...e.headers }).toEqual({ tostring: 'x', hasownproperty: 'y', valueof: ['z'], etag: '"e"', 'content-length': '11' })
    expect({ ...e.notModifiedHeaders }).toEqual({ etag: '"e"' })
    expect(({} as Record<string, unknown>).tostring).toBeUndefined()
  })
})
