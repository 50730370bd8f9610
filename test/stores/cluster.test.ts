import { randomBytes } from 'node:crypto'
import { MemoryStore, RedisStore, TieredStore, type InvalidateSelectors } from '@corral/core'
import { normalizeSelectors } from '@corral/core/store'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { instance, xcache, type Instance } from '../helpers/fleet.js'
import type { Res } from '../helpers/http.js'
import { startCluster, type Cluster, type ClusterOptions, type RedisCluster } from '../helpers/redis-cluster.js'
import type { Redis } from '../helpers/redis-server.js'
import { until, type RouteSpec } from '../helpers/scenario.js'
import { runCleanups } from '../helpers/setup.js'
import {
  expectSameResponse,
  keysOf,
  present,
  put,
  response,
  runStoreSuite,
  TestHost,
  uniqueNamespace,
  type Built,
  type StoreUnderTest,
} from '@corral/core/testing'

// The Redis layout on a real Redis Cluster: three masters, no replicas, every slot assigned. Every
// store here is given an ioredis `Cluster` client (the way an application hands Corral its own
// client), so every command goes through ioredis' slot routing, and a multi-key command or a
// pipeline whose keys are in different slots fails (CROSSSLOT from Redis, or ioredis' own
// refusal) and shows up as an error the store reports to its TestHost; every test checks there is
// none. KEYS is disabled on every node, so clear() also proves it SCANs each master instead.
// Tests never share a namespace, so nothing is flushed between them.

// Timing: waits poll a state with a deadline derived from the configuration below (a test that
// passes never waits for one); writes are waited for with `settle()` / `writesSettled`; the burst's
// origin answers once every other request waits for it, not after a sleep.

/** `timeout` of every RedisStore and cache here ('1s': generous, these tests check behaviour, not latency). */
const L2_TIMEOUT = 1000
/** RedisStore gives writes, INFO and invalidation steps four times `timeout`. */
const WRITE_TIMEOUT = 4 * L2_TIMEOUT
/** `connectTimeout` of the test's Cluster clients, and their longest pause between retries (redis-cluster.ts). */
const CONNECT_TIMEOUT = 2000
const CLUSTER_RETRY_MAX_MS = 1000
/** The default `l1Ttl`: an invalidation message must beat it. */
const L1_TTL = 10_000
/** The default `lockTimeout`: how long a request waits for another one's fill before it takes over. */
const LOCK_TIMEOUT = 5000
/** For timers that fire late on a busy machine. */
const MARGIN = 1000
/** A Cluster client connects (one attempt, or a retry after the longest pause). */
const CLIENT_READY_WITHIN = CONNECT_TIMEOUT + CLUSTER_RETRY_MAX_MS + MARGIN
/** A store on a ready client has read the eviction policy of every master (INFO, a write deadline). */
const STORE_READY_WITHIN = WRITE_TIMEOUT + MARGIN
/** A message one instance publishes reaches another well before `l1Ttl`, the bound on a lost one. */
const MESSAGE_WITHIN = L1_TTL / 2

let cluster: RedisCluster
/** A standalone connection to each master, to see what each one holds. */
let masters: Redis[]
/** A cluster client for planting and checking keys. */
let raw: Cluster

beforeAll(async () => {
  cluster = await startCluster({ masters: 3, args: ['--rename-command', 'KEYS', ''] })
  masters = cluster.masters()
  raw = await connect()
}, 20_000)

afterAll(async () => {
  await cluster?.stop()
})

/** A new Cluster client, once it knows the slots and is ready (a store sends nothing before). */
async function connect(clientOptions?: ClusterOptions): Promise<Cluster> {
  const client = cluster.client(clientOptions)
  await until(() => client.status === 'ready', CLIENT_READY_WITHIN, 'the Cluster client to be ready')
  return client
}

type Cleanup = () => Promise<void>

/**
 * A store on its own Cluster client. `settle` waits until writes the store has already sent have
 * been applied: a PING on each master's connection of that client is answered after every command
 * sent before it on that connection (TieredStore sends its L2 writes on the next turn of the event
 * loop, hence the setImmediate first).
 */
async function openStore(
  kind: 'redis' | 'tiered',
  namespace: string,
  maxEntryBytes: number,
  opened: Cleanup[],
  clientOptions?: ClusterOptions,
): Promise<StoreUnderTest> {
  const client = await connect(clientOptions)
  opened.push(async () => client.disconnect())
  const l2 = new RedisStore({ redis: client, timeout: L2_TIMEOUT, maxEntryBytes })
  const store =
    kind === 'redis'
      ? l2
      : new TieredStore(new MemoryStore({ maxBytes: Math.max(64 * 1024 * 1024, maxEntryBytes), maxEntryBytes }), l2, { l1Ttl: L1_TTL })
  opened.push(() => store.close())
  const host = new TestHost(namespace)
  store.attach(host)
  await until(() => l2.isReady(), STORE_READY_WITHIN, 'the Redis store to be ready')
  return {
    store,
    host,
    sibling: (ns) => openStore(kind, ns, maxEntryBytes, opened, clientOptions),
    settle: async () => {
      // L2 writes start on the next turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve))
      await l2.writesSettled()
    },
    cleanup: () => runCleanups(opened),
  }
}

const KINDS = [
  { name: 'RedisStore', kind: 'redis' },
  { name: 'TieredStore', kind: 'tiered' },
] as const

runStoreSuite('RedisStore on a Redis Cluster', ({ namespace, maxEntryBytes }) => openStore('redis', namespace, maxEntryBytes, []), {
  clearScope: 'namespace',
  setsExpiredEntry: false,
  staleTagAfterOverwrite: { removed: 1, stillServed: false, removedByNewTag: 0 },
})

runStoreSuite('TieredStore on a Redis Cluster', ({ namespace, maxEntryBytes }) => openStore('tiered', namespace, maxEntryBytes, []), {
  clearScope: 'namespace',
  setsExpiredEntry: true,
  staleTagAfterOverwrite: { removed: 1, stillServed: true, removedByNewTag: 1 },
})

// ---- what each master holds ------------------------------------------------------------------

/** Every key on one master matching `pattern`, by SCAN (KEYS is disabled). */
async function scanNode(node: Redis, pattern: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = next
    out.push(...keys)
  } while (cursor !== '0')
  return out.sort()
}

/** For each master (in `cluster.nodes` order), the keys of `ns` it holds: entries, indexes, log. */
async function keysPerMaster(ns: string): Promise<string[][]> {
  return Promise.all(masters.map((m) => scanNode(m, `${ns}:*`)))
}

/** Entry keys only: `<ns>:v1:<hash>` and variants, not index sets, the log, locks or health keys. */
function entriesAmong(ns: string, keys: readonly string[]): string[] {
  const entry = new RegExp(`^${ns}:v1:[\\w-]{43}(:[\\w-]{43})?$`)
  return keys.filter((k) => entry.test(k))
}

/** Which master holds each of `keys` (index into `masters`); throws for a key no master has. */
async function homes(ns: string, keys: readonly string[]): Promise<number[]> {
  const perMaster = await keysPerMaster(ns)
  return keys.map((k) => {
    const i = perMaster.findIndex((held) => held.includes(k))
    if (i < 0) throw new Error(`no master holds ${k}`)
    return i
  })
}

function distinct(values: readonly number[]): number {
  return new Set(values).size
}

const sel = (s: InvalidateSelectors) => normalizeSelectors(s)

describe.each(KINDS)('$name on a Redis Cluster: keys are spread over the masters', ({ kind }) => {
  const opened: Cleanup[] = []
  afterEach(() => runCleanups(opened))
  const open = (ns = uniqueNamespace(), clientOptions?: ClusterOptions) => openStore(kind, ns, 16 * 1024 * 1024, opened, clientOptions)

  it('50 entries of different URLs (and their index sets) land on several masters and in many slots; none uses a hash tag', async () => {
    const s = await open()
    const ns = s.host.namespace
    const items = Array.from({ length: 50 }, (_, i) => response(ns, { url: `/spread/${i}`, tags: [`item:${i}`, 'spread'] }))
    await put(s.store, ...items)
    await s.settle()

    const perMaster = await keysPerMaster(ns)
    const entries = perMaster.map((keys) => entriesAmong(ns, keys))
    expect(entries.flat().sort()).toEqual(keysOf(...items).sort())
    // 50 keys hashed over 16384 slots in three equal ranges: one master holding them all would
    // mean the keys are pinned together (a hash tag), which would put every entry on one node.
    expect(entries.filter((e) => e.length > 0).length).toBeGreaterThanOrEqual(2)
    const slots = await Promise.all(keysOf(...items).map(async (k) => Number(await raw.cluster('KEYSLOT', k))))
    expect(distinct(slots)).toBeGreaterThan(40)
    expect(keysOf(...items).every((k) => !k.includes('{'))).toBe(true)
    // The per-tag index sets are spread too.
    const tagIndexes = perMaster.map((keys) => keys.filter((k) => k.startsWith(`${ns}:v1:i:t:item:`)))
    expect(tagIndexes.flat()).toHaveLength(50)
    expect(tagIndexes.filter((t) => t.length > 0).length).toBeGreaterThanOrEqual(2)

    // Another instance reads every one of them back through its own Cluster client.
    const peer = await s.sibling(ns)
    for (const item of items) expectSameResponse(await peer.store.get(item.key), item.entry)
    expect(s.host.reports).toEqual([])
    expect(peer.host.reports).toEqual([])
  })

  it('invalidation by tag, path, URL and prefix removes matching entries from every master, and only them', async () => {
    const s = await open()
    const ns = s.host.namespace
    const groups = {
      tag: Array.from({ length: 20 }, (_, i) => response(ns, { url: `/inv/tagged/${i}`, tags: ['doomed'] })),
      path: Array.from({ length: 12 }, (_, i) => response(ns, { url: `/inv/path?i=${i}` })),
      url: ['a.test', 'b.test', 'c.test', 'd.test', 'e.test', 'f.test'].map((host) => response(ns, { url: '/inv/url?q=1', host })),
      prefix: Array.from({ length: 15 }, (_, i) => response(ns, { url: `/inv/pre/${i}/leaf?x=${i}` })),
    }
    const kept = [
      ...Array.from({ length: 10 }, (_, i) => response(ns, { url: `/inv/keep/${i}`, tags: ['kept'] })),
      response(ns, { url: '/inv/url?q=2' }),
      response(ns, { url: '/inv/pre' }),
      response(ns, { url: '/inv/path/x' }),
    ]
    await put(s.store, ...Object.values(groups).flat(), ...kept)
    await s.settle()
    // Each group spans several masters, so each invalidation has to reach more than one node.
    for (const [name, group] of Object.entries(groups)) {
      expect(distinct(await homes(ns, keysOf(...group))), `masters holding the ${name} group`).toBeGreaterThanOrEqual(2)
    }

    const steps: [keyof typeof groups, InvalidateSelectors][] = [
      ['tag', { tags: ['doomed'] }],
      ['path', { keys: ['/inv/path'] }],
      ['url', { keys: ['/inv/url?q=1'] }],
      ['prefix', { prefixes: ['/inv/pre/'] }],
    ]
    for (const [name, selectors] of steps) {
      const group: readonly Built[] = groups[name]
      expect(await s.store.invalidate(sel(selectors), ns), `removed by ${name}`).toBe(group.length)
      const left = await Promise.all(keysOf(...group).map((k) => raw.exists(k)))
      expect(left.filter((n) => n !== 0), `entries of the ${name} group left in Redis`).toEqual([])
      expect(await present(s.store, keysOf(...group))).toEqual([])
    }
    // What is left on the masters is exactly the kept entries, and they are still served.
    const remaining = (await keysPerMaster(ns)).flatMap((keys) => entriesAmong(ns, keys))
    expect(remaining.sort()).toEqual(keysOf(...kept).sort())
    expect(await present(s.store, keysOf(...kept))).toEqual(keysOf(...kept))
    // The swept index sets are gone (Redis drops an empty set).
    expect(await raw.exists(`${ns}:v1:i:t:doomed`)).toBe(0)
    expect(await raw.exists(`${ns}:v1:i:p:/inv/path`)).toBe(0)
    const peer = await s.sibling(ns)
    expect(await present(peer.store, keysOf(...Object.values(groups).flat()))).toEqual([])
    expect(await present(peer.store, keysOf(...kept))).toEqual(keysOf(...kept))
    expect(s.host.reports).toEqual([])
  })

  it("clear() removes the namespace's keys (all but its invalidation log) from every master and leaves another namespace's on every master", async () => {
    const s = await open()
    const ns = s.host.namespace
    const other = await s.sibling(uniqueNamespace())
    const mine = Array.from({ length: 60 }, (_, i) => response(ns, { url: `/clr/${i}`, tags: [`c${i % 5}`] }))
    const theirs = Array.from({ length: 30 }, (_, i) => response(other.host.namespace, { url: `/clr/${i}`, tags: ['c0'] }))
    await put(s.store, ...mine)
    await put(other.store, ...theirs)
    // An invalidation, so the namespace has a log stream too.
    expect(await s.store.invalidate(sel({ tags: ['nothing'] }), ns)).toBe(0)
    await s.settle()
    await other.settle()
    const before = await keysPerMaster(ns)
    expect(before.filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2)
    expect(before.flat()).toContain(`${ns}:v1:log`)
    const theirsBefore = await keysPerMaster(other.host.namespace)
    expect(theirsBefore.filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2)

    await s.store.clear()
    // Only the invalidation log stays: it now records the clear, for fills that began before it.
    expect((await keysPerMaster(ns)).flat()).toEqual([`${ns}:v1:log`])
    expect(await keysPerMaster(other.host.namespace)).toEqual(theirsBefore)
    expect(await present(s.store, keysOf(...mine))).toEqual([])
    expect(await present(other.store, keysOf(...theirs))).toEqual(keysOf(...theirs))
    expect(s.host.reports).toEqual([])
    expect(other.host.reports).toEqual([])
  })

  it('with a keyPrefix on the Cluster client, entries live under the prefix on several masters; invalidation and clear() find them all', async () => {
    const keyPrefix = `app-${randomBytes(3).toString('hex')}:`
    const s = await open(uniqueNamespace(), { keyPrefix })
    const ns = s.host.namespace
    const items = Array.from({ length: 40 }, (_, i) => response(ns, { url: `/kp/${i}`, tags: [i < 20 ? 'first' : 'second'] }))
    await put(s.store, ...items)
    await s.settle()
    const stored = await Promise.all(masters.map((m) => scanNode(m, `${keyPrefix}${ns}:*`)))
    expect(stored.filter((keys) => keys.length > 0).length).toBeGreaterThanOrEqual(2)
    expect(stored.flat().filter((k) => entriesAmong(ns, [k.slice(keyPrefix.length)]).length === 1).sort()).toEqual(
      keysOf(...items).map((k) => `${keyPrefix}${k}`).sort(),
    )
    // Nothing was written without the prefix.
    expect(await keysPerMaster(ns)).toEqual(masters.map(() => []))

    expect(await s.store.invalidate(sel({ tags: ['first'] }), ns)).toBe(20)
    expect(await present(s.store, keysOf(...items))).toEqual(keysOf(...items.slice(20)))
    await s.store.clear()
    expect((await Promise.all(masters.map((m) => scanNode(m, `${keyPrefix}${ns}:*`)))).flat()).toEqual([`${keyPrefix}${ns}:v1:log`])
    expect(await present(s.store, keysOf(...items))).toEqual([])
    expect(s.host.reports).toEqual([])
  })
})

// ---- two application instances, each with its own Cluster client -----------------------------

describe('two instances, each with createCache({ redis: <its own Cluster client> })', () => {
  const cleanups: Cleanup[] = []
  afterEach(() => runCleanups(cleanups))

  /**
   * Products from a database both instances share; GET is cached with the tag `product:<id>`.
   * `origin`, when given, runs before a GET answers (to hold it).
   */
  function routes(name: string, db: Map<string, number>, origin: (() => Promise<void>) | undefined): RouteSpec[] {
    return [
      {
        method: 'GET',
        path: '/products/:id',
        cache: { tags: (req: { params: { id: string } }) => [`product:${req.params.id}`] },
        handler: async (r) => {
          if (origin !== undefined) await origin()
          const id = String(r.params.id)
          return { headers: { 'content-type': 'application/json' }, body: { json: { id, price: db.get(id) ?? 0, by: name, call: r.call } } }
        },
      },
    ]
  }

  /** Instance `name` on namespace `ns`, given a Cluster client of its own (as an application would). */
  async function start(name: string, ns: string, db: Map<string, number>, origin: (() => Promise<void>) | undefined): Promise<Instance> {
    const client = await connect()
    cleanups.push(async () => client.disconnect())
    const cache = { namespace: ns, redis: client, l2: { timeout: L2_TIMEOUT } }
    return instance(name, { cache, routes: routes(name, db, origin) }, cleanups)
  }

  /** Subscribers of a channel over the whole cluster: each node counts only its own clients. */
  async function subscribers(channel: string): Promise<number> {
    const counts = await Promise.all(masters.map(async (m) => Number(((await m.pubsub('NUMSUB', channel)) as [string, number])[1])))
    return counts.reduce((a, b) => a + b, 0)
  }

  async function pair(db: Map<string, number>, origin?: () => Promise<void>): Promise<{ ns: string; a: Instance; b: Instance }> {
    const ns = `cl-${randomBytes(6).toString('hex')}`
    const a = await start('A', ns, db, origin)
    const b = await start('B', ns, db, origin)
    // Each subscriber is a Cluster connection of its own.
    await until(
      async () => (await subscribers(`${ns}:v1:bus`)) === 2 && (await subscribers(`${ns}:v1:fill`)) === 2,
      CLIENT_READY_WITHIN,
      'both instances subscribed to the bus and fill channels',
    )
    for (const i of [a, b]) {
      const h = await i.cache.health()
      expect(h.status).toBe('ok')
      expect(h.store).toMatchObject({ kind: 'tiered', ok: true, l2: { kind: 'redis', ok: true, connection: 'ready', breaker: 'closed' } })
    }
    return { ns, a, b }
  }

  /**
   * Resolves once every L2 write the instance has started has finished (it starts them on the turn
   * after a fill stores, hence the setImmediate first; internal: the cache's RedisStore).
   */
  async function writesSettled(i: Instance): Promise<void> {
    const l2 = (i.cache as unknown as { store: { l2?: { writesSettled(): Promise<void> } } }).store.l2
    if (l2 === undefined) throw new Error('the cache has no Redis tier')
    await new Promise((resolve) => setImmediate(resolve))
    await l2.writesSettled()
  }

  const json = (res: Res): { id: string; price: number; by: string; call: number } => JSON.parse(res.text)

  it("a fill on A is a HIT on B, and an invalidation on A clears B's L1 copy over pub/sub", async () => {
    const db = new Map([['1', 10], ['2', 20]])
    const { ns, a, b } = await pair(db)

    const filled = await a.get('/products/1')
    expect(xcache(filled)).toBe('MISS')
    expect(json(filled)).toEqual({ id: '1', price: 10, by: 'A', call: 1 })
    // A's write to Redis happens in the background: once it has finished, Redis holds the entry.
    await writesSettled(a)
    expect((await keysPerMaster(ns)).flatMap((k) => entriesAmong(ns, k))).toHaveLength(1)
    const hit = await b.get('/products/1')
    expect(xcache(hit)).toBe('HIT')
    expect(hit.text).toBe(filled.text)
    expect(a.app.calls() + b.app.calls()).toBe(1)
    // B now answers /products/1 from its own L1 (for l1Ttl, 10 s, unless told otherwise)...
    expect(b.cache.stats().entries).toBe(1)
    expect(xcache(await b.get('/products/1'))).toBe('HIT')

    db.set('1', 11)
    expect(await a.cache.invalidate({ tags: ['product:1'] })).toBeGreaterThanOrEqual(1)
    expect((await keysPerMaster(ns)).flatMap((k) => entriesAmong(ns, k))).toEqual([])
    // ...so only the message, published by A's client and delivered to B's subscriber on whichever
    // node each is connected to, can clear it this soon.
    await until(() => b.cache.stats().entries === 0, MESSAGE_WITHIN, "B's L1 to drop the invalidated entry")
    const fresh = await b.get('/products/1')
    expect(xcache(fresh)).toBe('MISS')
    expect(json(fresh)).toEqual({ id: '1', price: 11, by: 'B', call: 1 })
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  it('20 concurrent requests on a cold key, 10 on each instance, make one origin call in total (the fleet lock on a Cluster)', async () => {
    const db = new Map([['7', 70]])
    // The origin answers once the 19 other requests all wait for it (each instance counts its
    // waiters in `coalesced`), so that every one of them really is concurrent with the fill; well
    // before lockTimeout, after which a waiter would take over.
    let insts: Instance[] = []
    const waiting = () => insts.reduce((n, i) => n + i.cache.stats().coalesced, 0)
    let waitingWhenAnswered = -1
    const origin = async () => {
      await until(() => waiting() >= 19, LOCK_TIMEOUT / 2, 'the other 19 requests to wait for the fill').catch(() => undefined)
      waitingWhenAnswered = waiting()
    }
    const { a, b } = await pair(db, origin)
    insts = [a, b]
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).get('/products/7')))
    expect(waitingWhenAnswered, 'requests waiting for the fill when the origin answered').toBe(19)
    expect(a.app.calls() + b.app.calls()).toBe(1)
    expect(burst.map((r) => r.status)).toEqual(Array(20).fill(200))
    expect(new Set(burst.map((r) => r.text)).size).toBe(1)
    expect(burst.filter((r) => xcache(r) === 'MISS')).toHaveLength(1)
    expect([...a.errors, ...b.errors]).toEqual([])
  })
})

// ---- what the masters saw -------------------------------------------------------------------

/** `INFO errorstats` of one node: error prefix → count. */
async function errorStats(node: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of (await node.info('errorstats')).split(/\r?\n/)) {
    const m = /^errorstat_([^:]+):count=(\d+)/.exec(line)
    if (m) out[m[1] as string] = Number(m[2])
  }
  return out
}

/** Commands one node refused (CROSSSLOT, MOVED, wrong arity...) or that failed while running (WRONGTYPE, OOM, script errors). */
async function failedCommands(node: Redis): Promise<Record<string, { rejected: number; failed: number }>> {
  const out: Record<string, { rejected: number; failed: number }> = {}
  for (const line of (await node.info('commandstats')).split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):.*rejected_calls=(\d+),failed_calls=(\d+)/.exec(line)
    if (m && (m[2] !== '0' || m[3] !== '0')) out[m[1] as string] = { rejected: Number(m[2]), failed: Number(m[3]) }
  }
  return out
}

describe('after everything above', () => {
  it('no master refused or failed any command: no CROSSSLOT, MOVED, WRONGTYPE or script error', async () => {
    // Runs last in this file (Vitest runs a file's tests in order): covers every command the
    // stores, the caches and the fleet lock sent above, reported to their host or not.
    expect(await Promise.all(masters.map(failedCommands))).toEqual(masters.map(() => ({})))
    // The only error replies are plain ERRs that belong to no command: ioredis' Cluster subscriber
    // connection sends CLIENT SETINFO on connect (it does not inherit redisOptions.disableClientInfo)
    // and Redis 7.0 answers "ERR unknown subcommand" without counting it against any command.
    for (const stats of await Promise.all(masters.map(errorStats))) expect(Object.keys(stats).filter((e) => e !== 'ERR')).toEqual([])

    // The check sees a cross-slot command: send one and look again.
    const [first] = masters
    if (first === undefined) throw new Error('no master')
    const probe = `probe-${randomBytes(4).toString('hex')}`
    const keys: string[] = []
    const slots = new Set<number>()
    for (let i = 0; keys.length < 2 && i < 100; i++) {
      const slot = Number(await raw.cluster('KEYSLOT', `${probe}-${i}`))
      if (!slots.has(slot)) {
        slots.add(slot)
        keys.push(`${probe}-${i}`)
      }
    }
    await expect(first.mget(...keys)).rejects.toThrow(/CROSSSLOT/)
    expect(await failedCommands(first)).toEqual({ mget: { rejected: 1, failed: 0 } })
    expect((await errorStats(first)).CROSSSLOT).toBe(1)
    // And KEYS was disabled on every node all along, so clear() cannot have used it.
    for (const m of masters) await expect(m.keys('*')).rejects.toThrow(/unknown command/i)
  })
})
