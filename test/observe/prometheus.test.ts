import { randomBytes } from 'node:crypto'
import express5 from 'express5'
import fastify5 from 'fastify5'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, createCache } from '@corral/core'
import { prometheus, type PrometheusOptions } from '@corral/core/prometheus'
import { expressFactory } from '../helpers/express.js'
import { fastifyFactory } from '../helpers/fastify.js'
import { fileRedis, healthy, instance } from '../helpers/fleet.js'
import { signal, until, type AdapterFactory, type RouteSpec } from '../helpers/scenario.js'
import { harnessFor, runCleanups } from '../helpers/setup.js'

/** One sample of the text exposition: its metric name and labels, and its value. */
interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses Prometheus' text format (what `registry.metrics()` writes): every sample line. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1')
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return samples
}

/** A scrape, read by metric name and labels. */
class Scrape {
  private constructor(readonly samples: readonly Sample[]) {}

  static async of(registry: Registry): Promise<Scrape> {
    return new Scrape(parseExposition(await registry.metrics()))
  }

  /** The value of the one sample of `name` with exactly these labels; undefined when there is none. */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    const want = JSON.stringify(Object.entries(labels).sort())
    const found = this.samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${want}`)
    return found[0]?.value
  }

  /** Every sample of `name` as `{labels} value` lines, sorted: for exact comparisons of a whole metric. */
  series(name: string): string[] {
    return this.samples
      .filter((s) => s.name === name)
      .map((s) => `${JSON.stringify(Object.fromEntries(Object.entries(s.labels).sort()))} ${s.value}`)
      .sort()
  }

  /** The sum of every sample of `name` whose labels include these. */
  sum(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((n, s) => n + s.value, 0)
  }
}

const series = (rows: readonly [Readonly<Record<string, string>>, number][]): string[] =>
  rows.map(([labels, v]) => `${JSON.stringify(Object.fromEntries(Object.entries(labels).sort()))} ${v}`).sort()

const MAX_AGE = { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }

/**
 * How each adapter names a request's route in `corral_requests_total`. Express's app-wide
 * middleware looks the request up before Express has routed it: the hits it answers carry
 * route="*". A request it does not answer goes on to the route's own middleware, which looks again
 * and replaces the first lookup (`replaces`): the request is counted under the route's name.
 * Fastify knows the route from the start.
 */
interface Framework {
  readonly factory: AdapterFactory
  readonly lookupRoute: (name: string, result: string) => string
}

const FRAMEWORKS: readonly Framework[] = [
  { factory: expressFactory('express5', express5, 5, 'route'), lookupRoute: (name, result) => (result === 'hit' ? '*' : name) },
  { factory: fastifyFactory('fastify5', fastify5), lookupRoute: (name) => name },
]

/** Series with a value other than 0 (a lookup taken back leaves its series at 0). */
const nonZero = (rows: string[]): string[] => rows.filter((row) => !row.endsWith(' 0'))

describe('prometheus(): counts of real traffic, exactly', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(() => runCleanups(cleanups))

  for (const { factory, lookupRoute } of FRAMEWORKS) {
    it(`${factory.name}: 2 misses, 5 hits, a bypass, a private response, 3 collapsed requests, an invalidation`, async () => {
      const registry = new Registry()
      const gate = signal()
      const routes: RouteSpec[] = [
        { method: 'GET', path: '/p/:id', cache: { name: 'product' }, handler: (r) => ({ headers: MAX_AGE, body: `product ${r.url} ${r.call}` }) },
        { method: 'GET', path: '/private', cache: { name: 'account' }, handler: () => ({ headers: { 'cache-control': 'private, max-age=60' }, body: 'mine' }) },
        {
          method: 'GET',
          path: '/slow',
          cache: { name: 'slow' },
          handler: async () => {
            await gate.promise
            return { headers: MAX_AGE, body: 'slow' }
          },
        },
      ]
      const h = await harnessFor(factory, cleanups)({ cacheOptions: { plugins: [prometheus({ registry })] }, routes })

      const answers: string[] = []
      const get = async (path: string, headers?: Record<string, string>) => answers.push(`${path} ${h.status(await h.get(path, headers))}`)
      await get('/p/1')
      await get('/p/2')
      for (const p of ['/p/1', '/p/1', '/p/2', '/p/1', '/p/2']) await get(p)
      await get('/p/1', { authorization: 'Bearer 1' })
      await get('/private')
      // Four at once on a slow origin: one leader, three that wait for its response.
      const burst = h.many(4, '/slow')
      await until(() => h.cache.stats().coalesced === 3, 5000, 'three requests waiting on the leader')
      gate.resolve()
      answers.push(...(await burst).map((r) => `/slow ${h.status(r)}`))
      expect(await h.cache.invalidate({ keys: ['/p/1'] })).toBe(1)
      await get('/p/1')

      // The burst's answers come in request order, not arrival order: compared as a multiset.
      expect([...answers].sort()).toEqual(['/p/1 BYPASS', '/p/1 HIT', '/p/1 HIT', '/p/1 HIT', '/p/1 MISS', '/p/1 MISS', '/p/2 HIT', '/p/2 HIT', '/p/2 MISS', '/private MISS', '/slow HIT', '/slow HIT', '/slow HIT', '/slow MISS'])

      const s = await Scrape.of(registry)
      // Each request once (Express looks a request up twice: the second lookup is not counted).
      expect(s.sum('corral_requests_total')).toBe(answers.length)
      const requests: [Record<string, string>, number][] = []
      const add = (route: string, result: string, n: number) => {
        const row = requests.find(([l]) => l.route === route && l.result === result)
        if (row === undefined) requests.push([{ route, result }, n])
        else row[1] += n
      }
      for (const [name, hit, miss, bypass] of [['product', 5, 3, 1], ['account', 0, 1, 0], ['slow', 3, 1, 0]] as const) {
        add(lookupRoute(name, 'hit'), 'hit', hit)
        add(lookupRoute(name, 'miss'), 'miss', miss)
        add(lookupRoute(name, 'bypass'), 'bypass', bypass)
      }
      expect(nonZero(s.series('corral_requests_total'))).toEqual(nonZero(series(requests)))
      // The three that waited were answered with the leader's entry: hits.
      expect(nonZero(s.series('corral_collapsed_total'))).toEqual(series([[{ route: lookupRoute('slow', 'hit') }, 3]]))

      // Fills are named by the route that answered them, on both frameworks.
      expect(s.series('corral_fills_total')).toEqual(series([
        [{ route: 'product', result: 'stored' }, 3], [{ route: 'product', result: 'not_stored' }, 0],
        [{ route: 'account', result: 'stored' }, 0], [{ route: 'account', result: 'not_stored' }, 1],
        [{ route: 'slow', result: 'stored' }, 1], [{ route: 'slow', result: 'not_stored' }, 0],
      ]))
      expect(s.series('corral_not_stored_total')).toEqual(series([[{ route: 'account', reason: 'private' }, 1]]))
      expect(s.series('corral_fill_duration_seconds_count')).toEqual(series([[{ route: 'product' }, 3], [{ route: 'account' }, 1], [{ route: 'slow' }, 1]]))
      expect(s.value('corral_fill_duration_seconds_bucket', { route: 'slow', le: '+Inf' })).toBe(1)
      expect(s.value('corral_fill_duration_seconds_sum', { route: 'slow' })).toBeGreaterThan(0)

      expect(s.series('corral_invalidations_total')).toEqual(series([
        [{ source: 'local', mode: 'hard' }, 1], [{ source: 'local', mode: 'soft' }, 0],
        [{ source: 'remote', mode: 'hard' }, 0], [{ source: 'remote', mode: 'soft' }, 0],
      ]))
      expect(s.value('corral_invalidated_entries_total')).toBe(1)
      expect(s.value('corral_revalidations_total')).toBeUndefined()
      expect(s.value('corral_stored_total')).toBe(4)
      expect(s.value('corral_errors_total')).toBe(0)
      expect(s.value('corral_rejected_total')).toBe(0)
      const stats = h.cache.stats()
      expect(s.value('corral_entries')).toBe(stats.entries)
      expect(stats.entries).toBeGreaterThanOrEqual(3)
      expect(s.value('corral_bytes')).toBe(stats.bytes)
      expect(s.value('corral_overhead_bytes')).toBe(stats.overheadBytes)
      expect(s.value('corral_in_flight')).toBe(0)
      // No shared store, no breaker: the gauge has no series at all.
      expect(s.series('corral_breaker_state')).toEqual([])
      expect(s.series('corral_l2_duration_seconds_count')).toEqual([])

      // A second scrape adds only what happened since the first.
      await get('/p/2')
      const again = await Scrape.of(registry)
      const hits = { route: lookupRoute('product', 'hit'), result: 'hit' }
      expect(again.value('corral_requests_total', hits)).toBe((s.value('corral_requests_total', hits) ?? 0) + 1)
      expect(again.sum('corral_requests_total')).toBe(answers.length)
      expect(again.value('corral_stored_total')).toBe(4)
    })
  }

  it('Fastify 5: routes past maxRoutes are counted as route="(other)"', async () => {
    const registry = new Registry()
    const routes: RouteSpec[] = ['/a', '/b', '/c', '/d'].map((path) => ({ method: 'GET', path, handler: () => ({ headers: MAX_AGE, body: path }) }))
    const h = await harnessFor(fastifyFactory('fastify5', fastify5), cleanups)({ cacheOptions: { plugins: [prometheus({ registry, maxRoutes: 2 })] }, routes })
    for (const p of ['/a', '/b', '/c', '/d', '/a', '/d']) await h.get(p)
    const s = await Scrape.of(registry)
    expect(s.series('corral_requests_total').filter((l) => !l.endsWith(' 0'))).toEqual(series([
      [{ route: '/a', result: 'miss' }, 1], [{ route: '/a', result: 'hit' }, 1],
      [{ route: '/b', result: 'miss' }, 1],
      [{ route: '(other)', result: 'miss' }, 2], [{ route: '(other)', result: 'hit' }, 1],
    ]))
  })
})

describe('prometheus(): two caches on one registry', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(() => runCleanups(cleanups))

  it('share the metrics when each has its own labels; the same labels twice are refused until the first cache closes', async () => {
    const registry = new Registry()
    const setup = harnessFor(fastifyFactory('fastify5', fastify5), cleanups)
    const routes: RouteSpec[] = [{ method: 'GET', path: '/x', handler: () => ({ headers: MAX_AGE, body: 'x' }) }]
    const pages = await setup({ cacheOptions: { plugins: [prometheus({ registry, labels: { cache: 'pages' } })] }, routes })
    const api = await setup({ cacheOptions: { plugins: [prometheus({ registry, labels: { cache: 'api' } })] }, routes })
    for (let i = 0; i < 3; i++) await pages.get('/x')
    await api.get('/x')

    const s = await Scrape.of(registry)
    expect(s.series('corral_requests_total').filter((l) => !l.endsWith(' 0'))).toEqual(series([
      [{ cache: 'pages', route: '/x', result: 'miss' }, 1], [{ cache: 'pages', route: '/x', result: 'hit' }, 2],
      [{ cache: 'api', route: '/x', result: 'miss' }, 1],
    ]))
    expect(s.series('corral_stored_total')).toEqual(series([[{ cache: 'pages' }, 1], [{ cache: 'api' }, 1]]))
    expect(s.series('corral_entries')).toEqual(series([[{ cache: 'pages' }, pages.cache.stats().entries], [{ cache: 'api' }, api.cache.stats().entries]]))

    // The same values again would overwrite the first cache's series; other label names would not fit the metrics.
    expect(() => prometheus({ registry, labels: { cache: 'pages' } })).toThrow(ConfigError)
    expect(() => prometheus({ registry, labels: { cache: 'pages' } })).toThrow(/another cache reports with options.labels \{"cache":"pages"\} on this registry/)
    expect(() => prometheus({ registry })).toThrow(/expected options.labels to have the label names of the other caches reporting on this registry \(prefix 'corral_'\): \[cache\], got \[\]/)
    expect(() => prometheus({ registry, labels: { app: 'x' } })).toThrow(/expected options.labels to have the label names of the other caches reporting on this registry \(prefix 'corral_'\): \[cache\], got \[app\]/)
    expect(() => prometheus({ registry, labels: { cache: 'other' }, l2Buckets: [0.1, 1] })).toThrow(/expected options.l2Buckets to be those of the other caches/)
    // Another prefix is another set of metrics.
    expect(() => prometheus({ registry, prefix: 'edge_' })).not.toThrow()

    // Closed, a cache drops out of the gauges; its counters stay; its labels are free again.
    await pages.app.close()
    await pages.cache.close()
    const after = await Scrape.of(registry)
    expect(after.series('corral_entries')).toEqual(series([[{ cache: 'api' }, api.cache.stats().entries]]))
    expect(after.value('corral_requests_total', { cache: 'pages', route: '/x', result: 'hit' })).toBe(2)
    const reopened = createCache({ ttl: '5m', plugins: [prometheus({ registry, labels: { cache: 'pages' } })] })
    cleanups.push(() => reopened.close())
    expect((await Scrape.of(registry)).series('corral_entries')).toEqual(series([[{ cache: 'api' }, api.cache.stats().entries], [{ cache: 'pages' }, 0]]))
  })

  it('refuses a registry that holds metrics of the same name from elsewhere, and a plugin given to two caches', async () => {
    const registry = new Registry()
    const { Counter } = await import('prom-client')
    new Counter({ name: 'corral_requests_total', help: 'not ours', registers: [registry] })
    // Values are taken by a cache, not by a plugin that never served one.
    const shared = new Registry()
    const unused = prometheus({ registry: shared })
    const taker = prometheus({ registry: shared })
    const owner = createCache({ plugins: [taker] })
    cleanups.push(() => owner.close())
    expect(() => prometheus({ registry: shared })).toThrow(/another cache reports without options.labels on this registry \(prefix 'corral_'\) already.*give each cache distinct options.labels/)
    expect(() => createCache({ plugins: [unused] })).toThrow(/plugin prometheus: attach failed: another cache reports without options.labels/)
    expect(() => prometheus({ registry })).toThrow(/the registry holds metrics named corral_requests_total already.*choose another options.prefix or options.registry/)

    const plugin = prometheus({ registry: new Registry() })
    const first = createCache({ plugins: [plugin] })
    cleanups.push(() => first.close())
    expect(() => createCache({ plugins: [plugin] })).toThrow(/plugin prometheus: attach failed: this prometheus\(\) plugin serves another cache already/)
  })
})

describe('prometheus(): with Redis', () => {
  const redis = fileRedis()

  it('times L2 reads and writes, reports the breaker closed, and counts a remote invalidation (two instances, one registry)', async () => {
    const registry = new Registry()
    const ns = `prom-${randomBytes(5).toString('hex')}`
    const routes: RouteSpec[] = [{ method: 'GET', path: '/r', handler: () => ({ headers: MAX_AGE, body: 'from the origin' }) }]
    const cache = (name: string) => ({ redis: redis.server.url, namespace: ns, plugins: [prometheus({ registry, labels: { instance: name } })] })
    const a = await instance('A', { cache: cache('a'), routes }, redis.cleanups)
    const b = await instance('B', { cache: cache('b'), routes, factory: fastifyFactory('fastify5', fastify5) }, redis.cleanups)
    await healthy([a, b], 5000)

    expect((await a.get('/r')).headers['x-cache']).toBe('MISS')
    // A writes the entry to Redis in the background; then B reads it from there.
    await until(async () => ((await Scrape.of(registry)).value('corral_l2_duration_seconds_count', { instance: 'a', op: 'write', result: 'stored' }) ?? 0) > 0, 5000, "A's L2 write")
    expect((await b.get('/r')).headers['x-cache']).toBe('HIT')
    expect(await a.cache.invalidate({ keys: ['/r'] })).toBeGreaterThanOrEqual(1)
    await until(async () => (await Scrape.of(registry)).value('corral_invalidations_total', { instance: 'b', source: 'remote', mode: 'hard' }) === 1, 5000, "B's remote invalidation")

    const s = await Scrape.of(registry)
    expect(s.value('corral_l2_duration_seconds_count', { instance: 'a', op: 'read', result: 'miss' })).toBeGreaterThan(0)
    expect(s.value('corral_l2_duration_seconds_count', { instance: 'b', op: 'read', result: 'hit' })).toBeGreaterThan(0)
    expect(s.sum('corral_l2_duration_seconds_count', { op: 'read' })).toBeGreaterThan(0)
    expect(s.sum('corral_l2_duration_seconds_count', { op: 'write' })).toBeGreaterThan(0)
    expect(s.sum('corral_l2_duration_seconds_count', { result: 'error' })).toBe(0)
    // The smallest default bucket is half a millisecond.
    expect(s.value('corral_l2_duration_seconds_bucket', { instance: 'a', op: 'write', result: 'stored', le: '0.0005' })).toBeDefined()
    expect(s.series('corral_breaker_state')).toEqual(series([[{ instance: 'a' }, 0], [{ instance: 'b' }, 0]]))
    expect(s.value('corral_invalidations_total', { instance: 'a', source: 'local', mode: 'hard' })).toBe(1)
    expect(s.value('corral_requests_total', { instance: 'a', route: '*', result: 'miss' })).toBe(1)
    expect(s.value('corral_requests_total', { instance: 'b', route: '/r', result: 'hit' })).toBe(1)
    expect(s.sum('corral_errors_total')).toBe(0)
    expect([...a.errors, ...b.errors]).toEqual([])
  })
})

describe('prometheus(): options', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 'corral', /expected the options of prometheus\(\) to be an object, got 'corral'/],
    ['an unknown option', { prefx: 'x_' }, /unknown option options.prefx of prometheus\(\); expected one of registry, prefix, labels, fillBuckets, l2Buckets, maxRoutes/],
    ['a registry that is not one', { registry: {} }, /expected options.registry to be a prom-client Registry/],
    ['a prefix with a dash', { prefix: 'my-cache_' }, /expected options.prefix to be the start of a Prometheus metric name .* got 'my-cache_'/],
    ['a prefix starting with a digit', { prefix: '1corral_' }, /options.prefix/],
    ['labels that are not an object', { labels: ['cache'] }, /expected options.labels to be an object of label names to string values/],
    ['a label name Corral uses', { labels: { route: 'x' } }, /options.labels may not use the label name 'route'/],
    ['a label name Prometheus reserves', { labels: { __name: 'x' } }, /expected the names in options.labels to be Prometheus label names/],
    ['a label value that is not a string', { labels: { cache: 1 } }, /expected options.labels.cache to be a string, got 1/],
    ['empty fill buckets', { fillBuckets: [] }, /expected options.fillBuckets to be a non-empty array/],
    ['fill buckets out of order', { fillBuckets: [1, 0.5] }, /expected options.fillBuckets to hold finite, positive and strictly increasing numbers of seconds, got 0.5 after 1/],
    ['an L2 bucket that is not a number', { l2Buckets: [0.001, '0.01'] }, /options.l2Buckets .* got '0.01'/],
    ['a negative L2 bucket', { l2Buckets: [-1] }, /options.l2Buckets/],
    ['maxRoutes 0', { maxRoutes: 0 }, /expected options.maxRoutes to be a positive integer \(or Infinity\), got 0/],
    ['maxRoutes a fraction', { maxRoutes: 1.5 }, /options.maxRoutes/],
  ]
  for (const [what, options, message] of bad) {
    it(`throws a ConfigError for ${what}`, () => {
      const registry = new Registry()
      const o = typeof options === 'object' && options !== null && !Array.isArray(options) && !('registry' in options) ? { registry, ...options } : options
      let thrown: unknown
      try {
        prometheus(o as PrometheusOptions)
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(ConfigError)
      expect((thrown as ConfigError).code).toBe('CORRAL_ERR_CONFIG')
      expect((thrown as Error).message).toMatch(message)
      // Nothing was registered by a refused call.
      expect(registry.getMetricsAsArray()).toEqual([])
    })
  }

  it('takes the documented defaults, an empty prefix, and Infinity routes', async () => {
    const registry = new Registry()
    prometheus({ registry, prefix: '', maxRoutes: Infinity, fillBuckets: [0.1, 1] })
    const names = registry.getMetricsAsArray().map((m) => m.name)
    expect(names).toContain('requests_total')
    expect(names).toContain('breaker_state')
    const own = new Registry()
    prometheus({ registry: own })
    expect(own.getMetricsAsArray().map((m) => m.name).sort()).toEqual([
      'corral_breaker_state', 'corral_bytes', 'corral_collapsed_total', 'corral_entries', 'corral_errors_total', 'corral_fill_duration_seconds',
      'corral_fills_total', 'corral_in_flight', 'corral_invalidated_entries_total', 'corral_invalidations_total', 'corral_l2_duration_seconds',
      'corral_not_stored_total', 'corral_overhead_bytes', 'corral_rejected_total', 'corral_requests_total', 'corral_revalidations_total',
      'corral_stored_total',
    ])
    const text = await own.getSingleMetricAsString('corral_l2_duration_seconds')
    expect(text).toContain('# TYPE corral_l2_duration_seconds histogram')
  })
})
