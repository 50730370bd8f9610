import { describe, expect, it } from 'vitest'
import { ConfigError, createCache, MemoryStore, StoreError, StoreUnavailableError, type CorralError } from '../src/index.js'
import { canonicalQuery } from '../src/model/key.js'
import type { CacheStore, SetResult } from '../src/store.js'
import { exposeGc, settledHeap } from '../../../test/helpers/heap.js'
import { CACHEABLE, expectFill, flush, store, view } from './helpers.js'

// The core half of issue 8 ("Never wrong, never unbounded"); the HTTP half runs against every
// adapter in test/conformance/guarantees.ts, the Redis half in test/redis/.

const MiB = 1024 * 1024

describe('4. every byte kept per key is bounded and counted', () => {
  it('10,000 misses on 14 KB URLs that are never stored leave the heap within maxBytes, on one route or five', async () => {
    const gc = exposeGc()
    const maxBytes = 8 * MiB
    const cache = createCache({ ttl: '1m', maxBytes })
    const routes = Array.from({ length: 5 }, (_, i) => cache.route({ ttl: `${i + 1}m` }, 'options.'))
    const before = settledHeap(gc)
    for (let i = 0; i < 10_000; i++) {
      const v = view(`/${'x'.repeat(14 * 1024)}?n=${i}`)
      const fill = await expectFill(cache.handle(v, routes[i % 5] as (typeof routes)[number], undefined))
      // A 404: not stored, and the key goes into hit-for-pass.
      fill.begin(404, { ...CACHEABLE })
    }
    const grown = settledHeap(gc) - before
    // Was +688 MB over five routes. The memo skips URLs this long; hit-for-pass holds keys, not URLs.
    expect(grown).toBeLessThan(maxBytes)
    expect(cache.stats().overheadBytes).toBeLessThanOrEqual(maxBytes / 16)
  })

  it('the memo of recent keys and the hit-for-pass table stay within maxBytes / 32 each, however many keys', async () => {
    const maxBytes = 2 * MiB
    const cache = createCache({ ttl: '1m', maxBytes })
    for (let i = 0; i < 20_000; i++) {
      const fill = await expectFill(cache.handle(view(`/p/${i}?q=${'y'.repeat(200)}`), cache.defaults, undefined))
      fill.begin(500, { ...CACHEABLE })
      expect(cache.stats().overheadBytes).toBeLessThanOrEqual(maxBytes / 16)
    }
  })

  it('an entry with more tags than maxTags is not stored (notStored too-many-tags), nor one with a tag over maxTagLength', async () => {
    const cache = createCache({ ttl: '1m' })
    const many = cache.route({ tags: () => Array.from({ length: 1500 }, (_, i) => `t${i}`) }, 'options.')
    const long = cache.route({ tags: () => ['x'.repeat(257)] }, 'options.')
    for (const [route, reason] of [
      [many, 'too-many-tags'],
      [long, 'tag-too-long'],
    ] as const) {
      const fill = await store(cache, view(`/${reason}`), { route })
      expect(fill.settled).toBe(true)
      expect(cache.stats().notStored[reason]).toBe(1)
    }
    expect(cache.stats().entries).toBe(0)
  })

  it('tags are counted in an entry’s size, so entries with many tags cannot grow the heap past maxBytes', async () => {
    const gc = exposeGc()
    const maxBytes = 8 * MiB
    const cache = createCache({ ttl: '1m', maxBytes })
    const route = cache.route<{ n: number }>({ tags: (req) => Array.from({ length: 256 }, (_, i) => `tag:${req.n}:${i}:${'z'.repeat(100)}`) }, 'options.')
    const before = settledHeap(gc)
    for (let n = 0; n < 2000; n++) await store(cache, view(`/tagged/${n}`), { route, req: { n } })
    const grown = settledHeap(gc) - before
    const { bytes, entries } = cache.stats()
    expect(entries).toBeGreaterThan(0)
    expect(entries).toBeLessThan(2000)
    expect(bytes).toBeLessThanOrEqual(maxBytes)
    // Counted bytes are at least what the tags take; the heap stays near the budget (was +122 MB
    // under 8 MB with 1,500 tags each).
    expect(bytes / entries).toBeGreaterThan(256 * 200)
    expect(grown).toBeLessThan(maxBytes * 1.5)
  })
})

/** A store that answers `set` as told, for the reasons a fill records. */
function storeThat(set: () => SetResult | Promise<SetResult>): CacheStore {
  const inner = new MemoryStore()
  return {
    get: (key) => inner.get(key),
    set: () => set(),
    delete: (key) => inner.delete(key),
    invalidate: (sel, ns) => inner.invalidate(sel, ns),
    clear: () => inner.clear(),
  }
}

describe('9. the reason a response was not stored is the right one', () => {
  it.each<[string, () => SetResult | Promise<SetResult>, string, boolean]>([
    ['a store that throws', () => { throw new Error('disk on fire') }, 'store-error', true],
    ['a store that rejects', () => Promise.reject(new Error('timeout')), 'store-error', true],
    ['a store that cannot be asked', () => Promise.reject(new StoreUnavailableError('Redis is away')), 'store-error', false],
    ['a store that declines', () => false, 'declined', false],
    ['a store that finds it too large', () => 'too-large', 'too-large', false],
  ])('%s: the right notStored reason, reported only when it is news', async (_, set, reason, reported) => {
    const errors: CorralError[] = []
    const cache = createCache({ ttl: '1m', store: storeThat(set), onError: (e) => errors.push(e) })
    await store(cache, view('/r'))
    await flush()
    expect(cache.stats().notStored).toEqual({ [reason]: 1 })
    expect(errors.length).toBe(reported ? 1 : 0)
    if (reported) expect(errors[0]).toBeInstanceOf(StoreError)
  })

  it('a store error does not put the key in hit-for-pass: concurrent misses still wait for one origin call', async () => {
    let failures = 0
    const cache = createCache({
      ttl: '1m',
      store: storeThat(() => {
        failures++
        throw new Error('store down')
      }),
      onError: () => undefined,
    })
    await store(cache, view('/r'))
    expect(failures).toBe(1)
    const leader = await expectFill(cache.handle(view('/r'), cache.defaults, undefined))
    const waiter = cache.handle(view('/r'), cache.defaults, undefined)
    expect(cache.stats().coalesced).toBe(1)
    leader.abandon('aborted')
    await waiter
  })

  it('a response too large for the route does put the key in hit-for-pass', async () => {
    const cache = createCache({ ttl: '1m', maxBodyBytes: 1 })
    await store(cache, view('/big'), { body: 'too big' })
    expect(cache.stats().notStored['too-large']).toBe(1)
    await expectFill(cache.handle(view('/big'), cache.defaults, undefined))
    await expectFill(cache.handle(view('/big'), cache.defaults, undefined))
    expect(cache.stats().coalesced).toBe(0)
  })

  it('a body that does not match its declared Content-Length: notStored truncated', async () => {
    const cache = createCache({ ttl: '1m' })
    const fill = await expectFill(cache.handle(view('/t'), cache.defaults, undefined))
    expect(fill.begin(200, { ...CACHEABLE, 'content-length': '2000' }).capture).toBe(true)
    fill.end(Buffer.alloc(1000))
    expect(cache.stats().notStored).toEqual({ truncated: 1 })
    const longer = await expectFill(cache.handle(view('/t'), cache.defaults, undefined))
    longer.begin(200, { ...CACHEABLE, 'content-length': '10' })
    longer.end(Buffer.alloc(11))
    expect(cache.stats().notStored).toEqual({ truncated: 2 })
    expect(cache.stats().entries).toBe(0)
  })
})

describe('10. options that would do nothing or harm are refused at construction', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['lockTimeout past what a timer holds', { lockTimeout: '30d' }, /options\.lockTimeout.*2147483647/],
    ['lockTimeout as a huge number', { lockTimeout: 2 ** 31 }, /options\.lockTimeout/],
    ['l2.timeout whose write deadline overflows a timer', { redis: 'redis://127.0.0.1:1', l2: { timeout: '10d' } }, /options\.l2\.timeout/],
    ['l2.cooldown past what a timer holds', { redis: 'redis://127.0.0.1:1', l2: { cooldown: '25d' } }, /options\.l2\.cooldown/],
    ['a tag header that is Set-Cookie', { tagHeaders: ['set-cookie'] }, /tagHeaders\[0\].*set-cookie/],
    ['a tag header that is Content-Type', { tagHeaders: ['x-tags', 'Content-Type'] }, /tagHeaders\[1\]/],
    ['a tag header that is Cache-Control', { tagHeaders: ['cache-control'] }, /tagHeaders\[0\]/],
    ['a tag header that is the status header', { tagHeaders: ['x-cache'] }, /tagHeaders\[0\]/],
    ['a tag header that is a CORS header', { tagHeaders: ['access-control-allow-origin'] }, /tagHeaders\[0\]/],
    ['maxTags above the codec limit', { maxTags: 5000 }, /options\.maxTags/],
    ['maxTagLength 0', { maxTagLength: 0 }, /options\.maxTagLength/],
    ['requestBody yes', { requestBody: 'yes' }, /options\.requestBody/],
    ['l2.assumeNoEviction as a string', { redis: 'redis://127.0.0.1:1', l2: { assumeNoEviction: 'yes' } }, /options\.l2\.assumeNoEviction/],
  ])('%s', (_, options, message) => {
    expect(() => createCache(options as never)).toThrow(ConfigError)
    expect(() => createCache(options as never)).toThrow(message)
  })

  it('static route tags over the caps are refused when the route is compiled', () => {
    const cache = createCache({ maxTags: 2, maxTagLength: 5 })
    expect(() => cache.route({ tags: ['a', 'b', 'c'] }, 'options.')).toThrow(/options\.tags.*at most 2/)
    expect(() => cache.route({ tags: ['toolong'] }, 'options.')).toThrow(/options\.tags.*at most 5 characters/)
  })

  it('invalidate selectors with a typo, a string for a list, or a path without its slash reject', async () => {
    const cache = createCache()
    await expect(cache.invalidate({ key: ['/a'] } as never)).rejects.toThrow(/unknown invalidate selector key/)
    await expect(cache.invalidate({ keys: '/a' } as never)).rejects.toThrow(/keys/)
    await expect(cache.invalidate({ keys: ['a/b'] })).rejects.toThrow(/starting with '\/'/)
    await expect(cache.invalidate({ prefixes: ['a/'] })).rejects.toThrow(/starting with '\/'/)
    expect(() => cache.mutation({ key: ['/a'] }, 'config.invalidate')).toThrow(ConfigError)
    expect(() => cache.mutation('tags', 'config.invalidate')).toThrow(/config\.invalidate/)
  })
})

describe('11. bracket notation in the query (qs, Express extended)', () => {
  it('keeps the relative order of parameters a bracket parser merges, and still sorts the rest', () => {
    const names = (q: string) => canonicalQuery(q).map(([n, v]) => `${n}=${v}`)
    expect(names('sort[]=-date&sort=price')).toEqual(['sort[]=-date', 'sort=price'])
    expect(names('sort=price&sort[]=-date')).toEqual(['sort=price', 'sort[]=-date'])
    expect(names('sort%5B%5D=-date&sort=price')).toEqual(['sort%5B%5D=-date', 'sort=price'])
    expect(names('sort=price&sort%5b0%5d=-date')).toEqual(['sort=price', 'sort%5B0%5D=-date'])
    expect(names('b=1&sort[]=x&a=2&sort=y')).toEqual(['a=2', 'b=1', 'sort[]=x', 'sort=y'])
    expect(names('z[a]=1&a=2')).toEqual(['a=2', 'z[a]=1'])
  })
})

describe('8. the decision never throws', () => {
  it('a key function returning material that cannot be hashed without loss bypasses and reports a CallbackError', async () => {
    const errors: CorralError[] = []
    const cache = createCache({ ttl: '1m', onError: (e) => errors.push(e) })
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (const material of [10n, [undefined], { a: undefined }, Number.NaN, Symbol('s'), () => 1, new Map(), circular]) {
      const route = cache.route({ key: () => material as never }, 'options.')
      expect(await cache.handle(view('/k'), route, undefined)).toEqual({ type: 'bypass', reason: 'error' })
    }
    expect(errors).toHaveLength(8)
    expect(errors.every((e) => e.code === 'CORRAL_ERR_CALLBACK')).toBe(true)
  })

  it('a store whose get throws synchronously is a miss, never an exception into the request', async () => {
    const errors: CorralError[] = []
    const broken: CacheStore = { ...storeThat(() => true), get: () => { throw new Error('get broke') } }
    const cache = createCache({ ttl: '1m', store: broken, onError: (e) => errors.push(e) })
    const d = await cache.handle(view('/g'), cache.defaults, undefined)
    expect(d.type).toBe('miss')
    expect(errors[0]).toBeInstanceOf(StoreError)
  })

  it('a bug inside the engine bypasses and is reported as an InternalError', async () => {
    const errors: CorralError[] = []
    const cache = createCache({ ttl: '1m', onError: (e) => errors.push(e) })
    // A view whose headers object throws on access stands in for any bug on the read path.
    const hostile = { method: 'GET', url: '/x', headers: new Proxy({}, { get: () => { throw new Error('bug') } }) }
    expect(await cache.handle(hostile, cache.defaults, undefined)).toEqual({ type: 'bypass', reason: 'error' })
    expect(errors[0]?.code).toBe('CORRAL_ERR_INTERNAL')
  })
})

describe('5. a GET or HEAD with a body', () => {
  it('bypasses by default, whatever announces the body; a body of length 0 does not count', async () => {
    const cache = createCache({ ttl: '1m' })
    for (const headers of [{ 'content-length': '12' }, { 'transfer-encoding': 'chunked' }]) {
      expect(await cache.handle(view('/b', headers), cache.defaults, undefined)).toEqual({ type: 'bypass', reason: 'body' })
      expect(await cache.handle(view('/b', headers, 'HEAD'), cache.defaults, undefined)).toEqual({ type: 'bypass', reason: 'body' })
    }
    expect((await cache.handle(view('/b', { 'content-length': '0' }), cache.defaults, undefined)).type).toBe('miss')
  })

  it("requestBody: 'ignore' caches them on routes that say the body does not matter", async () => {
    const cache = createCache({ ttl: '1m' })
    const route = cache.route({ requestBody: 'ignore' }, 'options.')
    expect((await cache.handle(view('/b', { 'content-length': '12' }), route, undefined)).type).toBe('miss')
  })
})


