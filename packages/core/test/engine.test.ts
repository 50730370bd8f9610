import { describe, expect, it } from 'vitest'
import { CallbackError, createCache, MemoryStore, type CorralError } from '../src/index.js'
import type { Decision } from '../src/cache.js'
import { CACHEABLE, clock, expectFill, expectHit, flush, store, view } from './helpers.js'

describe('miss, store, hit', () => {
  it('stores a miss and answers the next request from it, with Age from the clock', async () => {
    const c = clock()
    const cache = createCache({ now: c.now })
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    expect(fill.begin(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).capture).toBe(true)
    fill.end(Buffer.from('hello'))

    c.advance(5_500)
    const hit = await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    expect(hit.status).toBe(200)
    expect(hit.body.toString()).toBe('hello')
    expect(hit.age).toBe('5')
    expect(hit.headers['content-type']).toBe('text/plain')
    expect(hit.headers['content-length']).toBe('5')
    expect(hit.headers['cache-control']).toBe('max-age=60')

    const s = cache.stats()
    expect(s).toMatchObject({ misses: 1, hits: 1, stored: 1, entries: 1, inFlight: 0, coalesced: 0 })
    expect(s.bytes).toBeGreaterThan(5)
  })

  it('adds the time in cache to the origin Age and never replays the Age header', async () => {
    const c = clock()
    const cache = createCache({ now: c.now })
    await store(cache, view('/p'), { headers: { 'cache-control': 'max-age=60', age: '10' } })
    const first = await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    expect(first.age).toBe('10')
    expect(first.headers.age).toBeUndefined()
    c.advance(15_000)
    expect((await expectHit(cache.handle(view('/p'), cache.defaults, undefined))).age).toBe('25')
    // 60 - 10 = 50 seconds left in the cache
    c.advance(34_999)
    await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    c.advance(1)
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
  })

  it('expires entries by the clock', async () => {
    const c = clock()
    const cache = createCache({ now: c.now })
    await store(cache, view('/p'))
    c.advance(59_999)
    await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    c.advance(1)
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE })
    fill.end(Buffer.from('new'))
    expect((await expectHit(cache.handle(view('/p'), cache.defaults, undefined))).body.toString()).toBe('new')
  })

  it('uses the configured ttl when the response has no freshness, and stores nothing without one', async () => {
    const c = clock()
    const withTtl = createCache({ now: c.now, ttl: '2s' })
    await store(withTtl, view('/p'), { headers: { 'content-type': 'text/plain' } })
    c.advance(1_999)
    await expectHit(withTtl.handle(view('/p'), withTtl.defaults, undefined))
    c.advance(1)
    await expectFill(withTtl.handle(view('/p'), withTtl.defaults, undefined))

    const noTtl = createCache({ now: c.now })
    await store(noTtl, view('/p'), { headers: { 'content-type': 'text/plain' } })
    await expectFill(noTtl.handle(view('/p'), noTtl.defaults, undefined))
    expect(noTtl.stats().notStored['no-freshness']).toBe(1)
    expect(noTtl.stats().stored).toBe(0)
  })

  it('keeps different URLs, hosts and queries apart', async () => {
    const cache = createCache()
    await store(cache, view('/p?a=1'), { body: 'a1' })
    await store(cache, view('/p?a=1', { host: 'other.example' }), { body: 'other' })
    expect((await expectHit(cache.handle(view('/p?a=1'), cache.defaults, undefined))).body.toString()).toBe('a1')
    expect(
      (await expectHit(cache.handle(view('/p?a=1', { host: 'OTHER.example' }), cache.defaults, undefined))).body.toString(),
    ).toBe('other')
    await expectFill(cache.handle(view('/p?a=2'), cache.defaults, undefined))
    await expectFill(cache.handle(view('/p?a=1', { 'x-forwarded-host': 'evil.example' }), cache.defaults, undefined))
  })

  it('serves a 204 without a Content-Length', async () => {
    const cache = createCache()
    await store(cache, view('/p'), { status: 204, headers: { 'cache-control': 'max-age=60' }, body: '' })
    const hit = await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    expect(hit.status).toBe(204)
    expect(hit.headers['content-length']).toBeUndefined()
  })

  it('does not store error statuses unless listed', async () => {
    const cache = createCache()
    await store(cache, view('/missing'), { status: 404 })
    await expectFill(cache.handle(view('/missing'), cache.defaults, undefined))
    expect(cache.stats().notStored.status).toBe(1)

    const listed = createCache({ statuses: [200, 404] })
    await store(listed, view('/missing'), { status: 404 })
    expect((await expectHit(listed.handle(view('/missing'), listed.defaults, undefined))).status).toBe(404)
  })
})

describe('conditional requests', () => {
  const lastModified = 'Wed, 01 Jan 2025 00:00:00 GMT'
  async function stored() {
    const cache = createCache()
    await store(cache, view('/p'), {
      headers: { ...CACHEABLE, etag: '"v1"', 'last-modified': lastModified },
      body: 'body',
    })
    return cache
  }

  it('answers a matching If-None-Match with a 304 and no body', async () => {
    const cache = await stored()
    const hit = await expectHit(cache.handle(view('/p', { 'if-none-match': 'W/"v1"' }), cache.defaults, undefined))
    expect(hit.status).toBe(304)
    expect(hit.body.length).toBe(0)
    expect(hit.headers.etag).toBe('"v1"')
    expect(hit.headers['cache-control']).toBe('max-age=60')
    expect(hit.headers['content-length']).toBeUndefined()
    expect(hit.headers['content-type']).toBeUndefined()
    expect(cache.stats().hits).toBe(1)
  })

  it('answers a non-matching If-None-Match in full', async () => {
    const cache = await stored()
    const hit = await expectHit(cache.handle(view('/p', { 'if-none-match': '"v0"' }), cache.defaults, undefined))
    expect(hit.status).toBe(200)
    expect(hit.body.toString()).toBe('body')
  })

  it('answers If-Modified-Since with a 304 when not modified since', async () => {
    const cache = await stored()
    const notModified = await expectHit(
      cache.handle(view('/p', { 'if-modified-since': lastModified }), cache.defaults, undefined),
    )
    expect(notModified.status).toBe(304)
    const modified = await expectHit(
      cache.handle(view('/p', { 'if-modified-since': 'Tue, 31 Dec 2024 00:00:00 GMT' }), cache.defaults, undefined),
    )
    expect(modified.status).toBe(200)
  })

  it('lets If-None-Match win over If-Modified-Since', async () => {
    const cache = await stored()
    const hit = await expectHit(
      cache.handle(view('/p', { 'if-none-match': '"v0"', 'if-modified-since': lastModified }), cache.defaults, undefined),
    )
    expect(hit.status).toBe(200)
  })
})

describe('HEAD', () => {
  it('never creates an entry but is answered from the GET entry', async () => {
    const cache = createCache()
    const head = await cache.handle(view('/p', {}, 'HEAD'), cache.defaults, undefined)
    expect(head).toEqual({ type: 'miss', fill: null, fwd: 'uri-miss', collapsed: false })
    expect(cache.stats().entries).toBe(0)
    // the GET after it still goes to the origin
    await store(cache, view('/p'), { body: 'full' })
    const hit = await expectHit(cache.handle(view('/p', {}, 'HEAD'), cache.defaults, undefined))
    expect(hit.status).toBe(200)
    expect(hit.headers['content-length']).toBe('4')
  })

  it('waits for a GET in flight on the same key', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    const head = Promise.resolve(cache.handle(view('/p', {}, 'HEAD'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE })
    fill.end(Buffer.from('x'))
    expect((await head).type).toBe('hit')
  })
})

describe('single flight', () => {
  function burst(cache: ReturnType<typeof createCache>, n: number, url = '/p') {
    const settled: (Decision | undefined)[] = new Array(n).fill(undefined)
    const all = Array.from({ length: n }, (_, i) =>
      Promise.resolve(cache.handle(view(url), cache.defaults, undefined)).then((d) => (settled[i] = d)),
    )
    return { settled, all: Promise.all(all) }
  }

  it('sends one of 10 concurrent requests on a cold key to the origin and answers the others from it', async () => {
    const cache = createCache()
    const { settled, all } = burst(cache, 10)
    await flush()
    const done = settled.filter((d) => d !== undefined)
    expect(done).toHaveLength(1)
    const leader = done[0] as Extract<Decision, { type: 'miss' }>
    expect(leader.type).toBe('miss')
    expect(leader.fill).not.toBeNull()
    expect(cache.stats().inFlight).toBe(1)

    leader.fill!.begin(200, { ...CACHEABLE })
    leader.fill!.end(Buffer.from('once'))
    const results = await all
    const hits = results.filter((d) => d.type === 'hit')
    expect(hits).toHaveLength(9)
    for (const h of hits) expect((h as Extract<Decision, { type: 'hit' }>).body.toString()).toBe('once')
    expect(results.filter((d) => d.type === 'miss')).toHaveLength(1)
    const s = cache.stats()
    expect(s.coalesced).toBe(9)
    expect(s.misses).toBe(1)
    expect(s.stored).toBe(1)
    expect(s.inFlight).toBe(0)
  })

  it('hands the lead to one waiter when the leader abandons (its client went away); the others wait for that one', async () => {
    const cache = createCache({ lockTimeout: '1h' })
    const { settled, all } = burst(cache, 10)
    await flush()
    const leader = settled.find((d) => d !== undefined) as Extract<Decision, { type: 'miss' }>
    leader.fill!.abandon('aborted')
    await flush()
    // Not nine origin calls at once: one waiter leads now, the other eight wait for it.
    const led = settled.filter((d) => d !== undefined && d !== leader) as Extract<Decision, { type: 'miss' }>[]
    expect(led).toHaveLength(1)
    const second = led[0]!
    expect(second.type).toBe('miss')
    expect(second.fill).not.toBeNull()
    expect(second.fill).not.toBe(leader.fill)
    second.fill!.begin(200, { ...CACHEABLE })
    second.fill!.end(Buffer.from('late'))
    const results = await all
    const rest = results.filter((d) => d !== leader && d !== second)
    expect(rest).toHaveLength(8)
    for (const d of rest) {
      expect(d.type).toBe('hit')
      expect((d as Extract<Decision, { type: 'hit' }>).body.toString()).toBe('late')
    }
    expect(cache.stats()).toMatchObject({ misses: 2, hits: 8 })
    expect(cache.stats().notStored.aborted).toBe(1)
    expect(cache.stats().inFlight).toBe(0)
  })

  it('releases waiters to the origin at once, each with its own fill, when the leader gives up for another reason (too large)', async () => {
    const cache = createCache({ lockTimeout: '1h' })
    const { settled, all } = burst(cache, 10)
    await flush()
    const leader = settled.find((d) => d !== undefined) as Extract<Decision, { type: 'miss' }>
    leader.fill!.abandon('too-large')
    const results = await all
    const waiters = results.filter((d) => d !== leader)
    expect(waiters).toHaveLength(9)
    const fills = new Set()
    for (const d of waiters) {
      expect(d.type).toBe('miss')
      const f = (d as Extract<Decision, { type: 'miss' }>).fill
      expect(f).not.toBeNull()
      expect(f).not.toBe(leader.fill)
      fills.add(f)
    }
    expect(fills.size).toBe(9)
    expect(cache.stats()).toMatchObject({ misses: 10, coalesced: 9, hits: 0 })
    expect(cache.stats().notStored['too-large']).toBe(1)
    expect(cache.stats().inFlight).toBe(0)
  })

  it('releases waiters when the leader response cannot be stored', async () => {
    const cache = createCache({ lockTimeout: '1h' })
    const { settled, all } = burst(cache, 3)
    await flush()
    const leader = settled.find((d) => d !== undefined) as Extract<Decision, { type: 'miss' }>
    expect(leader.fill!.begin(200, { 'cache-control': 'private, max-age=60' }).capture).toBe(false)
    const results = await all
    expect(results.every((d) => d.type === 'miss')).toBe(true)
    expect(cache.stats().notStored.private).toBe(1)
  })

  it('releases the waiters of a hung leader after lockTimeout', async () => {
    const cache = createCache({ lockTimeout: 100 })
    const started = Date.now()
    const { settled, all } = burst(cache, 4)
    await flush()
    const leader = settled.find((d) => d !== undefined) as Extract<Decision, { type: 'miss' }>
    expect(leader.type).toBe('miss')

    const results = await all
    // timers may fire a millisecond early, never much earlier
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    const waiters = results.filter((d) => d !== leader)
    expect(waiters).toHaveLength(3)
    for (const d of waiters) {
      expect(d.type).toBe('miss')
      expect((d as Extract<Decision, { type: 'miss' }>).fill).not.toBeNull()
    }
    expect(cache.stats().inFlight).toBe(0)

    // the leader finishing late still stores
    leader.fill!.begin(200, { ...CACHEABLE })
    leader.fill!.end(Buffer.from('slow'))
    expect((await expectHit(cache.handle(view('/p'), cache.defaults, undefined))).body.toString()).toBe('slow')
  })

  it('does not coalesce different keys', async () => {
    const cache = createCache()
    const a = await expectFill(cache.handle(view('/a'), cache.defaults, undefined))
    const b = await expectFill(cache.handle(view('/b'), cache.defaults, undefined))
    expect(a).not.toBe(b)
    expect(cache.stats().inFlight).toBe(2)
  })
})

describe('Vary', () => {
  const varying = { ...CACHEABLE, vary: 'Accept-Language' }
  const lang = (l?: string) => view('/p', l === undefined ? {} : { 'accept-language': l })

  it('stores one variant per request header value and serves each only to its match', async () => {
    const cache = createCache()
    await store(cache, lang('en'), { headers: varying, body: 'hello' })
    expect((await expectHit(cache.handle(lang('en'), cache.defaults, undefined))).body.toString()).toBe('hello')

    const fr = await expectFill(cache.handle(lang('fr'), cache.defaults, undefined))
    fr.begin(200, { ...varying })
    fr.end(Buffer.from('bonjour'))

    expect((await expectHit(cache.handle(lang('fr'), cache.defaults, undefined))).body.toString()).toBe('bonjour')
    expect((await expectHit(cache.handle(lang('en'), cache.defaults, undefined))).body.toString()).toBe('hello')
    await expectFill(cache.handle(lang('de'), cache.defaults, undefined))
  })

  it('does not serve a variant stored with the header to a request without it, or with it empty', async () => {
    const cache = createCache()
    await store(cache, lang('en'), { headers: varying, body: 'hello' })
    await expectFill(cache.handle(lang(undefined), cache.defaults, undefined))
    await expectFill(cache.handle(lang(''), cache.defaults, undefined))
  })

  it('does not serve a variant stored without the header to a request with it', async () => {
    const cache = createCache()
    await store(cache, lang(undefined), { headers: varying, body: 'default' })
    expect((await expectHit(cache.handle(lang(undefined), cache.defaults, undefined))).body.toString()).toBe('default')
    await expectFill(cache.handle(lang('en'), cache.defaults, undefined))
  })

  it('keeps the Vary marker as long as its longest-lived variant', async () => {
    for (const [first, second] of [
      [10, 60],
      [60, 10],
    ] as const) {
      const c = clock()
      const cache = createCache({ now: c.now })
      await store(cache, lang('en'), { headers: { ...varying, 'cache-control': `max-age=${first}` }, body: 'en' })
      await store(cache, lang('fr'), { headers: { ...varying, 'cache-control': `max-age=${second}` }, body: 'fr' })
      c.advance(30_000)
      const longLived = first > second ? 'en' : 'fr'
      const shortLived = first > second ? 'fr' : 'en'
      expect((await expectHit(cache.handle(lang(longLived), cache.defaults, undefined))).body.toString()).toBe(longLived)
      await expectFill(cache.handle(lang(shortLived), cache.defaults, undefined))
    }
  })

  it('never stores Vary: *', async () => {
    const cache = createCache()
    await store(cache, lang('en'), { headers: { ...CACHEABLE, vary: '*' } })
    await expectFill(cache.handle(lang('en'), cache.defaults, undefined))
    expect(cache.stats().notStored['vary-star']).toBe(1)
  })

  it('a waiter whose variant differs from the leader goes to the origin', async () => {
    const cache = createCache({ lockTimeout: '1h' })
    const leader = await expectFill(cache.handle(lang('en'), cache.defaults, undefined))
    const waiter = Promise.resolve(cache.handle(lang('fr'), cache.defaults, undefined))
    leader.begin(200, { ...varying })
    leader.end(Buffer.from('hello'))
    const fill = await expectFill(waiter)
    fill.begin(200, { ...varying })
    fill.end(Buffer.from('bonjour'))
    expect((await expectHit(cache.handle(lang('fr'), cache.defaults, undefined))).body.toString()).toBe('bonjour')
  })
})

describe('invalidation', () => {
  async function seeded() {
    const cache = createCache()
    for (const url of ['/p', '/p?a=1&b=2', '/p?c=3', '/q', '/p/sub']) await store(cache, view(url), { body: url })
    await store(cache, view('/p?a=1&b=2', { host: 'other.example' }))
    return cache
  }
  const isHit = async (cache: ReturnType<typeof createCache>, url: string, host?: string) =>
    (await cache.handle(view(url, host ? { host } : {}), cache.defaults, undefined)).type === 'hit'

  it('drops every query and host of a path', async () => {
    const cache = await seeded()
    expect(await cache.invalidate({ keys: ['/p'] })).toBe(4)
    expect(await isHit(cache, '/p')).toBe(false)
    expect(await isHit(cache, '/p?a=1&b=2')).toBe(false)
    expect(await isHit(cache, '/p?a=1&b=2', 'other.example')).toBe(false)
    expect(await isHit(cache, '/p?c=3')).toBe(false)
    expect(await isHit(cache, '/q')).toBe(true)
    expect(await isHit(cache, '/p/sub')).toBe(true)
    expect(cache.stats().invalidated).toBe(4)
  })

  it('drops only the canonical query of a path?query key', async () => {
    const cache = await seeded()
    expect(await cache.invalidate({ keys: ['/p?b=2&a=%31'] })).toBe(2)
    expect(await isHit(cache, '/p?a=1&b=2')).toBe(false)
    expect(await isHit(cache, '/p?a=1&b=2', 'other.example')).toBe(false)
    expect(await isHit(cache, '/p')).toBe(true)
    expect(await isHit(cache, '/p?c=3')).toBe(true)
  })

  it('drops by prefix', async () => {
    const cache = createCache()
    for (const url of ['/api/a', '/api/b?x=1', '/apix', '/other']) await store(cache, view(url))
    expect(await cache.invalidate({ prefixes: ['/api/'] })).toBe(2)
    expect(await isHit(cache, '/api/a')).toBe(false)
    expect(await isHit(cache, '/api/b?x=1')).toBe(false)
    expect(await isHit(cache, '/apix')).toBe(true)
    expect(await isHit(cache, '/other')).toBe(true)
  })

  it('drops by tags from the route tags function', async () => {
    const cache = createCache()
    const route = cache.route<{ id: string }>({ tags: (req) => [`product:${req.id}`, 'products'] }, 'route.')
    await store(cache, view('/products/1'), { route, req: { id: '1' } })
    await store(cache, view('/products/2'), { route, req: { id: '2' } })
    expect(await cache.invalidate({ tags: ['product:1'] })).toBe(1)
    expect((await cache.handle(view('/products/1'), route, { id: '1' })).type).toBe('miss')
    expect((await cache.handle(view('/products/2'), route, { id: '2' })).type).toBe('hit')
    expect(await cache.invalidate({ tags: ['products'] })).toBe(1)
    expect((await cache.handle(view('/products/2'), route, { id: '2' })).type).toBe('miss')
  })

  it('drops by tags from Cache-Tag and Surrogate-Key, which are not replayed', async () => {
    const cache = createCache()
    await store(cache, view('/a'), { headers: { ...CACHEABLE, 'cache-tag': 'red, blue' } })
    await store(cache, view('/b'), { headers: { ...CACHEABLE, 'surrogate-key': 'green  blue' } })
    await store(cache, view('/c'), { headers: { ...CACHEABLE, 'surrogate-key': 'yellow' } })
    const hit = await expectHit(cache.handle(view('/a'), cache.defaults, undefined))
    expect(hit.headers['cache-tag']).toBeUndefined()
    expect(await cache.invalidate({ tags: ['blue'] })).toBe(2)
    expect(await isHit(cache, '/a')).toBe(false)
    expect(await isHit(cache, '/b')).toBe(false)
    expect(await isHit(cache, '/c')).toBe(true)
    expect(await cache.invalidate({ tags: ['yellow'] })).toBe(1)
  })

  it('drops every variant of a varying path', async () => {
    const cache = createCache()
    const varying = { ...CACHEABLE, vary: 'accept-language' }
    await store(cache, view('/v', { 'accept-language': 'en' }), { headers: varying })
    const fr = await expectFill(cache.handle(view('/v', { 'accept-language': 'fr' }), cache.defaults, undefined))
    fr.begin(200, { ...varying })
    fr.end(Buffer.from('fr'))
    expect(await cache.invalidate({ keys: ['/v'] })).toBe(3) // the Vary marker and both variants
    // abandon each fill so that the next request does not wait on it
    ;(await expectFill(cache.handle(view('/v', { 'accept-language': 'en' }), cache.defaults, undefined))).abandon('aborted')
    ;(await expectFill(cache.handle(view('/v', { 'accept-language': 'fr' }), cache.defaults, undefined))).abandon('aborted')
    expect(cache.stats().entries).toBe(0)
  })

  it('prevents the store of a response whose invalidation lands between begin() and end()', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p?a=1'), cache.defaults, undefined))
    expect(fill.begin(200, { ...CACHEABLE }).capture).toBe(true)
    await cache.invalidate({ keys: ['/p'] })
    fill.end(Buffer.from('old'))
    await expectFill(cache.handle(view('/p?a=1'), cache.defaults, undefined))
    expect(cache.stats().notStored.invalidated).toBe(1)
    expect(cache.stats().stored).toBe(0)
  })

  it('prevents the store when a tag invalidation matches a Cache-Tag of the response in flight', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE, 'cache-tag': 'item-7' })
    await cache.invalidate({ tags: ['item-7'] })
    fill.end(Buffer.from('old'))
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
  })

  it('prevents the store when the invalidation lands before begin()', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    await cache.invalidate({ prefixes: ['/'] })
    fill.begin(200, { ...CACHEABLE })
    fill.end(Buffer.from('old'))
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
  })

  it('normalises invalidation keys like request URLs', async () => {
    const cache = createCache()
    await store(cache, view('/~user/a%2fb?q=%41'))
    await store(cache, view('/~user/x'))
    expect(await cache.invalidate({ keys: ['/%7Euser/a%2Fb?q=A'] })).toBe(1)
    expect(await cache.invalidate({ keys: ['/%7euser/x'] })).toBe(1)
    expect(cache.stats().entries).toBe(0)
  })

  it('does not reach into another namespace sharing the store', async () => {
    const shared = new MemoryStore()
    const a = createCache({ store: shared, namespace: 'a' })
    const b = createCache({ store: shared, namespace: 'b' })
    await store(a, view('/p'), { body: 'a' })
    await expectFill(b.handle(view('/p'), b.defaults, undefined))
    await store(b, view('/q'), { body: 'b' })
    await a.invalidate({ keys: ['/q'], prefixes: ['/'] })
    expect((await expectHit(b.handle(view('/q'), b.defaults, undefined))).body.toString()).toBe('b')
  })

  it('lets an unrelated invalidation in flight through', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p?a=1'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE })
    await cache.invalidate({ keys: ['/p?a=2', '/q'], tags: ['x'], prefixes: ['/r'] })
    fill.end(Buffer.from('ok'))
    await expectHit(cache.handle(view('/p?a=1'), cache.defaults, undefined))
  })

  it('stores through 10,000 unrelated invalidations in flight (an unsafe-request storm), and still drops a matching tag after them', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    const tagged = await expectFill(cache.handle(view('/t'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE, 'cache-tag': 'kept' })
    tagged.begin(200, { ...CACHEABLE, 'cache-tag': 'item-9' })
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => cache.invalidate(i % 2 === 0 ? { keys: [`/other/${i}`] } : { tags: [`other-${i}`] })))
    await cache.invalidate({ tags: ['item-9'] })
    fill.end(Buffer.from('ok'))
    tagged.end(Buffer.from('old'))
    await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    await expectFill(cache.handle(view('/t'), cache.defaults, undefined))
    expect(cache.stats().notStored.invalidated).toBe(1)
  })

  it('resolves to 0 for empty selectors and rejects bad ones', async () => {
    const cache = createCache()
    expect(await cache.invalidate({})).toBe(0)
    await expect(cache.invalidate({ keys: 'x' } as never)).rejects.toMatchObject({ code: expect.any(String) })
    await expect(cache.invalidate({ paths: ['/'] } as never)).rejects.toThrow(/paths/)
  })
})

describe('bypass, errors and stats', () => {
  it('counts bypassed requests and does not look them up', async () => {
    const cache = createCache()
    await store(cache, view('/p'))
    for (const v of [
      view('/p', {}, 'POST'),
      view('/p', { cookie: 'a=1' }),
      view('/p', { authorization: 'x' }),
      view('/p', { 'content-length': '5' }),
    ]) {
      expect((await cache.handle(v, cache.defaults, undefined)).type).toBe('bypass')
    }
    // A route with a bypass function keeps its entries apart (its own scope).
    const route = cache.route<{ preview: boolean }>({ bypass: (req) => req.preview }, 'r.')
    await store(cache, view('/p'), { route, req: { preview: false } })
    expect(await cache.handle(view('/p'), route, { preview: true })).toEqual({ type: 'bypass', reason: 'route' })
    expect((await cache.handle(view('/p'), route, { preview: false })).type).toBe('hit')
    expect(cache.stats().bypassed).toBe(5)
  })

  it('reports a throwing key function and bypasses', async () => {
    const errs: CorralError[] = []
    const cache = createCache({ onError: (e) => errs.push(e) })
    const route = cache.route({ key: () => { throw new Error('boom') } }, 'r.')
    expect(await cache.handle(view('/p'), route, undefined)).toEqual({ type: 'bypass', reason: 'error' })
    expect(errs).toHaveLength(1)
    expect(errs[0]).toBeInstanceOf(CallbackError)
    expect(errs[0]!.code).toBe('CORRAL_ERR_CALLBACK')
    expect(cache.stats().errors).toBe(1)
  })

  it('reports a throwing tags function and does not store', async () => {
    const errs: CorralError[] = []
    const cache = createCache({ onError: (e) => errs.push(e) })
    const route = cache.route({ tags: () => { throw new Error('boom') } }, 'r.')
    await store(cache, view('/p'), { route })
    expect(errs.map((e) => e.code)).toEqual(['CORRAL_ERR_CALLBACK'])
    expect(cache.stats().notStored.error).toBe(1)
    expect((await cache.handle(view('/p'), route, undefined)).type).toBe('miss')
  })

  it('uses the custom key material of the route', async () => {
    const cache = createCache()
    const route = cache.route<{ tenant: string }>({ key: (req) => ['tenant', req.tenant] }, 'r.')
    await store(cache, view('/p'), { route, req: { tenant: 'a' }, body: 'A' })
    expect((await expectHit(cache.handle(view('/p'), route, { tenant: 'a' }))).body.toString()).toBe('A')
    expect((await cache.handle(view('/p'), route, { tenant: 'b' })).type).toBe('miss')
  })

  it('counts each not-stored reason', async () => {
    const cache = createCache()
    await store(cache, view('/1'), { headers: { 'cache-control': 'no-store' } })
    await store(cache, view('/2'), { headers: { 'cache-control': 'no-store' } })
    await store(cache, view('/3'), { headers: { ...CACHEABLE, 'set-cookie': 'a=1' } })
    await store(cache, view('/4'), { status: 500 })
    const f = await expectFill(cache.handle(view('/5'), cache.defaults, undefined))
    f.abandon('aborted')
    expect(cache.stats().notStored).toEqual({ 'no-store': 2, 'set-cookie': 1, status: 1, aborted: 1 })
    expect(cache.stats().stored).toBe(0)
  })

  it('a route whose options only change storage shares its entries with lookups under the defaults', async () => {
    const cache = createCache()
    const route = cache.route({ ttl: '1m', tags: ['t'], statuses: [200, 404] }, 'r.')
    expect(route.scope).toBe('')
    await store(cache, view('/p'), { route })
    expect((await cache.handle(view('/p'), cache.defaults, undefined)).type).toBe('hit')
  })

  it('a route with its own rules for which requests may share an entry keeps its entries apart', async () => {
    const cache = createCache()
    for (const options of [{ bypass: () => false }, { cookies: 'ignore' as const }, { query: false as const }, { methods: ['GET' as const] }, { requestBody: 'ignore' as const }]) {
      const route = cache.route(options, 'r.')
      expect(route.scope).not.toBe('')
      await store(cache, view('/scoped'), { route })
      expect((await cache.handle(view('/scoped'), route, undefined)).type).toBe('hit')
      // Under the defaults, that entry is not there: the lookup misses (and leads a fill of its own).
      const own = await expectFill(cache.handle(view('/scoped'), cache.defaults, undefined))
      own.abandon('aborted')
      await cache.clear()
    }
    // The same function, the same scope; another function, another scope.
    const bypass = () => false
    expect(cache.route({ bypass }, 'a.').scope).toBe(cache.route({ bypass, ttl: '5m' }, 'b.').scope)
    expect(cache.route({ bypass }, 'a.').scope).not.toBe(cache.route({ bypass: () => false }, 'c.').scope)
  })

  it('passes requests through after close()', async () => {
    const cache = createCache()
    await store(cache, view('/p'))
    await cache.close()
    expect(await cache.handle(view('/p'), cache.defaults, undefined)).toEqual({ type: 'bypass', reason: 'error' })
  })

  it('a fill settles once: end() after abandon() stores nothing', async () => {
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE })
    fill.abandon('aborted')
    fill.end(Buffer.from('x'))
    expect(fill.settled).toBe(true)
    expect(cache.stats()).toMatchObject({ stored: 0, notStored: { aborted: 1 } })
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
  })

  it('end() with a body over maxBodyBytes stores nothing', async () => {
    const cache = createCache({ maxBodyBytes: 4 })
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    fill.begin(200, { ...CACHEABLE })
    fill.end(Buffer.from('12345'))
    expect(cache.stats().notStored['too-large']).toBe(1)
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
  })
})

describe('hit-for-pass: a key whose response could not be stored is not coalesced for a while', () => {
  it('lets concurrent misses run in parallel after an uncacheable response, stores again once storable, and ends after 10 s', async () => {
    const c = clock()
    const cache = createCache({ now: c.now, ttl: '1m' })
    const first = await expectFill(cache.handle(view('/u'), cache.defaults, undefined))
    first.begin(200, { 'cache-control': 'no-store' })

    // While in pass, two concurrent misses both go to the origin at once: nobody waits.
    const a = cache.handle(view('/u'), cache.defaults, undefined)
    const b = cache.handle(view('/u'), cache.defaults, undefined)
    const fa = await expectFill(a)
    const fb = await expectFill(b)
    expect(cache.stats()).toMatchObject({ misses: 3, coalesced: 0, inFlight: 0 })

    // A storable answer is still stored, and ends the pass.
    fa.begin(200, { 'cache-control': 'max-age=60' })
    fa.end(Buffer.from('ok'))
    fb.abandon('aborted')
    expect((await expectHit(cache.handle(view('/u'), cache.defaults, undefined))).body.toString()).toBe('ok')

    // Another uncacheable answer starts a pass that ends after 10 s: then misses coalesce again.
    c.advance(61_000)
    const again = await expectFill(cache.handle(view('/u'), cache.defaults, undefined))
    again.begin(200, { 'set-cookie': 'a=b', 'cache-control': 'max-age=60' })
    c.advance(10_001)
    const leader = await expectFill(cache.handle(view('/u'), cache.defaults, undefined))
    const waiter = cache.handle(view('/u'), cache.defaults, undefined)
    expect(cache.stats().coalesced).toBe(1)
    leader.begin(200, { 'cache-control': 'max-age=60' })
    leader.end(Buffer.from('later'))
    expect((await expectHit(waiter)).body.toString()).toBe('later')
  })

  it('does not start a pass for reasons that belong to the request, not the response', async () => {
    const cache = createCache({ ttl: '1m' })
    const first = await expectFill(cache.handle(view('/a'), cache.defaults, undefined))
    first.abandon('aborted')
    const leader = await expectFill(cache.handle(view('/a'), cache.defaults, undefined))
    const waiter = cache.handle(view('/a'), cache.defaults, undefined)
    expect(cache.stats().coalesced).toBe(1)
    leader.begin(200, {})
    leader.end(Buffer.from('x'))
    expect((await expectHit(waiter)).body.toString()).toBe('x')
  })
})
