import { randomBytes } from 'node:crypto'
import { CorralError, StoreError, type CacheOptions } from '@corral/core'
import fastify5 from 'fastify5'
import { describe, expect, it } from 'vitest'
import { fastifyFactory } from '../helpers/fastify.js'
import { FLEET_HOST, fileRedis, instance, xcache, type Instance, type InstanceOptions } from '../helpers/fleet.js'
import { send, type Res } from '../helpers/http.js'
import { startRedis } from '../helpers/redis-server.js'
import { signal, until, type AdapterFactory, type RouteSpec } from '../helpers/scenario.js'

// Two app instances in this process share one private redis-server, the way two processes behind
// a load balancer would: each has its own cache (L1) and origin counter, and only Redis connects
// them. Every test uses a namespace of its own on the file's server.
//
// Requests carry the same Host header on both instances, as they do behind a load balancer: the
// Host is part of the cache key, and the two apps listen on different ports.

// Timing: waits for a state poll it, or wait for a signal (an origin call that has started, a
// message received, writes settled), and every deadline is derived from what the caches here are
// configured with. A test that passes never waits for a deadline; they bound how long a failing one
// takes to say what it waited for.

/** `l2.timeout` of every instance (generous: these tests are about sharing, not latency). */
const L2_TIMEOUT = 1000
/** RedisStore gives writes, invalidation steps, INFO and health round trips four times `l2.timeout`. */
const WRITE_TIMEOUT = 4 * L2_TIMEOUT
/** `connectTimeout` of the client createCache makes (redis-client.ts). */
const CONNECT_TIMEOUT = 2000
/** Longest pause between two reconnection attempts of that client. */
const RECONNECT_MAX_MS = 2000
/** The default `l1Ttl`: how long an instance answers from its own L1; an invalidation message must beat it. */
const L1_TTL = 10_000
/** The default `lockTimeout`: how long a request waits for another one's fill before it takes over. */
const LOCK_TIMEOUT = 5000
/** For timers that fire late on a busy machine. */
const MARGIN = 1000
/** A fresh instance is connected (within the connect timeout) and has read the eviction policy (INFO, a write deadline). */
const CONNECTED_WITHIN = CONNECT_TIMEOUT + WRITE_TIMEOUT + MARGIN
/** A message published by one instance reaches the others well before `l1Ttl`, the bound on a lost one. */
const MESSAGE_WITHIN = L1_TTL / 2
/**
 * An origin held until every other request of a burst waits for it answers before the waiters'
 * `lockTimeout` (after which one of them would take over and call the origin too).
 */
const BURST_WITHIN = LOCK_TIMEOUT / 2

const FASTIFY: AdapterFactory = fastifyFactory('fastify5', fastify5)
const MiB = 1024 * 1024

const shared = fileRedis()
const { cleanups } = shared

const namespace = (): string => `mi-${randomBytes(6).toString('hex')}`

/** What differs between the instances of a test: the adapter, and cache options over the file's defaults. */
interface Variant {
  readonly factory?: AdapterFactory
  readonly cache?: CacheOptions
}

/** Instance `name` on namespace `ns` of the file's server (unless `variant.cache.redis` says otherwise). */
function start(name: string, ns: string, routes: (name: string) => readonly RouteSpec[], variant: Variant = {}): Promise<Instance> {
  const options: InstanceOptions = {
    cache: { namespace: ns, redis: shared.server.url, ...variant.cache },
    routes: routes(name),
    factory: variant.factory,
  }
  return instance(name, options, cleanups)
}

/** Two instances on one namespace, connected and subscribed to each other's messages. */
async function pair(
  routes: (name: string) => readonly RouteSpec[],
  variants: { a?: Variant; b?: Variant } = {},
): Promise<{ ns: string; a: Instance; b: Instance }> {
  const ns = namespace()
  const a = await start('A', ns, routes, variants.a)
  const b = await start('B', ns, routes, variants.b)
  await connected(ns, [a, b])
  return { ns, a, b }
}

/** Waits until every instance's Redis round trip works and both listen on the bus and fill channels. */
async function connected(ns: string, instances: readonly Instance[], within = CONNECTED_WITHIN): Promise<void> {
  await until(async () => {
    const health = await Promise.all(instances.map((i) => i.cache.health()))
    if (!health.every((h) => h.status === 'ok')) return false
    const reply = (await shared.raw.pubsub('NUMSUB', `${ns}:v1:bus`, `${ns}:v1:fill`)) as (string | number)[]
    return Number(reply[1]) === instances.length && Number(reply[3]) === instances.length
  }, within, 'instances connected to Redis and subscribed')
}

/** Fails with `what` unless `promise` settles within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Internal fields of a cache made with `createCache({ redis })`, read only: its RedisStore. */
interface RedisTier {
  writesSettled(): Promise<void>
  subscribe(channel: string, listener: (payload: string) => void): void
}

function redisTierOf(i: Instance): RedisTier {
  const l2 = (i.cache as unknown as { store: { l2?: RedisTier } }).store.l2
  if (l2 === undefined || typeof l2.writesSettled !== 'function') throw new Error(`instance ${i.name} has no Redis tier`)
  return l2
}

/**
 * Resolves once every L2 write the instances have started has finished (TieredStore starts them
 * on the turn after a fill stores, hence the setImmediate first). A fill stores before its response
 * is complete, so after a response has arrived its entry is in Redis once this resolves.
 */
async function writesSettled(...instances: readonly Instance[]): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  await Promise.all(instances.map((i) => redisTierOf(i).writesSettled()))
}

/**
 * Resolves when the instance's subscriber connection receives the next invalidation message. The
 * cache's own listener was added before this one, so by then the instance has acted on it (its L1
 * cleared, its fills in flight marked).
 */
function nextBusMessage(i: Instance, _ns: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = false
    redisTierOf(i).subscribe('bus', () => {
      if (seen) return
      seen = true
      resolve()
    })
  })
}

/**
 * Requests of an instance waiting for another request's fill (on its own fill, or on the fleet
 * lock another instance holds): `stats().coalesced` counts each of them as it starts waiting.
 */
function waiting(...instances: readonly Instance[]): number {
  return instances.reduce((n, i) => n + i.cache.stats().coalesced, 0)
}

/** Entry keys of a namespace: `<ns>:v1:<hash>` and variants; not locks, index sets or health keys. */
async function entryKeys(ns: string): Promise<string[]> {
  const pattern = new RegExp(`^${ns}:v1:[\\w-]{43}(:[\\w-]{43})?$`)
  return (await shared.raw.keys(`${ns}:v1:*`)).filter((k) => pattern.test(k)).sort()
}

/** The URL an entry in Redis was stored for, read from its envelope's metadata. */
function urlOf(bytes: Buffer): string {
  const signed = ((bytes[5] as number) & 1) === 1
  const at = 6 + (signed ? 32 : 0)
  const len = bytes.readUInt32BE(at)
  const meta = JSON.parse(bytes.subarray(at + 4, at + 4 + len).toString('utf8')) as { url: string }
  return meta.url
}

/** Entry key per URL, for every entry of the namespace. */
async function keysByUrl(ns: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const key of await entryKeys(ns)) {
    const bytes = await shared.raw.getBuffer(key)
    if (bytes !== null) out.set(urlOf(bytes), key)
  }
  return out
}

/**
 * Once the instances' L2 writes (made in the background) have finished, Redis holds an entry for
 * each URL; answers the entry key per URL.
 */
async function storedInRedis(ns: string, urls: readonly string[], instances: readonly Instance[]): Promise<Map<string, string>> {
  await writesSettled(...instances)
  const keys = await keysByUrl(ns)
  expect(urls.filter((u) => !keys.has(u)), 'URLs without an entry in Redis once every write has finished').toEqual([])
  return keys
}

const json = (res: Res): { id: string; price: number; by: string; call: number } => JSON.parse(res.text)

/**
 * A product catalogue over a database both instances share (`db`): GET is cached with the tag
 * `product:<id>`; PUT bumps the price and invalidates the tag. Bodies say which instance's origin
 * served them and its call number. `origin`, when given, runs before a GET answers (to hold it).
 */
function catalogue(db: Map<string, number>, origin?: (name: string, call: number) => Promise<void>) {
  return (name: string): RouteSpec[] => [
    {
      method: 'GET',
      path: '/products/:id',
      cache: { tags: (req: { params: { id: string } }) => [`product:${req.params.id}`] },
      handler: async (r) => {
        if (origin !== undefined) await origin(name, r.call)
        const id = String(r.params.id)
        return { headers: { 'content-type': 'application/json' }, body: { json: { id, price: db.get(id) ?? 0, by: name, call: r.call } } }
      },
    },
    {
      method: 'PUT',
      path: '/products/:id',
      invalidate: (req: { params: { id: string } }) => ({ tags: [`product:${req.params.id}`] }),
      handler: (r) => {
        const id = String(r.params.id)
        db.set(id, (db.get(id) ?? 0) + 1)
        return { body: { json: { ok: true } } }
      },
    },
  ]
}

describe('two instances on one Redis', () => {
  describe('sharing entries', () => {
    it('a response filled by instance A is a HIT on instance B, whose origin is never called, with the Age it has on A', async () => {
      const routes = (name: string): RouteSpec[] => [
        {
          method: 'GET',
          path: '/news/:id',
          cache: {},
          // An upstream already held this response for 100 s: the Age must survive the trip through Redis.
          handler: (r) => ({
            headers: { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', age: '100' },
            body: `news ${String(r.params.id)} from ${name} call ${r.call}`,
          }),
        },
      ]
      const { ns, a, b } = await pair(routes)

      const sent = Date.now()
      const miss = await a.get('/news/1')
      expect(miss.status).toBe(200)
      expect(xcache(miss)).toBe('MISS')
      expect(miss.text).toBe('news 1 from A call 1')
      await storedInRedis(ns, ['/news/1'], [a])

      const hit = await b.get('/news/1')
      const elapsed = Date.now() - sent
      expect(hit.status).toBe(200)
      expect(xcache(hit)).toBe('HIT')
      expect(hit.text).toBe('news 1 from A call 1')
      expect(hit.headers['content-type']).toMatch(/^text\/plain/)
      expect(hit.headers['cache-control']).toBe('public, max-age=600')
      // 100 s from upstream plus the whole seconds the entry has spent in the cache: at most the
      // time since the miss was sent, plus a second for the times B rebuilds from Redis' PTTL.
      const age = Number(hit.headers.age)
      expect(Number.isInteger(age)).toBe(true)
      expect(age).toBeGreaterThanOrEqual(100)
      expect(age).toBeLessThanOrEqual(100 + Math.ceil((elapsed + 1000) / 1000))

      // Promoted into B's L1: answered again without either origin.
      expect(xcache(await b.get('/news/1'))).toBe('HIT')
      expect(a.calls()).toBe(1)
      expect(b.calls()).toBe(0)
      expect(b.cache.stats()).toMatchObject({ hits: 2, misses: 0, rejected: 0, errors: 0 })
      expect([...a.errors, ...b.errors]).toEqual([])
    })

    it('a response filled by an Express instance is a HIT on a Fastify instance (same key in both adapters)', async () => {
      const db = new Map([['7', 70]])
      const { ns, a, b } = await pair(catalogue(db), { b: { factory: FASTIFY } })

      const miss = await a.get('/products/7?utm=x&color=red')
      expect(xcache(miss)).toBe('MISS')
      await storedInRedis(ns, ['/products/7?color=red&utm=x'], [a])

      const hit = await b.get('/products/7?utm=x&color=red')
      expect(xcache(hit)).toBe('HIT')
      expect(hit.body.equals(miss.body)).toBe(true)
      expect(json(hit)).toEqual({ id: '7', price: 70, by: 'A', call: 1 })
      expect(b.calls()).toBe(0)
    })
  })

  describe('stampede', () => {
    it('100 concurrent requests on a cold key, 50 on each instance, make exactly one origin call in total', async () => {
      const db = new Map([['1', 10]])
      // The origin answers once the 99 other requests all wait for it, so that every one of them
      // really is concurrent with the fill (however slowly the burst reaches the two apps).
      let insts: Instance[] = []
      let waitingWhenAnswered = -1
      const origin = async () => {
        await until(() => waiting(...insts) >= 99, BURST_WITHIN, 'the other 99 requests to wait for the fill').catch(() => undefined)
        waitingWhenAnswered = waiting(...insts)
      }
      const { a, b } = await pair(catalogue(db, origin))
      insts = [a, b]

      const burst = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).get('/products/1')),
      )
      expect(waitingWhenAnswered, 'requests waiting for the fill when the origin answered').toBe(99)
      expect(a.calls('GET /products/:id') + b.calls('GET /products/:id')).toBe(1)
      expect(burst.map((r) => r.status)).toEqual(Array(100).fill(200))
      expect(new Set(burst.map((r) => r.text)).size).toBe(1)
      expect(json(burst[0] as Res)).toMatchObject({ id: '1', price: 10, call: 1 })
      // The one origin response reached every client; the other 99 were answered from the cache.
      expect(burst.filter((r) => xcache(r) === 'MISS')).toHaveLength(1)
      expect(burst.filter((r) => xcache(r) === 'HIT')).toHaveLength(99)
      expect([...a.errors, ...b.errors]).toEqual([])
    })
  })

  describe('invalidation', () => {
    /** Fills /products/1 on A, reads it on B (now in B's L1), and returns the pair. */
    async function warmBoth(db: Map<string, number>) {
      const p = await pair(catalogue(db))
      expect(xcache(await p.a.get('/products/1'))).toBe('MISS')
      await storedInRedis(p.ns, ['/products/1'], [p.a])
      expect(xcache(await p.b.get('/products/1'))).toBe('HIT')
      expect(p.b.cache.stats().entries).toBe(1)
      return p
    }

    it('cache.invalidate({ tags }) on A clears B\'s L1 copy, and B\'s next request is a MISS with fresh data', async () => {
      const db = new Map([['1', 10]])
      const { ns, a, b } = await warmBoth(db)

      db.set('1', 11)
      await expect(a.cache.invalidate({ tags: ['product:1'] })).resolves.toBeGreaterThanOrEqual(1)
      expect(await entryKeys(ns)).toEqual([])
      // B's L1 would answer for l1Ttl (10 s) on its own: only the message clears it sooner.
      await until(() => b.cache.stats().entries === 0, MESSAGE_WITHIN, "B's L1 to drop the invalidated entry")

      const fresh = await b.get('/products/1')
      expect(xcache(fresh)).toBe('MISS')
      expect(json(fresh)).toEqual({ id: '1', price: 11, by: 'B', call: 1 })
      expect(b.calls()).toBe(1)
      expect([...a.errors, ...b.errors]).toEqual([])
    })

    it('a mutation route with invalidate() on A makes B\'s next request a MISS with fresh data', async () => {
      const db = new Map([['1', 10]])
      const { ns, a, b } = await warmBoth(db)

      const put = await send(a.app.url, '/products/1', { method: 'PUT', headers: { host: FLEET_HOST } })
      expect(put.status).toBe(200)
      expect(db.get('1')).toBe(11)
      // The helper finishes the invalidation (L1 and L2) before the response completes.
      expect(await entryKeys(ns)).toEqual([])
      await until(() => b.cache.stats().entries === 0, MESSAGE_WITHIN, "B's L1 to drop the invalidated entry")

      const fresh = await b.get('/products/1')
      expect(xcache(fresh)).toBe('MISS')
      expect(json(fresh)).toMatchObject({ price: 11, by: 'B' })
      // And A's own next request sees the fresh entry B stored.
      await storedInRedis(ns, ['/products/1'], [b])
      const onA = await a.get('/products/1')
      expect(xcache(onA)).toBe('HIT')
      expect(json(onA)).toMatchObject({ price: 11, by: 'B' })
      expect(a.calls('GET /products/:id')).toBe(1)
    })

    it('invalidation by key removes exactly that path\'s entries from Redis, and by prefix every path under it', async () => {
      const db = new Map<string, number>()
      const routes = (name: string): RouteSpec[] => [
        ...catalogue(db)(name),
        {
          method: 'GET',
          path: '/other/:id',
          cache: {},
          handler: (r) => ({ headers: { 'content-type': 'text/plain' }, body: `other ${String(r.params.id)} from ${name}` }),
        },
      ]
      const { ns, a, b } = await pair(routes)
      const urls = ['/products/1', '/products/1?page=2', '/products/2', '/other/1']
      for (const u of urls) expect(xcache(await a.get(u))).toBe('MISS')
      const keys = await storedInRedis(ns, urls, [a])

      // keys: '/products/1' is the path (every query string of it); B issues it, A holds the entries.
      await b.cache.invalidate({ keys: ['/products/1'] })
      expect(await shared.raw.exists(keys.get('/products/1') as string)).toBe(0)
      expect(await shared.raw.exists(keys.get('/products/1?page=2') as string)).toBe(0)
      expect(await shared.raw.exists(keys.get('/products/2') as string)).toBe(1)
      expect(await shared.raw.exists(keys.get('/other/1') as string)).toBe(1)

      await b.cache.invalidate({ prefixes: ['/products/'] })
      expect(await shared.raw.exists(keys.get('/products/2') as string)).toBe(0)
      expect(await shared.raw.exists(keys.get('/other/1') as string)).toBe(1)
      expect([...(await keysByUrl(ns)).keys()]).toEqual(['/other/1'])

      // A's L1 copies went with them (the message): its next /products/2 goes to the origin.
      await until(() => a.cache.stats().entries === 1, MESSAGE_WITHIN, "A's L1 to keep only /other/1")
      expect(xcache(await a.get('/products/2'))).toBe('MISS')
      expect(xcache(await a.get('/other/1'))).toBe('HIT')
      expect([...a.errors, ...b.errors]).toEqual([])
    })
  })

  describe('an invalidation that lands while a fill is in flight wins', () => {
    type Who = 'A' | 'B'
    const combos: [Who, Who][] = [
      ['A', 'A'],
      ['A', 'B'],
      ['B', 'A'],
      ['B', 'B'],
    ]

    /**
     * A's origin reads the price (version 1), then waits while the price changes and `invalidate`
     * runs, until the invalidation has landed on A: made there, or its message received there (not
     * at all when `messageLost`). Then it answers with version 1, which is served but stored nowhere:
     * not in A's L1, and not in Redis, where everything A wrote has finished by the time this returns.
     */
    async function raceFill(
      invalidate: (p: { a: Instance; b: Instance }) => Promise<unknown>,
      { messageLost = false }: { messageLost?: boolean } = {},
    ) {
      const db = new Map([['1', 1]])
      const started = signal()
      const answer = signal()
      const routes = (name: string): RouteSpec[] => [
        {
          method: 'GET',
          path: '/products/:id',
          cache: { tags: (req: { params: { id: string } }) => [`product:${req.params.id}`] },
          handler: async (r) => {
            const id = String(r.params.id)
            const price = db.get(id) ?? 0
            if (name === 'A' && r.call === 1) {
              started.resolve()
              await answer.promise
            }
            return { headers: { 'content-type': 'application/json' }, body: { json: { id, price, by: name, call: r.call } } }
          },
        },
        ...catalogue(db)(name).filter((r) => r.method === 'PUT'),
      ]
      const p = await pair(routes)
      const first = p.a.get('/products/1')
      await within(started.promise, MESSAGE_WITHIN, "A's origin call to start")
      db.set('1', 2)
      // An invalidation A makes itself reaches its fills at once; one made on B, with its message.
      const heard = messageLost ? undefined : nextBusMessage(p.a, p.ns)
      await invalidate(p)
      if (heard !== undefined) await within(heard, MESSAGE_WITHIN, 'the invalidation message to reach A')
      answer.resolve()
      const v1 = await first
      expect(v1.status).toBe(200)
      expect(xcache(v1)).toBe('MISS')
      expect(json(v1)).toMatchObject({ price: 1, by: 'A' })
      // The fill settled as the response ended; whatever it wrote to Redis has finished too.
      await writesSettled(p.a, p.b)
      const stats = p.a.cache.stats()
      expect(stats.stored + (stats.notStored.invalidated ?? 0), "A's fill settled, stored or dropped").toBe(1)
      if (!messageLost) expect(stats).toMatchObject({ stored: 0, entries: 0, notStored: { invalidated: 1 } })
      // Either way, Redis does not hold version 1.
      expect(await entryKeys(p.ns)).toEqual([])
      return p
    }

    it.each(combos)('invalidation from %s during A\'s fill; the next request, on %s, is a MISS with version 2', async (from, next) => {
      const p = await raceFill(({ a, b }) => (from === 'A' ? a : b).cache.invalidate({ tags: ['product:1'] }))
      const reader = next === 'A' ? p.a : p.b
      const res = await reader.get('/products/1')
      expect(xcache(res)).toBe('MISS')
      expect(json(res)).toMatchObject({ price: 2, by: next })
      expect(p.a.calls('GET /products/:id') + p.b.calls('GET /products/:id')).toBe(2)

      // Version 2 is stored as usual and is what the other instance gets.
      await storedInRedis(p.ns, ['/products/1'], [p.a, p.b])
      const other = next === 'A' ? p.b : p.a
      const hit = await other.get('/products/1')
      expect(xcache(hit)).toBe('HIT')
      expect(json(hit)).toMatchObject({ price: 2, by: next })
      expect([...p.a.errors, ...p.b.errors]).toEqual([])
    })

    it('a mutation route on B (invalidate() helper) during A\'s fill wins too', async () => {
      const p = await raceFill(async ({ b }) => {
        const put = await send(b.app.url, '/products/1', { method: 'PUT', headers: { host: FLEET_HOST } })
        expect(put.status).toBe(200)
      })
      const res = await p.a.get('/products/1')
      expect(xcache(res)).toBe('MISS')
      // The PUT bumped the price once more (2 → 3).
      expect(json(res)).toMatchObject({ price: 3, by: 'A', call: 2 })
    })

    it('still wins in Redis when its message never reaches the filling instance (subscriber connections dropped)', async () => {
      // The README says l1Ttl bounds how long a lost invalidation message goes unseen. Here the
      // message that should stop A's in-flight fill is lost: B's invalidate() resolves, then A's
      // older response must not land in Redis, where every instance would serve it until its TTL.
      // (A's fill ends as soon as B's invalidate() resolves: usually before A's subscriber is back
      // and drops everything it may have missed, so A stores it in L1 and its write to Redis is
      // undone by the invalidation log; if the reconnection comes first, the fill is dropped.)
      const p = await raceFill(
        async ({ b }) => {
          // A network blip: every pub/sub connection drops and reconnects ~200 ms later.
          await shared.raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
          await b.cache.invalidate({ tags: ['product:1'] })
        },
        { messageLost: true },
      )
      const res = await p.b.get('/products/1')
      expect(json(res)).toMatchObject({ price: 2 })
      expect(xcache(res)).toBe('MISS')
    })
  })

  describe('Redis down at start', () => {
    it('both apps serve, a 50-request burst makes one origin call per instance, and sharing resumes once Redis is up', async () => {
      const down = await startRedis()
      cleanups.push(() => down.stop())
      await down.kill()

      const db = new Map([['1', 10], ['2', 20]])
      const ns = namespace()
      // Each instance's first origin call answers once the other 49 requests of its burst wait for it.
      const byName = new Map<string, Instance>()
      const waitingWhenAnswered = new Map<string, number>()
      const origin = async (name: string, call: number) => {
        const inst = byName.get(name) as Instance
        if (call !== 1) return
        await until(() => waiting(inst) >= 49, BURST_WITHIN, `the other 49 requests on ${name} to wait for the fill`).catch(() => undefined)
        waitingWhenAnswered.set(name, waiting(inst))
      }
      const a = await start('A', ns, catalogue(db, origin), { cache: { redis: down.url } })
      const b = await start('B', ns, catalogue(db, origin), { cache: { redis: down.url } })
      byName.set('A', a).set('B', b)
      expect((await a.cache.health()).status).toBe('degraded')

      const [onA, onB] = await Promise.all([
        Promise.all(Array.from({ length: 50 }, () => a.get('/products/1'))),
        Promise.all(Array.from({ length: 50 }, () => b.get('/products/1'))),
      ])
      expect(Object.fromEntries(waitingWhenAnswered), 'requests waiting for the fill when the origin answered').toEqual({ A: 49, B: 49 })
      for (const [inst, burst] of [[a, onA], [b, onB]] as const) {
        expect(burst.map((r) => r.status)).toEqual(Array(50).fill(200))
        expect(new Set(burst.map((r) => r.text))).toEqual(new Set([JSON.stringify({ id: '1', price: 10, by: inst.name, call: 1 })]))
        expect(inst.calls('GET /products/:id')).toBe(1)
        // Stored in L1: the instance keeps answering from memory.
        expect(xcache(await inst.get('/products/1'))).toBe('HIT')
      }

      await down.restart()
      // The clients' next reconnection attempt (they back off up to 2 s), then the eviction policy
      // (INFO) and the health round trip, each under the write deadline.
      await until(
        async () => (await Promise.all([a.cache.health(), b.cache.health()])).every((h) => h.status === 'ok'),
        RECONNECT_MAX_MS + 2 * WRITE_TIMEOUT + MARGIN,
        'both instances back on Redis',
      )
      const probe = down.client()
      const miss = await a.get('/products/2')
      expect(xcache(miss)).toBe('MISS')
      await writesSettled(a)
      expect((await probe.keys(`${ns}:v1:*`)).filter((k) => /^[^:]+:v1:[\w-]{43}$/.test(k)), 'the entry in the restarted Redis').toHaveLength(1)
      const hit = await b.get('/products/2')
      expect(xcache(hit)).toBe('HIT')
      expect(json(hit)).toEqual({ id: '2', price: 20, by: 'A', call: 2 })
    })
  })

  describe('cache.clear() while Redis is away', () => {
    it('rejects with a StoreError (a CorralError with a code), not ioredis\'s own error', async () => {
      const down = await startRedis()
      cleanups.push(() => down.stop())
      await down.kill()
      const a = await start('A', namespace(), catalogue(new Map()), { cache: { redis: down.url } })
      const outcome = await a.cache.clear().then(
        () => 'resolved',
        (err: unknown) => err,
      )
      // Either would do: resolving (L1 is cleared) or a Corral error the caller can recognise.
      if (outcome !== 'resolved') {
        expect(outcome).toBeInstanceOf(StoreError)
        expect((outcome as CorralError).code).toBe('CORRAL_ERR_STORE_UNAVAILABLE')
      }
    })

    it('sends nothing through a user\'s own client that is not connected (README: "sends nothing while it is not ready")', async () => {
      const redis = await startRedis()
      cleanups.push(() => redis.stop())
      // The user's client, not connected yet (lazyConnect), with ioredis' offline queue: whatever
      // is sent now is queued and runs once it connects.
      const own = redis.client({ lazyConnect: true, maxRetriesPerRequest: null })
      const queued = (): number => (own as unknown as { offlineQueue: { length: number } }).offlineQueue.length
      const ns = namespace()
      const timeout = 50
      const a = await start('A', ns, catalogue(new Map()), { cache: { redis: own, l2: { timeout } } })
      expect(own.status).toBe('wait')
      expect(xcache(await a.get('/products/1'))).toBe('MISS') // the request path sends nothing
      await expect(a.cache.clear()).rejects.toBeInstanceOf(StoreError)
      await expect(a.cache.invalidate({ tags: ['product:1'] })).rejects.toBeInstanceOf(StoreError)
      expect(own.status).toBe('wait')
      expect(queued()).toBe(0)
      // Once it connects, the clear and the invalidation that were refused run after all.
      await own.connect()
      const caught = async (): Promise<boolean> => {
        const h = await a.cache.health()
        return h.status === 'ok' && (h.store?.l2 as { pendingInvalidations?: number } | undefined)?.pendingInvalidations === 0
      }
      // The replay is a handful of steps (the log, a SCAN of the namespace, the message), each under
      // the write deadline (4 × l2.timeout); one that times out on a busy machine runs again after
      // the next call that succeeds (the health checks polled here).
      await until(caught, 10 * 4 * timeout + MARGIN, 'the refused invalidations to run')
      const log = await redis.client().xrange(`${ns}:v1:log`, '-', '+')
      expect(log.map(([, fields]) => JSON.parse(fields[1] as string))).toContainEqual(expect.objectContaining({ all: true }))
    })
  })

  describe('large bodies', () => {
    const sized = { maxBytes: 128 * MiB, maxEntryBytes: 16 * MiB }

    it('a 5 MB body is served intact on the miss and on the HIT from instance B, and stored compactly', async () => {
      const big = randomBytes(5 * MiB)
      const routes = (): RouteSpec[] => [
        {
          method: 'GET',
          path: '/big',
          cache: { maxBodyBytes: 8 * MiB },
          handler: () => ({ headers: { 'content-type': 'application/octet-stream' }, body: big }),
        },
      ]
      const { ns, a, b } = await pair(routes, { a: { cache: sized }, b: { cache: sized } })

      const miss = await a.get('/big')
      expect(xcache(miss)).toBe('MISS')
      expect(miss.body.length).toBe(big.length)
      expect(miss.body.equals(big)).toBe(true)

      const key = (await storedInRedis(ns, ['/big'], [a])).get('/big') as string
      // Raw bytes plus a small envelope, not JSON-encoded Buffer data.
      const stored = await shared.raw.strlen(key)
      expect(stored).toBeGreaterThan(big.length)
      expect(stored).toBeLessThan(big.length + 4096)

      const hit = await b.get('/big')
      expect(xcache(hit)).toBe('HIT')
      expect(hit.headers['content-length']).toBe(String(big.length))
      expect(hit.body.equals(big)).toBe(true)
      expect(a.calls()).toBe(1)
      expect(b.calls()).toBe(0)
      expect([...a.errors, ...b.errors]).toEqual([])
    })

    it('a body one byte over the route\'s maxBodyBytes is served intact and stored nowhere', async () => {
      const over = randomBytes(MiB + 1)
      const routes = (): RouteSpec[] => [
        {
          method: 'GET',
          path: '/over',
          cache: { maxBodyBytes: MiB },
          handler: () => ({ headers: { 'content-type': 'application/octet-stream' }, body: over }),
        },
      ]
      const { ns, a, b } = await pair(routes, { a: { cache: sized }, b: { cache: sized } })

      for (const inst of [a, a, b]) {
        const res = await inst.get('/over')
        expect(xcache(res)).toBe('MISS')
        expect(res.body.equals(over)).toBe(true)
      }
      expect(a.calls()).toBe(2)
      expect(b.calls()).toBe(1)
      expect(a.cache.stats()).toMatchObject({ stored: 0, entries: 0, notStored: { 'too-large': 2 } })
      // Whatever the instances started writing to Redis has finished: nothing was.
      await writesSettled(a, b)
      expect(await entryKeys(ns)).toEqual([])
    })
  })
})
