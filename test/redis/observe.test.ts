import diagnostics from 'node:diagnostics_channel'
import { CHANNEL_NAMES, type CacheEvent, type CachePlugin, type L2Event } from '@corral/core'
import fastify5 from 'fastify5'
import { describe, expect, it } from 'vitest'
import { fastifyFactory } from '../helpers/fastify.js'
import { fileRedis, instance, xcache } from '../helpers/fleet.js'
import { until, type RouteSpec } from '../helpers/scenario.js'

// Observation with Redis (issue 12): L2 reads and writes on the tracing channels and to plugins,
// and health() turning degraded: Redis paused, the hit rate falling, errors rising.
//
// Timing: waits poll a state with a bound derived from the configured deadlines; nothing sleeps.

/** `l2.timeout`: deadline of an L2 read. Writes and health round trips get four times it. */
const L2_TIMEOUT = 100
const WRITE_TIMEOUT = 4 * L2_TIMEOUT
/** Connecting, reading the eviction policy (a write deadline) and a busy machine's late timers. */
const CONNECTED_WITHIN = 2000 + WRITE_TIMEOUT + 1000

const redis = fileRedis()
const routes: RouteSpec[] = [{ method: 'GET', path: '/items/:id', handler: (r) => ({ headers: { 'content-type': 'text/plain' }, body: `item ${r.params.id}` }) }]
const FASTIFY = fastifyFactory('fastify5', fastify5)

let ns = 0
const namespace = (): string => `obs${process.pid}x${++ns}`

describe('L2 observed', () => {
  it('a diagnostics_channel subscriber sees L2 writes and reads (with their result and size) on corral:l2.write and corral:l2.read', async () => {
    const seen: { phase: string; event: L2Event }[] = []
    const space = namespace()
    const mine = (e: unknown): e is L2Event => (e as L2Event).key.startsWith(`${space}:`)
    const on = (phase: string) => (e: unknown) => {
      if (mine(e)) seen.push({ phase, event: e })
    }
    const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') }
    const read = diagnostics.tracingChannel(CHANNEL_NAMES['l2.read'])
    const write = diagnostics.tracingChannel(CHANNEL_NAMES['l2.write'])
    read.subscribe(handlers)
    write.subscribe(handlers)
    try {
      const a = await instance('a', { cache: { namespace: space, redis: redis.server.url, l2: { timeout: L2_TIMEOUT } }, routes }, redis.cleanups)
      const b = await instance('b', { cache: { namespace: space, redis: redis.server.url, l2: { timeout: L2_TIMEOUT } }, routes, factory: FASTIFY }, redis.cleanups)
      await until(async () => (await a.cache.health()).status === 'ok' && (await b.cache.health()).status === 'ok', CONNECTED_WITHIN, 'both instances on Redis')
      expect(xcache(await a.get('/items/1'))).toBe('MISS')
      await until(() => seen.some((s) => s.event.op === 'l2.write' && s.phase === 'asyncEnd'), WRITE_TIMEOUT, 'the write to L2')
      // b has nothing in L1: it reads a's entry from L2.
      const fromL2 = await b.get('/items/1')
      expect([xcache(fromL2), fromL2.text]).toEqual(['HIT', 'item 1'])
      const phases = (op: string, key?: string) => seen.filter((s) => s.event.op === op && (key === undefined || s.event.key === key)).map((s) => s.phase)
      const written = seen.find((s) => s.event.op === 'l2.write')!.event
      expect(written).toMatchObject({ result: 'stored', bytes: 'item 1'.length })
      expect(written.durationMs).toBeGreaterThan(0)
      expect(phases('l2.write', written.key)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
      const hitRead = seen.filter((s) => s.event.op === 'l2.read' && s.event.result === 'hit').map((s) => s.event)
      expect(hitRead[0]).toMatchObject({ key: written.key, bytes: 'item 1'.length })
      // a's own first lookup read L2 and found nothing.
      expect(seen.some((s) => s.event.op === 'l2.read' && s.event.result === 'miss' && s.phase === 'asyncEnd')).toBe(true)
    } finally {
      read.unsubscribe(handlers)
      write.unsubscribe(handlers)
    }
  })

  it('plugins get L2 events too; a plugin that asked for l2.read only gets nothing else', async () => {
    const got: CacheEvent[] = []
    const plugin: CachePlugin = { name: 'l2-only', ops: ['l2.read'], after: (e) => void got.push(e) }
    const a = await instance('a', { cache: { namespace: namespace(), redis: redis.server.url, l2: { timeout: L2_TIMEOUT }, plugins: [plugin] }, routes }, redis.cleanups)
    await until(async () => (await a.cache.health()).status === 'ok', CONNECTED_WITHIN, 'on Redis')
    await a.get('/items/2')
    // Read before the lookup, and again once this instance holds the fleet lock: both miss.
    expect(got.length).toBeGreaterThan(0)
    expect(new Set(got.map((e) => `${e.op} ${e.op === 'l2.read' ? e.result : ''}`))).toEqual(new Set(['l2.read miss']))
  })
})

describe('health with thresholds', () => {
  it('turns degraded when Redis is paused (its round trip and the L2 p99), and ok once it answers and the window has passed', async () => {
    const a = await instance(
      'a',
      { cache: { namespace: namespace(), redis: redis.server.url, l2: { timeout: L2_TIMEOUT }, health: { window: '3s', warmup: 1000, maxL2P99: '50ms' } }, routes },
      redis.cleanups,
    )
    await until(async () => (await a.cache.health()).status === 'ok', CONNECTED_WITHIN, 'on Redis')
    await a.get('/items/9')
    const before = await a.cache.health()
    expect(before.reasons.filter((r) => r.startsWith('store'))).toEqual([])
    expect(before.window.l2?.samples).toBeGreaterThan(0)
    // Paused for longer than a write deadline: the health round trip and every L2 read time out.
    const pauseMs = 3 * WRITE_TIMEOUT
    await redis.server.pause(pauseMs)
    await Promise.all([a.get('/items/10'), a.get('/items/11'), a.get('/items/12')])
    const during = await a.cache.health()
    expect(during.status).toBe('degraded')
    expect(during.reasons[0]).toMatch(/^store: redis round trip failed/)
    expect(during.reasons.some((r) => /^L2 p99 [\d.]+ ms is over 50 ms$/.test(r))).toBe(true)
    expect(during.window.l2!.p99Ms).toBeGreaterThanOrEqual(L2_TIMEOUT * 0.9)
    // Once Redis answers and the slow calls have left the 3 s window, it is ok again.
    await until(async () => (await a.cache.health()).status === 'ok', pauseMs + 3000 + CONNECTED_WITHIN, 'health ok again')
  })

  it('turns degraded when the hit rate falls under minHitRate after the warm-up, and when errors pass maxErrorRate', async () => {
    const a = await instance(
      'a',
      {
        cache: { namespace: namespace(), redis: redis.server.url, l2: { timeout: L2_TIMEOUT }, health: { warmup: 20, minHitRate: 0.5, maxErrorRate: 0.1, maxL2P99: '10s' } },
        routes: [
          ...routes,
          { method: 'GET', path: '/broken', cache: { key: () => { throw new Error('no key') } }, handler: () => ({ body: 'ok' }) },
        ],
      },
      redis.cleanups,
    )
    await until(async () => (await a.cache.health()).status === 'ok', CONNECTED_WITHIN, 'on Redis')
    // 19 misses: under the warm-up, not judged yet.
    for (let i = 0; i < 19; i++) await a.get(`/items/h${i}`)
    expect((await a.cache.health()).status).toBe('ok')
    await a.get('/items/h19')
    const cold = await a.cache.health()
    expect(cold).toMatchObject({ status: 'degraded', reasons: ['hit rate 0.0% is under 50.0% (20 lookups)'] })
    expect(cold.window).toMatchObject({ lookups: 20, hitRate: 0, errorRate: 0 })
    // 30 hits: 30 of 50 lookups from the cache.
    for (let i = 0; i < 30; i++) await a.get(`/items/h${i % 20}`)
    const warm = await a.cache.health()
    expect(warm).toMatchObject({ status: 'ok', reasons: [] })
    expect(warm.window.hitRate).toBeCloseTo(30 / 50)
    // A key function that throws: the request bypasses the cache and an error is reported.
    for (let i = 0; i < 10; i++) expect((await a.get('/broken')).status).toBe(200)
    const failing = await a.cache.health()
    expect(failing.status).toBe('degraded')
    // (Express looks a request up app-wide, then on the route: each /broken is a miss and a bypass.)
    expect(failing.reasons).toEqual([expect.stringMatching(/^error rate [\d.]+% is over 10\.0% \(10 errors in (60|70) requests\)$/)])
  })

  it('refuses bad health options, naming them', async () => {
    const { createCache } = await import('@corral/core')
    expect(() => createCache({ health: { minHitRate: 2 } })).toThrow(/options\.health\.minHitRate/)
    expect(() => createCache({ health: { warmup: -1 } })).toThrow(/options\.health\.warmup/)
    expect(() => createCache({ health: { maxL2P99: 'soon' } as never })).toThrow(/options\.health\.maxL2P99/)
    expect(() => createCache({ health: { windw: '1m' } as never })).toThrow(/unknown option options\.health\.windw/)
    expect(() => createCache({ health: { window: '1ms' } })).toThrow(/options\.health\.window to be at least 1s/)
  })
})
