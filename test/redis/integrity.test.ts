import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { fileRedis, healthy, instance, xcache, type Instance } from '../helpers/fleet.js'
import { until, type RouteSpec } from '../helpers/scenario.js'

// Values in Redis are untrusted: anything that can write to it can plant bytes under an entry's
// key. Instance A stores real entries; the test then overwrites or copies them with the raw
// client, and a fresh instance B (empty L1, so it must read Redis) requests the URL. A planted
// value must never be served: B's origin answers, the value is counted as rejected and removed.

const K1 = 'integrity-signing-key-one-0123456789'
const K2 = 'integrity-signing-key-two-0123456789'
const STRANGER = 'a-key-none-of-the-instances-has-0123'
const PLANTED = Buffer.from('PLANTED: bytes someone wrote into Redis')

const shared = fileRedis()
const { cleanups } = shared

const namespace = (): string => `integ-${randomBytes(6).toString('hex')}`

/**
 * GET /items/:id, cached with the tag `item:<id>`; the body names the instance and its call number.
 * With `noStore` the origin forbids storing its answers.
 */
const items = (name: string, noStore: boolean): RouteSpec[] => [
  {
    method: 'GET',
    path: '/items/:id',
    cache: { tags: (req: { params: { id: string } }) => [`item:${req.params.id}`] },
    handler: (r) => ({
      headers: { 'content-type': 'application/json', ...(noStore ? { 'cache-control': 'no-store' } : {}) },
      body: { json: { id: String(r.params.id), by: name, call: r.call } },
    }),
  },
]

/** Instance `name` on namespace `ns`, signing with `signingKeys` (none: it signs nothing), connected to Redis. */
async function start(name: string, ns: string, signingKeys: readonly string[], noStore = false): Promise<Instance> {
  const cache = { namespace: ns, redis: shared.server.url, ...(signingKeys.length > 0 ? { signingKeys } : {}) }
  const i = await instance(name, { cache, routes: items(name, noStore) }, cleanups)
  await healthy([i], 2000)
  return i
}

// ---- the envelope, written independently of codec.ts ----------------------------------------

const MAGIC = Buffer.from([0x43, 0x52, 0x4c, 0x00])

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

interface EnvelopeOptions {
  /** Signs with this key (MAC bound to `key`). */
  readonly signWith?: string
  readonly version?: number
}

/** An envelope around `meta` (an object, or JSON text to plant exact bytes) and `body`, stored under `key`. */
function envelope(key: string, meta: string | object, body: Buffer, o: EnvelopeOptions = {}): Buffer {
  const metaBytes = Buffer.from(typeof meta === 'string' ? meta : JSON.stringify(meta), 'utf8')
  const prefix = Buffer.concat([MAGIC, Buffer.from([o.version ?? 2, o.signWith === undefined ? 0 : 1])])
  const rest = Buffer.concat([u32(metaBytes.length), metaBytes, body])
  if (o.signWith === undefined) return Buffer.concat([prefix, rest])
  return Buffer.concat([prefix, macOf(o.signWith, prefix, key, rest), rest])
}

function macOf(secret: string, prefix: Buffer, key: string, rest: Buffer): Buffer {
  const k = Buffer.from(key, 'utf8')
  return createHmac('sha256', secret).update(Buffer.concat([prefix, u32(k.length), k, rest])).digest()
}

interface Opened {
  readonly signed: boolean
  readonly meta: Record<string, unknown>
  readonly body: Buffer
}

function open(bytes: Buffer): Opened {
  const signed = ((bytes[5] as number) & 1) === 1
  const at = 6 + (signed ? 32 : 0)
  const len = bytes.readUInt32BE(at)
  return {
    signed,
    meta: JSON.parse(bytes.subarray(at + 4, at + 4 + len).toString('utf8')) as Record<string, unknown>,
    body: bytes.subarray(at + 4 + len),
  }
}

/** Whether `bytes` carry a MAC made with `secret` for `key`. */
function signedWith(secret: string, key: string, bytes: Buffer): boolean {
  const rest = bytes.subarray(6 + 32)
  return macOf(secret, bytes.subarray(0, 6), key, rest).equals(bytes.subarray(6, 6 + 32))
}

/** Valid response metadata for /items/<id> with `body`; cases break one thing in it. */
function responseMeta(id: string, body: Buffer, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'response',
    status: 200,
    headers: [['content-type', 'text/plain']],
    ttl: 60_000,
    initialAge: 0,
    bodyLength: body.length,
    tags: [`item:${id}`],
    path: `/items/${id}`,
    url: `/items/${id}`,
    ...over,
  }
}

/** Valid metadata as JSON text with `extra` members spliced in first (to plant keys JSON.stringify drops). */
function metaText(extra: string, over: Record<string, unknown> = {}): string {
  return `{${extra},${JSON.stringify(responseMeta('1', PLANTED, over)).slice(1)}`
}

// ---- Redis inspection ------------------------------------------------------------------------

async function entryKeysByUrl(ns: string): Promise<Map<string, string>> {
  const pattern = new RegExp(`^${ns}:v1:[\\w-]{43}(:[\\w-]{43})?$`)
  const out = new Map<string, string>()
  for (const key of await shared.raw.keys(`${ns}:v1:*`)) {
    if (!pattern.test(key)) continue
    const bytes = await shared.raw.getBuffer(key)
    if (bytes !== null) out.set(String(open(bytes).meta.url), key)
  }
  return out
}

async function storedInRedis(ns: string, urls: readonly string[]): Promise<Map<string, string>> {
  let keys = new Map<string, string>()
  await until(async () => {
    keys = await entryKeysByUrl(ns)
    return urls.every((u) => keys.has(u))
  }, 2000, `entries for ${urls.join(', ')} in Redis`)
  return keys
}

function polluted(): unknown[] {
  const o = Object.prototype as Record<string, unknown>
  return [({} as Record<string, unknown>).polluted, o.polluted, (Object as unknown as Record<string, unknown>).polluted]
}

// ---- planting ----------------------------------------------------------------------------------

interface StoredEntry {
  readonly key: string
  readonly bytes: Buffer
}

interface PlantContext {
  /** What A stored for /items/1 and /items/2. */
  readonly one: StoredEntry
  readonly two: StoredEntry
  /** The key the reading instance signs with, if any: a writer that has the key but writes bad data. */
  readonly secret: string | undefined
}

interface Plant {
  readonly url: string
  readonly key: string
  readonly value: Buffer
  /** SET without PX: Corral never writes a value without a TTL. */
  readonly noTtl?: boolean
}

/** Bytes under /items/1's key, signed like the reading instance signs. */
const atOne = (c: PlantContext, meta: string | object, body = PLANTED, o: EnvelopeOptions = { signWith: c.secret }): Plant => ({
  url: '/items/1',
  key: c.one.key,
  value: envelope(c.one.key, meta, body, o),
})

type Case = readonly [string, (c: PlantContext) => Plant]

/** Rejected whether or not the cache has signing keys: structure, not integrity. */
const structural: Case[] = [
  ['random bytes', (c) => ({ url: '/items/1', key: c.one.key, value: randomBytes(600) })],
  ['the magic followed by random bytes', (c) => ({ url: '/items/1', key: c.one.key, value: Buffer.concat([MAGIC, Buffer.from([2, 0]), randomBytes(600)]) })],
  ['an empty value', (c) => ({ url: '/items/1', key: c.one.key, value: Buffer.alloc(0) })],
  ['a valid envelope truncated by one byte', (c) => ({ url: '/items/1', key: c.one.key, value: c.one.bytes.subarray(0, c.one.bytes.length - 1) })],
  ['a valid envelope truncated inside its metadata', (c) => ({ url: '/items/1', key: c.one.key, value: c.one.bytes.subarray(0, c.one.bytes.length - 40) })],
  ['a valid envelope with trailing bytes', (c) => ({ url: '/items/1', key: c.one.key, value: Buffer.concat([c.one.bytes, Buffer.from('x')]) })],
  ['an envelope of version 3', (c) => atOne(c, responseMeta('1', PLANTED), PLANTED, { signWith: c.secret, version: 3 })],
  ['an envelope of version 1 (it held routeLevel)', (c) => atOne(c, { ...responseMeta('1', PLANTED), routeLevel: true }, PLANTED, { signWith: c.secret, version: 1 })],
  ['metadata with a "__proto__" member', (c) => atOne(c, metaText('"__proto__":{"polluted":"yes","status":200}'))],
  ['metadata with a "constructor" member', (c) => atOne(c, metaText('"constructor":{"prototype":{"polluted":"yes"}}'))],
  ['headers given as an object with "__proto__"', (c) => atOne(c, metaText('"headers":{"__proto__":{"polluted":"yes"}}').replace(/,"headers":\[\[[^\]]*\]\]/, ''))],
  ['a header named "__proto__"', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['__proto__', 'polluted=yes']] }))],
  ['a header named "constructor"', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['constructor', 'polluted=yes']] }))],
  ['a header value containing CR/LF', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['x-planted', 'a\r\nset-cookie: session=stolen']] }))],
  ['a header value containing a bare LF', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['x-planted', 'a\nset-cookie: session=stolen']] }))],
  ['a header value list with CR/LF in one element', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['x-planted', ['ok', 'b\r\nset-cookie: session=stolen']]] }))],
  ['a header name containing CR/LF', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['x-a\r\nset-cookie', 'session=stolen']] }))],
  ['a Set-Cookie header', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['set-cookie', 'session=stolen']] }))],
  ['a Content-Length header that lies', (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['content-length', '5']] }))],
  ['a Vary marker naming "__proto__"', (c) => atOne(c, { kind: 'vary', names: ['__proto__'], ttl: 60_000, tags: [], path: '/items/1', url: '/items/1' }, Buffer.alloc(0))],
  ['a bodyLength that does not match the body', (c) => atOne(c, responseMeta('1', PLANTED, { bodyLength: PLANTED.length + 1 }))],
  ['a value without a TTL', (c) => ({ ...atOne(c, responseMeta('1', PLANTED)), noTtl: true })],
]

/** Rejected only with signing keys: a value that parses, but was not written by a key holder for this key. */
const integrity: Case[] = [
  ['a signed entry with one body byte flipped', (c) => {
    const value = Buffer.from(c.one.bytes)
    value[value.length - 2] = (value[value.length - 2] as number) ^ 0x01
    return { url: '/items/1', key: c.one.key, value }
  }],
  ['a signed entry whose status was edited', (c) => {
    const value = Buffer.from(c.one.bytes)
    const at = value.indexOf('"status":200')
    if (at === -1) throw new Error('status not found in the stored metadata')
    value.write('"status":203', at)
    return { url: '/items/1', key: c.one.key, value }
  }],
  ['a valid signed entry copied under the key of another URL', (c) => ({ url: '/items/2', key: c.two.key, value: c.one.bytes })],
  ['an unsigned envelope', (c) => atOne(c, responseMeta('1', PLANTED), PLANTED, {})],
  ['an envelope signed with a key the instances do not have', (c) => atOne(c, responseMeta('1', PLANTED), PLANTED, { signWith: STRANGER })],
  ['an envelope signed for another cache key', (c) => ({
    url: '/items/1',
    key: c.one.key,
    value: envelope(c.two.key, responseMeta('1', PLANTED), PLANTED, { signWith: c.secret }),
  })],
]

/**
 * A with `keys` stores /items/1 and /items/2, `plant` writes into Redis, then a fresh B with the
 * same keys requests the planted URL.
 */
async function plantAndRead(keys: readonly string[], plant: (c: PlantContext) => Plant, readerNoStore = false) {
  const ns = namespace()
  const a = await start('A', ns, keys)
  for (const url of ['/items/1', '/items/2']) expect(xcache(await a.get(url))).toBe('MISS')
  const stored = await storedInRedis(ns, ['/items/1', '/items/2'])
  const entry = async (url: string): Promise<StoredEntry> => {
    const key = stored.get(url) as string
    return { key, bytes: (await shared.raw.getBuffer(key)) as Buffer }
  }
  const p = plant({ one: await entry('/items/1'), two: await entry('/items/2'), secret: keys[0] })
  if (p.noTtl) await shared.raw.set(p.key, p.value)
  else await shared.raw.set(p.key, p.value, 'PX', 60_000)

  const b = await start('B', ns, keys, readerNoStore)
  const res = await b.get(p.url)
  return { ns, a, b, p, res }
}

/** The request was answered by B's origin, the value was counted and removed or replaced. */
async function expectRejected(keys: readonly string[], { b, p, res }: Awaited<ReturnType<typeof plantAndRead>>) {
  expect(res.status).toBe(200)
  expect(xcache(res)).toBe('MISS')
  expect(JSON.parse(res.text)).toEqual({ id: p.url.slice('/items/'.length), by: 'B', call: 1 })
  expect(res.body.includes(PLANTED)).toBe(false)
  expect(res.headers['set-cookie']).toBeUndefined()
  expect(res.headers['x-planted']).toBeUndefined()
  expect(b.calls()).toBe(1)
  expect(b.cache.stats()).toMatchObject({ rejected: 1, errors: 0, hits: 0, misses: 1 })
  expect(b.errors).toEqual([])

  // Deleted, then (in the background) replaced by B's own entry.
  let now = null as Buffer | null
  await until(async () => {
    now = await shared.raw.getBuffer(p.key)
    return now === null || !now.equals(p.value)
  }, 2000, 'the planted value to be removed from Redis')
  if (now !== null) {
    const fresh = open(now)
    expect(fresh.meta.url).toBe(p.url)
    expect(fresh.body.equals(res.body)).toBe(true)
    expect(fresh.signed).toBe(keys.length > 0)
  }
  expect(polluted()).toEqual([undefined, undefined, undefined])
}

describe('planted values in Redis', () => {
  describe('on a cache with signing keys', () => {
    it.each([...structural, ...integrity])('%s: never served, counted, the origin answers, the value is removed', async (_, plant) => {
      const run = await plantAndRead([K1], plant)
      await expectRejected([K1], run)
    })

    it('control: a well-formed envelope signed with the key for that cache key IS served (the builder above is right)', async () => {
      const { res, b } = await plantAndRead([K1], (c) => atOne(c, responseMeta('1', PLANTED, { headers: [['content-type', 'text/plain'], ['x-planted', 'yes']] })))
      expect(xcache(res)).toBe('HIT')
      expect(res.body.equals(PLANTED)).toBe(true)
      expect(res.headers['x-planted']).toBe('yes')
      expect(b.calls()).toBe(0)
      expect(b.cache.stats()).toMatchObject({ rejected: 0, errors: 0 })
    })
  })

  describe('on a cache without signing keys', () => {
    it.each(structural)('%s: never served, counted, the origin answers, the value is removed', async (_, plant) => {
      const run = await plantAndRead([], plant)
      await expectRejected([], run)
    })

    it('control: a well-formed unsigned envelope IS served (no keys, no integrity: documented)', async () => {
      const { res, b } = await plantAndRead([], (c) => atOne(c, responseMeta('1', PLANTED)))
      expect(xcache(res)).toBe('HIT')
      expect(res.body.equals(PLANTED)).toBe(true)
      expect(b.calls()).toBe(0)
      expect(b.cache.stats().rejected).toBe(0)
    })
  })
})

describe('signing keys across instances', () => {
  it('rotation: [k1] entries hit on [k2, k1], miss without errors on [k2]; [k2, k1] signs with k2, which [k2] reads', async () => {
    const ns = namespace()
    const a = await start('A', ns, [K1])
    for (const url of ['/items/1', '/items/2']) expect(xcache(await a.get(url))).toBe('MISS')
    const written = await storedInRedis(ns, ['/items/1', '/items/2'])
    const one = written.get('/items/1') as string
    expect(signedWith(K1, one, (await shared.raw.getBuffer(one)) as Buffer)).toBe(true)

    // Step 1 of a rotation: the new key first, the old one still listed.
    const b = await start('B', ns, [K2, K1])
    for (const url of ['/items/1', '/items/2']) {
      const res = await b.get(url)
      expect(xcache(res)).toBe('HIT')
      expect(JSON.parse(res.text)).toMatchObject({ by: 'A' })
    }
    expect(b.calls()).toBe(0)
    expect(b.cache.stats()).toMatchObject({ hits: 2, rejected: 0, errors: 0 })

    // B signs what it writes with the first key.
    expect(xcache(await b.get('/items/3'))).toBe('MISS')
    const three = (await storedInRedis(ns, ['/items/3'])).get('/items/3') as string
    const threeBytes = (await shared.raw.getBuffer(three)) as Buffer
    expect(signedWith(K2, three, threeBytes)).toBe(true)
    expect(signedWith(K1, three, threeBytes)).toBe(false)

    // Step 2: the old key removed. Entries signed with k1 are misses, not errors.
    const c = await start('C', ns, [K2])
    const old = await c.get('/items/1')
    expect(xcache(old)).toBe('MISS')
    expect(JSON.parse(old.text)).toEqual({ id: '1', by: 'C', call: 1 })
    const fresh = await c.get('/items/3')
    expect(xcache(fresh)).toBe('HIT')
    expect(JSON.parse(fresh.text)).toEqual({ id: '3', by: 'B', call: 1 })
    expect(c.calls()).toBe(1)
    expect(c.cache.stats()).toMatchObject({ rejected: 1, errors: 0, hits: 1, misses: 1 })
    expect(c.errors).toEqual([])

    // C replaced the k1 entry with one signed with k2, which B (still listing both) reads.
    await until(async () => {
      const bytes = await shared.raw.getBuffer(one)
      return bytes !== null && signedWith(K2, one, bytes)
    }, 2000, "C's k2-signed /items/1 in Redis")
    const d = await start('D', ns, [K2, K1])
    const again = await d.get('/items/1')
    expect(xcache(again)).toBe('HIT')
    expect(JSON.parse(again.text)).toMatchObject({ by: 'C' })

    // An instance that never got k2 does not serve what the others now write.
    const e = await start('E', ns, [K1])
    expect(xcache(await e.get('/items/3'))).toBe('MISS')
    expect(e.cache.stats()).toMatchObject({ rejected: 1, errors: 0 })
    for (const i of [a, b, c, d, e]) expect(i.errors).toEqual([])
  })

  it('a cache without keys serves signed entries without checking the MAC; a cache with keys rejects unsigned ones', async () => {
    const ns = namespace()
    const signer = await start('S', ns, [K1])
    expect(xcache(await signer.get('/items/1'))).toBe('MISS')
    const key = (await storedInRedis(ns, ['/items/1'])).get('/items/1') as string

    // No keys: the signed flag is honoured for the layout, the MAC is not verified.
    const unsigned = await start('U', ns, [])
    const hit = await unsigned.get('/items/1')
    expect(xcache(hit)).toBe('HIT')
    expect(JSON.parse(hit.text)).toMatchObject({ by: 'S' })

    // Not even a MAC that no longer matches: a signed entry with an edited body is served as is.
    const bytes = (await shared.raw.getBuffer(key)) as Buffer
    const tampered = Buffer.from(bytes)
    const at = tampered.lastIndexOf('"by":"S"')
    tampered.write('"by":"X"', at)
    expect(signedWith(K1, key, tampered)).toBe(false)
    await shared.raw.set(key, tampered, 'PX', 60_000)
    const other = await start('U2', ns, [])
    const served = await other.get('/items/1')
    expect(xcache(served)).toBe('HIT')
    expect(JSON.parse(served.text)).toMatchObject({ by: 'X' })
    expect(other.cache.stats().rejected).toBe(0)

    // The other way round: U writes /items/2 unsigned, and a cache with keys refuses it.
    expect(xcache(await unsigned.get('/items/2'))).toBe('MISS')
    const two = (await storedInRedis(ns, ['/items/2'])).get('/items/2') as string
    expect(open((await shared.raw.getBuffer(two)) as Buffer).signed).toBe(false)
    const strict = await start('K', ns, [K1])
    const res = await strict.get('/items/2')
    expect(xcache(res)).toBe('MISS')
    expect(JSON.parse(res.text)).toMatchObject({ by: 'K' })
    expect(strict.cache.stats()).toMatchObject({ rejected: 1, errors: 0 })
    for (const i of [signer, unsigned, other, strict]) expect(i.errors).toEqual([])
  })
})

describe('after a rejection', () => {
  it('after B rejected a planted value and stored its own, a third instance gets a HIT on B\'s entry', async () => {
    const { ns, b, p } = await plantAndRead([K1], (c) => ({ url: '/items/1', key: c.one.key, value: randomBytes(300) }))
    expect(b.cache.stats().rejected).toBe(1)
    await until(async () => {
      const bytes = await shared.raw.getBuffer(p.key)
      // Until then the key holds the planted bytes or nothing: check the MAC before parsing.
      return bytes !== null && signedWith(K1, p.key, bytes) && open(bytes).meta.url === '/items/1'
    }, 2000, "B's entry in Redis")
    const c = await start('C', ns, [K1])
    const res = await c.get('/items/1')
    expect(xcache(res)).toBe('HIT')
    expect(JSON.parse(res.text)).toMatchObject({ by: 'B' })
    expect(c.cache.stats().rejected).toBe(0)
  })

  it('a rejected value is deleted, not just overwritten: gone from Redis even when the origin\'s answer is not stored', async () => {
    const { b, p, res } = await plantAndRead([K1], (c) => atOne(c, metaText('"__proto__":{"polluted":"yes"}')), true)
    expect(xcache(res)).toBe('MISS')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(b.cache.stats()).toMatchObject({ rejected: 1, stored: 0, errors: 0 })
    await until(async () => (await shared.raw.exists(p.key)) === 0, 2000, 'the planted key to be deleted')
    expect(polluted()).toEqual([undefined, undefined, undefined])
  })
})
