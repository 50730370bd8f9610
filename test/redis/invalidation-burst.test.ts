import { randomBytes } from 'node:crypto'
import { StoreError } from '@corral/core'
import { describe, expect, it } from 'vitest'
import { fileRedis, healthy, instance, xcache, type Instance } from '../helpers/fleet.js'
import { until, type RouteSpec } from '../helpers/scenario.js'

// Issue 8, case 2: "Two instances, 2000 tagged entries; 10,000 concurrent cache.invalidate({ tags })
// on one instance: every promise resolved, none rejected, and the other instance then served
// 1701-2000 of the 2000 invalidated entries as HITs." The rule now: a promise that resolves means
// the invalidation took effect in Redis and was delivered to every instance; otherwise it
// rejects, and the invalidation is not lost but run again when Redis answers.

const redis = fileRedis()
const { cleanups } = redis

/** GET /items/:id, tagged `item:<id>` by its Cache-Tag header. */
const items: RouteSpec[] = [
  {
    method: 'GET',
    path: '/items/:id',
    handler: (r) => ({
      headers: { 'content-type': 'text/plain', 'cache-tag': `item:${String(r.params.id)}` },
      body: `item ${String(r.params.id)} call ${r.call}`,
    }),
  },
]

async function pair(timeoutMs: number): Promise<{ ns: string; a: Instance; b: Instance }> {
  const ns = `burst-${randomBytes(6).toString('hex')}`
  const cache = { redis: redis.server.url, namespace: ns, l2: { timeout: timeoutMs } }
  const a = await instance('A', { cache, routes: items }, cleanups)
  const b = await instance('B', { cache, routes: items }, cleanups)
  // Startup needs a connection and two round trips: a generous multiple of the write deadline.
  await healthy([a, b], 40 * timeoutMs)
  return { ns, a, b }
}

/** Runs `fn` over `ids` with at most `concurrency` at a time. */
async function each(ids: readonly number[], concurrency: number, fn: (id: number) => Promise<void>): Promise<void> {
  let at = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (at < ids.length) await fn(ids[at++] as number)
  }))
}

/**
 * Fills `n` entries through A, then reads each on B: an L2 hit promoted into B's L1 (with
 * `shared`; else B may also have filled some itself, when A's write missed a tight deadline).
 */
async function fill(a: Instance, b: Instance, n: number, shared: boolean): Promise<number[]> {
  const ids = Array.from({ length: n }, (_, i) => i)
  await each(ids, 32, async (id) => {
    expect(xcache(await a.fetch(`/items/${id}`))).toBe('MISS')
  })
  // A's writes to Redis finish in the background: wait for them before B reads.
  if (shared) await until(async () => (await entriesInRedis(a.cache.namespace)) === n, 5000, 'every entry in Redis')
  await each(ids, 32, async (id) => {
    const res = await b.fetch(`/items/${id}`)
    if (shared) expect(xcache(res)).toBe('HIT')
  })
  expect(b.cache.stats().entries).toBe(n)
  return ids
}

/** How many of `ids` B answers as a HIT. */
async function hitsOnB(b: Instance, ids: readonly number[]): Promise<number> {
  let hits = 0
  await each(ids, 32, async (id) => {
    if (xcache(await b.fetch(`/items/${id}`)) === 'HIT') hits++
  })
  return hits
}

/** Invalidations A keeps to run again (0, or 1 merged batch). */
async function pendingOf(a: Instance): Promise<number | undefined> {
  return ((await a.cache.health()).store?.l2 as { pendingInvalidations?: number } | undefined)?.pendingInvalidations
}

async function entriesInRedis(ns: string): Promise<number> {
  let n = 0
  let cursor = '0'
  do {
    const [next, keys] = await redis.raw.scan(cursor, 'MATCH', `${ns}:v1:*`, 'COUNT', 1000)
    cursor = next
    n += keys.filter((k) => /^[^:]+:v1:[\w-]{43}$/.test(k)).length
  } while (cursor !== '0')
  return n
}

describe('a burst of invalidations across two instances', () => {
  it('10,000 concurrent invalidations of 2,000 tags with the default deadlines: what resolves has taken effect everywhere, what rejects runs again, nothing is served again', async () => {
    // B fills and observes with generous deadlines; A invalidates with the default ones (50 ms
    // reads, 200 ms writes), under which the burst used to be cut short and resolve anyway.
    const { ns, a: b, b: other } = await pair(1000)
    const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes: items }, cleanups)
    await healthy([a], 5000)
    const ids = await fill(other, b, 2000, true)
    expect(await entriesInRedis(ns)).toBe(2000)

    // Redis stalls a little longer than A's write deadline as the burst starts, as a busy Redis
    // would: what A sends first misses its deadline.
    await redis.server.pause(250)
    const outcomes = await Promise.allSettled(Array.from({ length: 10_000 }, (_, i) => a.cache.invalidate({ tags: [`item:${i % 2000}`] })))
    const resolvedIds = new Set<number>()
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') resolvedIds.add(i % 2000)
      else expect(o.reason).toBeInstanceOf(StoreError)
    })
    // The first batch stalls and rejects; the next one, which merges the other 9,999 (and the
    // first, kept to run again), resolves once Redis answers.
    expect(resolvedIds.size).toBeGreaterThan(0)
    // Resolved means Redis has delivered every message to B: no waiting before asking it (in
    // this one process, B reads them on the event loop's next turn, before it reads a request).
    expect(await hitsOnB(b, [...resolvedIds])).toBe(0)

    // Whatever rejected is run again once Redis answers; then nothing at all is left.
    await until(async () => (await pendingOf(a)) === 0, 10_000, 'the refused invalidations to run')
    await until(async () => (await entriesInRedis(ns)) <= resolvedIds.size, 5000, 'the sweep of the rest')
    const rest = ids.filter((id) => !resolvedIds.has(id))
    expect(await hitsOnB(b, rest)).toBe(0)
  }, 60_000)

  it('12,000 invalidations of distinct URLs at once (a burst of unsafe requests) run in batches: each drops its entry everywhere, and nothing else is flushed', async () => {
    const { ns, a, b } = await pair(1000)
    const ids = await fill(a, b, 300, true)
    const outcomes = await Promise.allSettled(Array.from({ length: 12_000 }, (_, i) => a.cache.invalidate({ keys: [`/items/${i < 150 ? i : 1000 + i}`] })))
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([])
    expect(outcomes.slice(0, 150).map((o) => (o as PromiseFulfilledResult<number>).value)).toEqual(Array.from({ length: 150 }, () => 1))
    expect(await entriesInRedis(ns)).toBe(150)
    expect(await hitsOnB(b, ids.slice(0, 150))).toBe(0)
    expect(await hitsOnB(b, ids.slice(150))).toBe(150)
    expect(await pendingOf(a)).toBe(0)
  }, 60_000)

  it('when Redis stops answering mid-burst, the invalidations it could not make reject, run again once it answers, and nothing invalidated is served after', async () => {
    // A tight deadline for A, so that the pause below exceeds it.
    const { ns, a, b } = await pair(50)
    const ids = await fill(a, b, 500, false)
    await redis.server.pause(1000)
    const outcomes = await Promise.allSettled(ids.map((id) => a.cache.invalidate({ tags: [`item:${id}`] })))
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected')
    expect(rejected.length).toBeGreaterThan(0)
    for (const r of rejected) expect(r.reason).toBeInstanceOf(StoreError)

    // Once Redis answers again, the kept invalidations run (merged) and reach B. The pause, then
    // the breaker's cooldown, then a batch: bounded by a few seconds.
    await until(async () => (await pendingOf(a)) === 0, 10_000, 'the refused invalidations to run')
    await until(() => b.cache.stats().entries === 0, 2000, "B's L1 to drop what they removed")
    expect(await entriesInRedis(ns)).toBe(0)
    expect(await hitsOnB(b, ids)).toBe(0)
  }, 60_000)
})
