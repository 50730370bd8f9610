import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import fastify5 from 'fastify5'
import { fastifyFactory } from '../helpers/fastify.js'
import { fileRedis, healthy, instance, xcache } from '../helpers/fleet.js'
import { signal, until, type OriginRequest, type Reply } from '../helpers/scenario.js'

// Issue 11: two instances sharing Redis serve a stale entry side by side while exactly one of
// them refreshes it for both (the fill lock), then both pick up the new entry from L2.

const redis = fileRedis()
const { cleanups } = redis

/** The entry's freshness in the test below: short, because Redis counts real time. */
const MAX_AGE_S = 1
/** Instance B runs Fastify 5 (A runs Express 5, the fleet's default): one engine, two adapters. */
const FASTIFY = fastifyFactory('fastify5', fastify5)

it('two instances (Express 5 and Fastify 5): a stale entry is served by both, one refresh for the fleet, then both serve the new entry', async () => {
  const ns = `swr-${randomBytes(5).toString('hex')}`
  const gate = signal()
  let calls = 0
  const routes = (name: string) => [
    {
      method: 'GET' as const,
      path: '/hot',
      handler: async (r: OriginRequest): Promise<Reply> => {
        calls++
        // Every refresh waits until both instances have answered from the stale entry.
        if (calls > 1) await gate.promise
        return { headers: { 'content-type': 'text/plain', 'cache-control': `max-age=${MAX_AGE_S}, stale-while-revalidate=60` }, body: `${name} call ${r.call}` }
      },
    },
  ]
  const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes: routes('A') }, cleanups)
  const b = await instance('B', { cache: { redis: redis.server.url, namespace: ns }, routes: routes('B'), factory: FASTIFY }, cleanups)
  await healthy([a, b], 5000)

  expect(xcache(await a.get('/hot'))).toBe('MISS')
  await until(async () => xcache(await b.get('/hot')) === 'HIT', 5000, "A's entry in Redis, read by B")
  // Past its freshness (Redis counts real time): derived from max-age, with margin.
  const stale = Date.now() + MAX_AGE_S * 1000 + 200
  await until(() => Date.now() > stale, MAX_AGE_S * 1000 + 1000, 'the entry to be stale')

  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).get('/hot')))
  expect(new Set(answers.map((r) => `${xcache(r)} ${r.text}`))).toEqual(new Set(['STALE A call 1']))
  // One refresh for both instances; the one that did not take the lock refreshes nothing.
  await until(() => calls === 2, 5000, 'the one refresh to reach an origin')
  gate.resolve()
  await until(async () => (await a.get('/hot')).text !== 'A call 1' && (await b.get('/hot')).text !== 'A call 1', 5000, 'both instances to serve the refreshed entry')
  const [onA, onB] = [await a.get('/hot'), await b.get('/hot')]
  expect([xcache(onA), xcache(onB)]).toEqual(['HIT', 'HIT'])
  expect(onA.text).toBe(onB.text)
  expect(calls).toBe(2)
  expect(a.cache.stats().revalidations + b.cache.stats().revalidations).toBeGreaterThanOrEqual(1)
  expect(a.cache.stats().revalidationFailures + b.cache.stats().revalidationFailures).toBe(0)
  expect([...a.errors, ...b.errors]).toEqual([])
}, 30_000)

it('soft purge across two instances (Express 5 and Fastify 5) and Redis: the entry is served stale by both and kept only for its stale window; a removal after it still finds it', async () => {
  const ns = `soft-${randomBytes(5).toString('hex')}`
  let calls = 0
  const routes = [
    {
      method: 'GET' as const,
      path: '/doc',
      handler: (): Reply => {
        calls++
        return { headers: { 'content-type': 'text/plain', 'cache-tag': 'doc', 'cache-control': 'max-age=600, stale-while-revalidate=30' }, body: `version ${calls}` }
      },
    },
  ]
  const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes }, cleanups)
  const b = await instance('B', { cache: { redis: redis.server.url, namespace: ns }, routes, factory: FASTIFY }, cleanups)
  await healthy([a, b], 5000)
  expect(xcache(await a.get('/doc'))).toBe('MISS')
  await until(async () => xcache(await b.get('/doc')) === 'HIT', 5000, "A's entry in Redis, read by B")
  const entryKeys = async () => (await redis.raw.keys(`${ns}:v1:*`)).filter((k) => /:v1:[\w-]{43}$/.test(k))
  const [key] = await entryKeys()
  expect(await redis.raw.pttl(key as string)).toBeGreaterThan(30_000)

  expect(await a.cache.invalidate({ tags: ['doc'], soft: true })).toBe(1)
  // Resolved: Redis keeps the entry for its stale window only, and B has been told.
  const ttl = await redis.raw.pttl(key as string)
  expect(ttl).toBeGreaterThan(0)
  expect(ttl).toBeLessThanOrEqual(30_000)
  const onB = await b.get('/doc')
  expect([xcache(onB), onB.text]).toEqual(['STALE', 'version 1'])
  await until(async () => (await a.get('/doc')).text === 'version 2' && (await b.get('/doc')).text === 'version 2', 5000, 'both to serve the refreshed entry')
  expect(calls).toBe(2)

  // A soft purge leaves the entry indexed: a removal finds it.
  await a.cache.invalidate({ tags: ['doc'], soft: true })
  expect(await a.cache.invalidate({ tags: ['doc'] })).toBe(1)
  expect(await entryKeys()).toEqual([])
  expect(xcache(await b.get('/doc'))).toBe('MISS')
  expect([...a.errors, ...b.errors]).toEqual([])
}, 30_000)

it('a soft purge removes what it cannot soften (a key of another type, metadata Redis cannot parse), and later soft purges still work', async () => {
  const ns = `soft-odd-${randomBytes(5).toString('hex')}`
  // A tag cut in the middle of an emoji: JSON writes the lone surrogate as \ud83d, which Redis's cjson refuses.
  const lone = 'name:Caf\u{1F600}'.slice(0, 9)
  let calls = 0
  const routes = [
    {
      method: 'GET' as const,
      path: '/odd/:id',
      handler: (r: OriginRequest): Reply => {
        calls++
        const id = String(r.params.id)
        return { headers: { 'cache-tag': id, 'cache-control': 'max-age=600, stale-while-revalidate=600' }, body: `${id} ${calls}` }
      },
      cache: { tags: (req: { params: { id: string } }) => (req.params.id === 'emoji' ? [lone] : []) },
    },
  ]
  const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes }, cleanups)
  await healthy([a], 5000)
  for (const id of ['emoji', 'x', 'y']) expect(xcache(await a.get(`/odd/${id}`))).toBe('MISS')
  const entryKeys = async () => (await redis.raw.keys(`${ns}:v1:*`)).filter((k) => /:v1:[\w-]{43}$/.test(k))
  await until(async () => (await entryKeys()).length === 3, 5000, 'three entries in Redis')
  const urlOf = async (k: string) => ((await redis.raw.getBuffer(k))?.toString('latin1').match(/"url":"([^"]+)"/) ?? [])[1]
  const keyOf = async (url: string) => {
    for (const k of await entryKeys()) if ((await urlOf(k)) === url) return k
    throw new Error(`no entry for ${url}`)
  }
  const emojiKey = await keyOf('/odd/emoji')
  const xKey = await keyOf('/odd/x')
  // Something Corral did not write, under an indexed entry key.
  await redis.raw.del(xKey)
  await redis.raw.hset(xKey, 'planted', 'yes')
  await redis.raw.pexpire(xKey, 600_000)

  expect(await a.cache.invalidate({ tags: [lone], soft: true })).toBe(1)
  expect(await redis.raw.exists(emojiKey)).toBe(0)
  expect(await a.cache.invalidate({ keys: ['/odd/x'], soft: true })).toBe(1)
  expect(await redis.raw.exists(xKey)).toBe(0)
  // Later soft purges are not held up by either.
  const yKey = await keyOf('/odd/y')
  expect(await a.cache.invalidate({ keys: ['/odd/y'], soft: true })).toBe(1)
  const ttl = await redis.raw.pttl(yKey)
  expect(ttl).toBeGreaterThan(0)
  expect(ttl).toBeLessThanOrEqual(600_000)
  expect((await a.cache.health()).store?.ok).toBe(true)
}, 30_000)
