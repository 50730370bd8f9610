import { randomBytes } from 'node:crypto'
// The key function itself: not public, but the only way to name the lock a request takes.
import { makePrimaryKey } from '../../packages/core/src/model/key.js'
import { describe, expect, it } from 'vitest'
import { FLEET_HOST, fileRedis, healthy, instance, xcache, type Instance } from '../helpers/fleet.js'
import { until, type RouteSpec } from '../helpers/scenario.js'

// Issue 8, case 7: "A planted lock key with no TTL makes every cold request on that key wait the
// full lockTimeout. An index key of the wrong type makes the entry get stored anyway, invalidate
// fail with WRONGTYPE, and another instance serve the stale entry." Locks and index sets found in
// Redis are now checked (shape, TTL, type): what Corral did not write is replaced, and where that
// may have cost an index its members, the whole namespace is invalidated.

const redis = fileRedis()
const { cleanups } = redis

/** Long enough that a request held by a planted lock would stand out from one that was not. */
const LOCK_TIMEOUT_MS = 10_000

/** Origin calls across every instance: a body names the one call that produced it. */
let served = 0
const items: RouteSpec[] = [
  {
    method: 'GET',
    path: '/items/:id',
    handler: (r) => ({
      headers: { 'content-type': 'text/plain', 'cache-tag': `item:${String(r.params.id)} group` },
      body: `item ${String(r.params.id)} origin call #${++served}`,
    }),
  },
]

async function fleet(n: number): Promise<{ ns: string; list: Instance[] }> {
  const ns = `trust-${randomBytes(5).toString('hex')}`
  const list: Instance[] = []
  for (let i = 0; i < n; i++) {
    list.push(await instance(String.fromCharCode(65 + i), { cache: { redis: redis.server.url, namespace: ns, lockTimeout: LOCK_TIMEOUT_MS }, routes: items }, cleanups))
  }
  await healthy(list, 5000)
  return { ns, list }
}

/** The Redis key of the lock a fill of `path` takes. */
function lockOf(ns: string, path: string): string {
  const { key } = makePrimaryKey(ns, { method: 'GET', url: path, headers: { host: FLEET_HOST } })
  return `${key}:lock`
}

describe('locks Corral did not write', () => {
  it.each<[string, (key: string) => Promise<unknown>]>([
    ['a string without a TTL', (key) => redis.raw.set(key, 'held-forever')],
    ['a token-shaped value whose TTL is longer than it declares', (key) => redis.raw.set(key, '1000.AAAAAAAAAAAAAAAA', 'PX', 600_000)],
    ['a token declaring more than a timer can hold', (key) => redis.raw.set(key, '99999999999.AAAAAAAAAAAAAAAA', 'PX', 600_000)],
    ['a hash', (key) => redis.raw.hset(key, 'owner', 'someone')],
  ])('%s is replaced: the cold request goes to the origin at once instead of waiting lockTimeout', async (_, plant) => {
    const { ns, list } = await fleet(1)
    const [a] = list as [Instance]
    const lock = lockOf(ns, '/items/1')
    await plant(lock)
    const res = await a.get('/items/1')
    expect(xcache(res)).toBe('MISS')
    expect(res.text).toBe(`item 1 origin call #${served}`)
    expect(a.calls()).toBe(1)
    // Far below the 10 s it would have waited for a lock nobody releases.
    expect(res.ms).toBeLessThan(LOCK_TIMEOUT_MS / 4)
    expect(a.cache.stats().rejected).toBeGreaterThanOrEqual(1)
    // Our own lock took its place, and is released once the entry's write has finished.
    expect(xcache(await a.get('/items/1'))).toBe('HIT')
    await until(async () => (await redis.raw.exists(lock)) === 0, 5000, 'the lock released')
  })
})

describe('index sets that are not sets', () => {
  it('planted before any entry: the entry is stored with a real index, and invalidating its tag works everywhere', async () => {
    const { ns, list } = await fleet(2)
    const [a, b] = list as [Instance, Instance]
    await redis.raw.set(`${ns}:v1:i:t:item:1`, 'not a set')
    const before = new Set<string>()
    const first = await a.get('/items/1')
    expect(xcache(first)).toBe('MISS')
    before.add(first.text)
    // Whatever A stored, B may share (or fill itself); then the tag is invalidated from A.
    before.add((await b.get('/items/1')).text)
    expect(await redis.raw.type(`${ns}:v1:i:t:item:1`)).not.toBe('string')
    await expect(a.cache.invalidate({ tags: ['item:1'] })).resolves.toBeTypeOf('number')
    // A fills again; B may share that new entry, never one from before.
    const again = await a.get('/items/1')
    expect(xcache(again)).toBe('MISS')
    for (const res of [again, await b.get('/items/1')]) expect(before.has(res.text)).toBe(false)
    expect(a.errors.filter((e) => /WRONGTYPE/.test(String((e.cause as Error | undefined)?.message)))).toEqual([])
  })

  it('replaced after entries were indexed: the invalidation widens to the whole namespace, and no instance serves them again', async () => {
    const { ns, list } = await fleet(3)
    const [a, b, c] = list as [Instance, Instance, Instance]
    const before = new Set<string>()
    for (const id of [1, 2, 3]) {
      const res = await a.get(`/items/${id}`)
      expect(xcache(res)).toBe('MISS')
      before.add(res.text)
    }
    const index = `${ns}:v1:i:t:group`
    for (const id of [1, 2, 3]) before.add((await b.get(`/items/${id}`)).text)
    // The set that listed the three entries is gone; a string stands in its place.
    await redis.raw.del(index)
    await redis.raw.set(index, 'planted')
    const removed = await a.cache.invalidate({ tags: ['group'] })
    expect(removed).toBeGreaterThanOrEqual(3)
    // No instance serves a body from before the invalidation: not A or B from L1, not C (which
    // never had them) from Redis.
    for (const i of [c, a, b]) {
      for (const id of [1, 2, 3]) expect(before.has((await i.get(`/items/${id}`)).text)).toBe(false)
    }
    expect(a.cache.stats().rejected).toBeGreaterThanOrEqual(1)
  })

  it('an index member naming a key outside its namespace (or not an entry) is dropped, never unlinked: a purge cannot delete other data', async () => {
    const { ns, list } = await fleet(1)
    const [a] = list as [Instance]
    expect(xcache(await a.get('/items/1'))).toBe('MISS')
    const index = `${ns}:v1:i:t:group`
    await until(async () => (await redis.raw.scard(index)) > 0, 5000, 'the entry indexed under its tag')
    // Someone else's data, and this namespace's own log and a lock, named by planted members.
    await redis.raw.set('other-app:session:42', 'precious')
    await redis.raw.set(`${ns}:v1:someone:lock`, 'held')
    await redis.raw.sadd(index, 'other-app:session:42 /items/1', `${ns}:v1:someone:lock /items/1`)
    expect(await a.cache.invalidate({ tags: ['group'] })).toBe(1)
    expect(await redis.raw.get('other-app:session:42')).toBe('precious')
    expect(await redis.raw.get(`${ns}:v1:someone:lock`)).toBe('held')
    // The planted members are gone from the index; what they named is counted as foreign.
    expect(await redis.raw.sismember(index, 'other-app:session:42 /items/1')).toBe(0)
    expect(a.cache.stats().rejected).toBeGreaterThanOrEqual(2)
    expect(xcache(await a.get('/items/1'))).toBe('MISS')
  })

  it('a value of another type at the invalidation log is replaced: invalidations still take effect', async () => {
    const { ns, list } = await fleet(1)
    const [a] = list as [Instance]
    expect(xcache(await a.get('/items/1'))).toBe('MISS')
    await until(async () => (await redis.raw.scard(`${ns}:v1:i:t:group`)) > 0, 5000, 'the entry indexed under its tag')
    await redis.raw.del(`${ns}:v1:log`)
    await redis.raw.set(`${ns}:v1:log`, 'planted')
    expect(await a.cache.invalidate({ tags: ['item:1'] })).toBe(1)
    expect(await redis.raw.type(`${ns}:v1:log`)).toBe('stream')
    expect(a.cache.stats().rejected).toBeGreaterThanOrEqual(1)
    expect(xcache(await a.get('/items/1'))).toBe('MISS')
  })
})
