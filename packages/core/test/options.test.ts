import { describe, expect, it } from 'vitest'
import { ConfigError, CorralError, createCache, MemoryStore, type CacheOptions } from '../src/index.js'
import { parseDuration } from '../src/model/duration.js'
import { resolveRoute } from '../src/model/options.js'

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toBeInstanceOf(CorralError)
    expect((err as ConfigError).code).toBe('CORRAL_ERR_CONFIG')
    return err as ConfigError
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

const bad = (o: unknown) => o as CacheOptions

describe('createCache rejects bad options, naming them', () => {
  it.each<[string, unknown, RegExp]>([
    ['ttl abc', { ttl: 'abc' }, /options\.ttl.*'abc'/],
    ['cacheStatus with a space', { cacheStatus: 'my cache' }, /options\.cacheStatus.*token/],
    ['cacheStatus starting with a digit', { cacheStatus: '1cache' }, /options\.cacheStatus/],
    ['cacheStatus true', { cacheStatus: true }, /options\.cacheStatus/],
    ['random not a function', { random: 0.5 }, /options\.random/],
    ['ttl -1', { ttl: -1 }, /options\.ttl.*-1/],
    ['ttl 0', { ttl: 0 }, /options\.ttl/],
    ['ttl five minutes', { ttl: 'five minutes' }, /options\.ttl/],
    ['ttl NaN', { ttl: Number.NaN }, /options\.ttl/],
    ['ttl Infinity', { ttl: Number.POSITIVE_INFINITY }, /options\.ttl/],
    ['statuses [206]', { statuses: [206] }, /options\.statuses.*206/],
    ['statuses [304]', { statuses: [200, 304] }, /options\.statuses.*304/],
    ['statuses [x]', { statuses: ['x'] }, /options\.statuses/],
    ['statuses 200', { statuses: 200 }, /options\.statuses/],
    ['statuses [99]', { statuses: [99] }, /options\.statuses/],
    ['statuses [600]', { statuses: [600] }, /options\.statuses/],
    ['methods [POST]', { methods: ['POST'] }, /options\.methods.*POST/],
    ['methods GET', { methods: 'GET' }, /options\.methods/],
    ['maxBodyBytes 0', { maxBodyBytes: 0 }, /options\.maxBodyBytes/],
    ['maxBodyBytes 1.5', { maxBodyBytes: 1.5 }, /options\.maxBodyBytes/],
    ['unknown tll', { tll: '5m' }, /tll/],
    ['route-only tags', { tags: ['a'] }, /tags/],
    ['query {foo:1}', { query: { foo: 1 } }, /options\.query/],
    ['query with include and exclude', { query: { include: ['a'], exclude: ['b'] } }, /options\.query/],
    ['query.exclude not an array', { query: { exclude: 'utm_*' } }, /options\.query\.exclude/],
    ['query true', { query: true }, /options\.query/],
    ['cookies yes', { cookies: 'yes' }, /options\.cookies.*'yes'/],
    ['authorization true', { authorization: true }, /options\.authorization/],
    ['invalidateAfterUnsafe yes', { invalidateAfterUnsafe: 'yes' }, /options\.invalidateAfterUnsafe.*true or false/],
    ['namespace a b', { namespace: 'a b' }, /options\.namespace/],
    ['namespace empty', { namespace: '' }, /options\.namespace/],
    ['namespace a:b', { namespace: 'a:b' }, /options\.namespace/],
    ['cacheStatusHeader bad header', { cacheStatusHeader: 'bad header' }, /options\.cacheStatusHeader/],
    ['tagHeaders with a bad name', { tagHeaders: ['ok', 'no way'] }, /options\.tagHeaders\[1\]/],
    ['lockTimeout soon', { lockTimeout: 'soon' }, /options\.lockTimeout/],
    ['now not a function', { now: 5 }, /options\.now/],
    ['onError not a function', { onError: 'log' }, /options\.onError/],
    ['maxEntryBytes > maxBytes', { maxBytes: 1000, maxEntryBytes: 2000 }, /maxEntryBytes/],
    ['maxBytes 0', { maxBytes: 0 }, /maxBytes/],
    ['maxBytes with a store', { store: new MemoryStore(), maxBytes: 10 }, /maxBytes/],
  ])('%s', (_, options, message) => {
    expect(configError(() => createCache(bad(options))).message).toMatch(message)
  })

  it('rejects options that are not an object', () => {
    configError(() => createCache(null as unknown as CacheOptions))
  })

  it('accepts valid options', () => {
    const cache = createCache({
      ttl: '5m',
      statuses: [200, 404],
      methods: ['GET'],
      maxBodyBytes: 10,
      query: { exclude: ['utm_*'] },
      cookies: 'ignore',
      authorization: 'bypass',
      namespace: 'shop.v2_a-b',
      cacheStatusHeader: 'Cache-Status',
      tagHeaders: ['x-tags'],
      lockTimeout: '2s',
      maxBytes: 1000,
      maxEntryBytes: 1000,
      now: () => 0,
      onError: () => {},
    })
    expect(cache.defaults.ttl).toBe(300_000)
    expect([...cache.defaults.statuses]).toEqual([200, 404])
    expect([...cache.defaults.methods]).toEqual(['GET'])
    expect(cache.defaults.maxBodyBytes).toBe(10)
    expect(cache.defaults.cookies).toBe('ignore')
    expect(cache.cacheStatusHeader).toBe('cache-status')
    expect(cache.tagHeaders).toEqual(['x-tags'])
  })

  it('fills in documented defaults', () => {
    const d = createCache().defaults
    expect(d.ttl).toBeUndefined()
    expect([...d.statuses]).toEqual([200, 203, 204, 300, 301, 308])
    expect([...d.methods].sort()).toEqual(['GET', 'HEAD'])
    expect(d.maxBodyBytes).toBe(1024 * 1024)
    expect(d.cookies).toBe('bypass')
    expect(d.authorization).toBe('bypass')
    expect(d.invalidateAfterUnsafe).toBe(true)
    expect(d.otherStatusesWhenFresh).toBe(true)
    expect(d.heuristic).toBe(0)
    expect([d.staleWhileRevalidate, d.staleIfError, d.earlyRefreshBeta, d.refreshAfter]).toEqual([0, 0, 0, undefined])
    expect(resolveRoute({ earlyRefresh: true }, d, 'r.').earlyRefreshBeta).toBe(1)
    expect(resolveRoute({ earlyRefresh: { beta: 2.5 } }, d, 'r.').earlyRefreshBeta).toBe(2.5)
    expect(d.setCookie).toBe('skip')
    expect(d.targetedCacheControl).toEqual(['surrogate-control', 'cdn-cache-control'])
    expect(d.query).toEqual({ exclude: [] })
    expect(createCache().cacheStatusHeader).toBe('x-cache')
    expect(createCache().tagHeaders).toEqual(['cache-tag', 'surrogate-key'])
  })
})

describe('resolveRoute', () => {
  const base = createCache({ ttl: '1m', statuses: [200, 404] }).defaults

  it.each<[string, unknown, RegExp]>([
    ['ttl abc', { ttl: 'abc' }, /route\.ttl/],
    ['ttl -1', { ttl: -1 }, /route\.ttl/],
    ['statuses [206]', { statuses: [206] }, /route\.statuses.*206/],
    ['statuses [x]', { statuses: ['x'] }, /route\.statuses/],
    ['methods [POST]', { methods: ['POST'] }, /route\.methods/],
    ['maxBodyBytes 0', { maxBodyBytes: 0 }, /route\.maxBodyBytes/],
    ['unknown tll', { tll: 1000 }, /route\.tll/],
    ['query {foo:1}', { query: { foo: 1 } }, /route\.query/],
    ['cookies yes', { cookies: 'yes' }, /route\.cookies/],
    ['heuristic 10', { heuristic: 10 }, /route\.heuristic.*0 to 1/],
    ['staleWhileRevalidate -1', { staleWhileRevalidate: -1 }, /route\.staleWhileRevalidate/],
    ['staleIfError "soon"', { staleIfError: 'soon' }, /route\.staleIfError/],
    ['earlyRefresh 1', { earlyRefresh: 1 }, /route\.earlyRefresh/],
    ['earlyRefresh beta 0', { earlyRefresh: { beta: 0 } }, /route\.earlyRefresh.*beta/],
    ['earlyRefresh unknown key', { earlyRefresh: { alpha: 1 } }, /route\.earlyRefresh/],
    ['refreshAfter 0', { refreshAfter: 0 }, /route\.refreshAfter/],
    ['heuristic "0.1"', { heuristic: '0.1' }, /route\.heuristic/],
    ['setCookie store', { setCookie: 'store' }, /route\.setCookie.*'skip' or 'strip'/],
    ['invalidateAfterUnsafe 0', { invalidateAfterUnsafe: 0 }, /route\.invalidateAfterUnsafe/],
    ['targetedCacheControl a string', { targetedCacheControl: 'cdn-cache-control' }, /route\.targetedCacheControl.*header names/],
    ['targetedCacheControl a bad name', { targetedCacheControl: ['bad name'] }, /route\.targetedCacheControl/],
    ['key not a function', { key: 'tenant' }, /route\.key/],
    ['bypass not a function', { bypass: true }, /route\.bypass/],
    ['tags not strings', { tags: [1] }, /route\.tags/],
    ['tags with an empty string', { tags: [''] }, /route\.tags/],
  ])('throws for %s', (_, options, message) => {
    expect(configError(() => resolveRoute(options as never, base, 'route.')).message).toMatch(message)
  })

  it('throws for options that are not an object', () => {
    configError(() => resolveRoute('5m' as never, base, 'route.'))
    configError(() => resolveRoute([] as never, base, 'route.'))
  })

  it('inherits from the base and overrides what it is given', () => {
    const r = resolveRoute({ ttl: '10s', cookies: 'ignore' }, base, 'route.')
    expect(r.ttl).toBe(10_000)
    expect([...r.statuses]).toEqual([200, 404])
    expect(r.cookies).toBe('ignore')
    expect(r.scope).toBe('')
    const inherited = resolveRoute(undefined, base, 'route.')
    expect(inherited.ttl).toBe(60_000)
    // A statuses list given anywhere is exact, in the routes that inherit it too.
    expect(inherited.otherStatusesWhenFresh).toBe(false)
    expect(resolveRoute({ heuristic: 0.1, setCookie: 'strip' }, createCache().defaults, 'route.')).toMatchObject({ heuristic: 0.1, setCookie: 'strip', otherStatusesWhenFresh: true })
  })

  it('is what cache.route() validates', () => {
    const cache = createCache()
    expect(configError(() => cache.route({ ttl: 'x' } as never, 'routes.home.')).message).toMatch(/routes\.home\.ttl/)
    expect(cache.route({ ttl: '2s' }, 'r.').ttl).toBe(2000)
  })
})

describe('durations', () => {
  it.each<[unknown, number]>([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    [' 2m ', 120_000],
    [1, 1],
    [300_000, 300_000],
    [1.6, 2],
  ])('parses %j as %i ms', (input, ms) => {
    expect(parseDuration(input, 'ttl')).toBe(ms)
    // A ttl given as a bare number under a second is refused (it reads as ms); see setup-errors.test.ts.
    if (typeof input === 'number' && input < 1000) configError(() => createCache({ ttl: input }))
    else expect(createCache({ ttl: input as never }).defaults.ttl).toBe(ms)
  })

  it.each<unknown>(['5 m', '5min', '5', 'm', '-5m', '0s', '', '1e3ms', null, true, {}, 0, -1])('rejects %j', (input) => {
    expect(configError(() => parseDuration(input, 'opt.ttl')).message).toMatch(/opt\.ttl/)
  })

  it('never turns a positive duration into 0 ms', () => {
    // A ttl that rounds to 0 would make every response stale: it must throw or round up.
    let ms: number | undefined
    try {
      ms = parseDuration(0.4, 'ttl')
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      return
    }
    expect(ms).toBeGreaterThan(0)
  })

  it('lockTimeout accepts durations and numbers', () => {
    expect(() => createCache({ lockTimeout: '250ms' })).not.toThrow()
    expect(() => createCache({ lockTimeout: 250 })).not.toThrow()
  })
})
