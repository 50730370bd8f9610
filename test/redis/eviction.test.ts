import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { healthy, instance, xcache, type Instance } from '../helpers/fleet.js'
import { startRedis, type RedisServer } from '../helpers/redis-server.js'
import { until, type RouteSpec } from '../helpers/scenario.js'
import { runCleanups } from '../helpers/setup.js'

// Issue 8, case 3: "With maxmemory-policy allkeys-lru, Redis evicted tag and path index sets;
// invalidating every tag left 310 of 1625 entries, served as HITs by a fresh instance." Corral now
// reads the policy (INFO memory) on every connection and every minute, keeps entries in Redis only
// when nothing can be evicted, and says why in health().

const cleanups: (() => Promise<void>)[] = []
afterEach(() => runCleanups(cleanups))

const items: RouteSpec[] = [
  {
    method: 'GET',
    path: '/items/:id',
    handler: (r) => ({
      headers: { 'content-type': 'text/plain', 'cache-tag': `item:${String(r.params.id)} all` },
      body: `item ${String(r.params.id)} call ${r.call} ${'x'.repeat(2000)}`,
    }),
  },
]

async function redisWith(args: readonly string[]): Promise<RedisServer> {
  const server = await startRedis({ args })
  cleanups.push(() => server.stop())
  return server
}

/** Entry keys (not indexes, locks or the log) of a namespace. */
async function entries(server: RedisServer, ns: string): Promise<number> {
  const keys = await server.client().keys(`${ns}:v1:*`)
  return keys.filter((k) => /^[^:]+:v1:[\w-]{43}$/.test(k)).length
}

async function start(server: RedisServer, ns: string, name: string, l2: Record<string, unknown> = {}): Promise<Instance> {
  return instance(name, { cache: { redis: server.url, namespace: ns, l2: { timeout: 1000, ...l2 } }, routes: items }, cleanups)
}

/** The L2 part of health(). */
async function l2Health(i: Instance): Promise<{ ok: boolean; eviction: { policy: string; safe: boolean; note?: string } }> {
  const h = await i.cache.health()
  return h.store?.l2 as never
}

const ns = (): string => `ev-${randomBytes(5).toString('hex')}`

describe('an eviction policy that could undo invalidations', () => {
  it('allkeys-lru with a maxmemory: health says so, entries stay in L1 only, and a fresh instance never reads what Redis may have kept', async () => {
    const server = await redisWith(['--maxmemory', '4mb', '--maxmemory-policy', 'allkeys-lru'])
    const space = ns()
    const a = await start(server, space, 'A')
    await until(async () => (await l2Health(a)).eviction.policy === 'allkeys-lru', 5000, 'the policy read')
    const h = await a.cache.health()
    expect(h.status).toBe('degraded')
    expect((await l2Health(a)).eviction).toMatchObject({ policy: 'allkeys-lru', safe: false })
    expect(a.errors.some((e) => /evict/.test(e.message))).toBe(true)

    // Enough entries to overflow maxmemory, each with a tag and path indexes.
    for (let id = 0; id < 1625; id++) expect(xcache(await a.fetch(`/items/${id}`))).toBe('MISS')
    expect(xcache(await a.fetch('/items/7'))).toBe('HIT') // from L1
    expect(await entries(server, space)).toBe(0)

    expect(await a.cache.invalidate({ tags: ['all'] })).toBeGreaterThan(0)
    const fresh = await start(server, space, 'B')
    for (let id = 0; id < 1625; id += 25) expect(xcache(await fresh.fetch(`/items/${id}`))).toBe('MISS')
  }, 60_000)

  it('noeviction, or no maxmemory at all, is safe: entries are shared through Redis', async () => {
    for (const args of [
      ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'],
      ['--maxmemory', '0', '--maxmemory-policy', 'allkeys-lru'],
    ]) {
      const server = await redisWith(args)
      const space = ns()
      const a = await start(server, space, 'A')
      const b = await start(server, space, 'B')
      await healthy([a, b], 5000)
      expect((await l2Health(a)).eviction.safe).toBe(true)
      expect(xcache(await a.fetch('/items/1'))).toBe('MISS')
      await until(async () => (await entries(server, space)) === 1, 5000, 'the entry in Redis')
      expect(xcache(await b.fetch('/items/1'))).toBe('HIT')
    }
  })

  it('a policy changed at run time is noticed at the next check: entries written before are not read any more', async () => {
    const server = await redisWith(['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'])
    const space = ns()
    const a = await start(server, space, 'A')
    const b = await start(server, space, 'B')
    await healthy([a, b], 5000)
    expect(xcache(await a.fetch('/items/1'))).toBe('MISS')
    await until(async () => (await entries(server, space)) === 1, 5000, 'the entry in Redis')
    await server.client().config('SET', 'maxmemory-policy', 'volatile-lru')
    // health() reads the policy again (so does a timer, every minute).
    expect((await b.cache.health()).status).toBe('degraded')
    expect((await l2Health(b)).eviction).toMatchObject({ policy: 'volatile-lru', safe: false })
    expect(xcache(await b.fetch('/items/1'))).toBe('MISS')
    expect((await a.cache.health()).status).toBe('degraded')
    expect(xcache(await a.fetch('/items/2'))).toBe('MISS')
    expect(xcache(await b.fetch('/items/2'))).toBe('MISS')
    expect(await entries(server, space)).toBe(1)
  })

  it('l2.assumeNoEviction trusts a Redis that says it may evict (for hosts that manage memory themselves)', async () => {
    const server = await redisWith(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'])
    const space = ns()
    const a = await start(server, space, 'A', { assumeNoEviction: true })
    await healthy([a], 5000)
    expect((await l2Health(a)).eviction).toMatchObject({ policy: 'allkeys-lru', safe: true, note: expect.stringMatching(/assumeNoEviction/) })
    expect(xcache(await a.fetch('/items/1'))).toBe('MISS')
    await until(async () => (await entries(server, space)) === 1, 5000, 'the entry in Redis')
  })
})
