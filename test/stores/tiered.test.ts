import { MemoryStore, RedisStore, TieredStore, type Duration } from '@corral/core'
import { normalizeSelectors, type CacheStore } from '@corral/core/store'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startRedis, type Redis, type RedisServer } from '../helpers/redis-server.js'
import { until } from '../helpers/scenario.js'
import { expectSameResponse, isPromise, response, runStoreSuite, TestHost, uniqueNamespace, type StoreUnderTest } from '@corral/core/testing'

// One private redis-server for the file (KEYS disabled, as for RedisStore); every test has its own
// namespace. A "sibling" on the same namespace is a second instance: its own L1, the same Redis.
// The server is flushed before each test (every store of the previous one is closed by then) so
// that what a test sees in Redis, and how many SCAN steps clear() takes, does not depend on the
// tests before it.
let server: RedisServer
let raw: Redis

beforeAll(async () => {
  server = await startRedis({ args: ['--rename-command', 'KEYS', ''] })
  raw = server.client()
})

beforeEach(async () => {
  await raw.flushall()
})

afterAll(async () => {
  await server?.stop()
})

// Timing: waits poll a state with a deadline derived from the stores' configuration below (a test
// that passes never waits for one), writes are waited for with `settle()`, and time that must pass
// (l1Ttl) is moved on a manual clock instead of slept.

/** `timeout` of every RedisStore here ('1s': generous, these tests check behaviour, not latency). */
const L2_TIMEOUT = 1000
/** RedisStore gives writes, INFO and invalidation steps four times `timeout`. */
const WRITE_TIMEOUT = 4 * L2_TIMEOUT
/** `connectTimeout` of the client RedisStore makes from a URL (redis-client.ts). */
const CONNECT_TIMEOUT = 2000
/** The stores' `l1Ttl` unless a test sets another: an invalidation message must beat it. */
const L1_TTL = 10_000
/** For timers that fire late on a busy machine. */
const MARGIN = 1000
/** A new store is connected, has subscribed, and has read the eviction policy (INFO, a write deadline). */
const READY_WITHIN = CONNECT_TIMEOUT + WRITE_TIMEOUT + MARGIN
/** A message one instance publishes reaches another well before `l1Ttl`, the bound on a lost one. */
const MESSAGE_WITHIN = L1_TTL / 2

/**
 * Real time plus whatever a test has skipped: gets past l1Ttl without sleeping through it. (A
 * frozen clock would not do: Redis counts an entry's TTL down in real time, and a store rebuilds
 * the entry's times from that TTL and its own clock.)
 */
class SkippingClock {
  private skipped = 0
  readonly now = (): number => Date.now() + this.skipped
  skip(ms: number): void {
    this.skipped += ms
  }
}

interface TieredOptions {
  readonly maxEntryBytes?: number
  /** L1's own largest entry, when it should differ from L2's. */
  readonly l1MaxEntryBytes?: number
  readonly l1Ttl?: Duration
  /** The clock of the store's host (Date.now unless given). */
  readonly clock?: SkippingClock
}

type TieredUnderTest = Omit<StoreUnderTest, 'store'> & { readonly store: TieredStore }

async function openTiered(namespace: string, options: TieredOptions, opened: CacheStore[]): Promise<TieredUnderTest> {
  const maxEntryBytes = options.maxEntryBytes ?? 16 * 1024 * 1024
  const l1Max = options.l1MaxEntryBytes ?? maxEntryBytes
  const l1 = new MemoryStore({ maxBytes: Math.max(64 * 1024 * 1024, l1Max), maxEntryBytes: l1Max })
  // Generous deadlines: these tests check behaviour, not latency, on a shared 2-core machine.
  const l2 = new RedisStore({ redis: server.url, timeout: L2_TIMEOUT, maxEntryBytes })
  const store = new TieredStore(l1, l2, { l1Ttl: options.l1Ttl ?? L1_TTL })
  opened.push(store)
  const host = new TestHost(namespace, options.clock?.now)
  store.attach(host)
  await until(() => l2.isReady(), READY_WITHIN, 'the Redis store to be ready', { every: 20 })
  return {
    store,
    host,
    sibling: (ns) => openTiered(ns, options, opened),
    settle: async () => {
      // L2 writes start on the next turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve))
      await l2.writesSettled()
    },
    cleanup: async () => {
      for (const s of opened.splice(0)) await s.close?.()
    },
  }
}

runStoreSuite('TieredStore', ({ namespace, maxEntryBytes }) => openTiered(namespace, { maxEntryBytes }, []), {
  clearScope: 'namespace',
  setsExpiredEntry: true,
  staleTagAfterOverwrite: { removed: 1, stillServed: true, removedByNewTag: 1 },
})

/** Until both instances listen on the namespace's invalidation channel. */
async function subscribers(namespace: string, n: number): Promise<void> {
  const channel = `${namespace}:v1:bus`
  await until(
    async () => Number(((await raw.pubsub('NUMSUB', channel)) as [string, number])[1]) >= n,
    READY_WITHIN,
    `${n} subscribers on ${channel}`,
    { every: 20 },
  )
}

describe('TieredStore specifics', () => {
  const opened: CacheStore[] = []
  const open = (namespace: string, options: TieredOptions = {}) => openTiered(namespace, options, opened)
  const closeAll = async () => {
    for (const s of opened.splice(0)) await s.close?.()
  }

  it('promotes an L2 hit into L1: the first get goes to Redis, the second answers synchronously', async () => {
    try {
      const ns = uniqueNamespace()
      const writer = await open(ns)
      const reader = await open(ns)
      const built = response(ns, { url: '/promote', tags: ['p'] })
      expect(writer.store.set(built.key, built.entry)).toBe(true)
      await writer.settle()

      const first = reader.store.get(built.key)
      expect(isPromise(first)).toBe(true)
      expectSameResponse(await first, built.entry)
      const second = reader.store.get(built.key)
      expect(isPromise(second)).toBe(false)
      expectSameResponse(second as Awaited<typeof first>, built.entry)
      expect(reader.store.l1.get(built.key)).toBe(second)
      // L2's answer is a view of the reply; L1 keeps a copy in its body arena (no socket buffer pinned):
      // the body is a view of the arena's one slab.
      const kept = second as { body: Buffer }
      const arena = (reader.store.l1 as MemoryStore).arenaStats()
      expect(arena).toMatchObject({ slabs: 1, bodies: 1 })
      expect(kept.body.buffer.byteLength).toBe(arena.slabBytes)
      expect(reader.host.reports).toEqual([])
    } finally {
      await closeAll()
    }
  })

  it('checks an L1 copy against L2 again after l1Ttl: a key deleted in Redis behind its back is then a miss', async () => {
    try {
      const ns = uniqueNamespace()
      // The store's clock is moved on by hand: no sleeping through l1Ttl.
      const clock = new SkippingClock()
      const l1Ttl = 200
      const store = await open(ns, { l1Ttl, clock })
      const writer = await open(ns)
      const own = response(ns, { url: '/recheck/own' })
      const promoted = response(ns, { url: '/recheck/promoted' })
      expect(store.store.set(own.key, own.entry)).toBe(true)
      expect(writer.store.set(promoted.key, promoted.entry)).toBe(true)
      await store.settle()
      await writer.settle()
      expectSameResponse(await store.store.get(promoted.key), promoted.entry)
      expect(store.store.l1.get(promoted.key)).toBeDefined()

      // Within l1Ttl, both are answered from L1 without asking Redis.
      for (const key of [own.key, promoted.key]) expect(isPromise(store.store.get(key))).toBe(false)
      expect(await raw.unlink(own.key, promoted.key)).toBe(2)
      clock.skip(l1Ttl + 1)
      for (const key of [own.key, promoted.key]) {
        const got = store.store.get(key)
        expect(isPromise(got)).toBe(true)
        expect(await got).toBeUndefined()
        // The L1 copy went too, so the next get does not find it either.
        expect(store.store.l1.get(key)).toBeUndefined()
      }
      expect(store.host.reports).toEqual([])
    } finally {
      await closeAll()
    }
  })

  it('set answers true synchronously when L1 keeps the entry, and Redis has it shortly after', async () => {
    try {
      const ns = uniqueNamespace()
      const s = await open(ns)
      const built = response(ns, { url: '/write-behind', body: Buffer.from([0, 1, 2, 0xff]) })
      const result = s.store.set(built.key, built.entry)
      expect(result).toBe(true)
      // The write goes out on the next turn of the event loop; once it has finished, Redis has it.
      await s.settle()
      const bytes = await raw.getBuffer(built.key)
      expect(bytes).not.toBeNull()
      expect(bytes?.subarray(bytes.length - 4).equals(built.entry.body)).toBe(true)
      expect(await raw.pttl(built.key)).toBeGreaterThan(50_000)
      expect(s.host.reports).toEqual([])
    } finally {
      await closeAll()
    }
  })

  it('an entry too large for L1 but not for L2 goes straight to Redis: set answers with a promise of true', async () => {
    try {
      const ns = uniqueNamespace()
      const s = await open(ns, { l1MaxEntryBytes: 2048 })
      const built = response(ns, { url: '/l2-only', body: Buffer.alloc(8192, 7) })
      const result = s.store.set(built.key, built.entry)
      expect(isPromise(result)).toBe(true)
      expect(await result).toBe(true)
      expect(await raw.exists(built.key)).toBe(1)
      expect(s.store.l1.get(built.key)).toBeUndefined()
      expectSameResponse(await s.store.get(built.key), built.entry)
    } finally {
      await closeAll()
    }
  })

  it("an invalidation on one instance removes another instance's L1 copy and tells its host", async () => {
    try {
      const ns = uniqueNamespace()
      const a = await open(ns)
      const b = await open(ns)
      await subscribers(ns, 2)
      const doomed = response(ns, { url: '/remote/1', tags: ['remote'] })
      const kept = response(ns, { url: '/remote/2', tags: ['other'] })
      expect(a.store.set(doomed.key, doomed.entry)).toBe(true)
      expect(a.store.set(kept.key, kept.entry)).toBe(true)
      await a.settle()
      // b now holds both in its L1 (l1Ttl 10 s): without the message it would keep answering them.
      expectSameResponse(await b.store.get(doomed.key), doomed.entry)
      expectSameResponse(await b.store.get(kept.key), kept.entry)
      expect(isPromise(b.store.get(doomed.key))).toBe(false)

      const sel = normalizeSelectors({ tags: ['remote'] })
      expect(await a.store.invalidate(sel, ns)).toBe(1)
      await until(() => b.host.remote.length > 0, MESSAGE_WITHIN, 'the invalidation to reach the other instance', { every: 20 })
      expect(b.host.remote).toHaveLength(1)
      expect([...(b.host.remote[0]?.tags ?? [])]).toEqual(['remote'])
      expect(b.store.l1.get(doomed.key)).toBeUndefined()
      expect(b.store.l1.get(kept.key)).toBeDefined()
      const after = b.store.get(doomed.key)
      expect(isPromise(after)).toBe(true)
      expect(await after).toBeUndefined()
      // An instance ignores its own messages.
      expect(a.host.remote).toEqual([])
      expect(a.host.reports).toEqual([])
      expect(b.host.reports).toEqual([])
    } finally {
      await closeAll()
    }
  })

  it('an L2 read already under way when this instance invalidates does not put the invalidated entry back into L1', async () => {
    try {
      const ns = uniqueNamespace()
      const writer = await open(ns)
      const s = await open(ns)
      const built = response(ns, { url: '/race/1', tags: ['race'] })
      expect(writer.store.set(built.key, built.entry)).toBe(true)
      await writer.settle()

      // A request's lookup: L1 misses, the L2 read is on its way...
      const inFlight = s.store.get(built.key)
      expect(isPromise(inFlight)).toBe(true)
      // ...when the same instance invalidates (say, a POST to the same resource).
      expect(await s.store.invalidate(normalizeSelectors({ keys: ['/race/1'] }), ns)).toBe(1)
      await inFlight
      expect(await raw.exists(built.key)).toBe(0)

      // The invalidation has completed: a lookup that starts now must not see the old entry.
      const next = await s.store.get(built.key)
      expect(next).toBeUndefined()
      expect(s.store.l1.get(built.key)).toBeUndefined()
    } finally {
      await closeAll()
    }
  })

  it('health() reports both tiers', async () => {
    try {
      const ns = uniqueNamespace()
      const s = await open(ns)
      const built = response(ns, { url: '/health' })
      expect(s.store.set(built.key, built.entry)).toBe(true)
      const h = await s.store.health()
      expect(h.kind).toBe('tiered')
      expect(h.ok).toBe(true)
      expect(h.l1).toMatchObject({ kind: 'memory', ok: true, entries: 1, maxBytes: (s.store.l1 as MemoryStore).maxBytes })
      expect(h.l2).toMatchObject({ kind: 'redis', ok: true, connection: 'ready', breaker: 'closed', roundTrip: { ok: true } })
    } finally {
      await closeAll()
    }
  })
})
