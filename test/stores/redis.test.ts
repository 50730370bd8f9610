import { RedisStore } from '@corral/core'
import type { CacheStore } from '@corral/core/store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedis, type Redis, type RedisServer } from '../helpers/redis-server.js'
import {
  binary,
  eventually,
  expectSameResponse,
  response,
  runStoreSuite,
  TestHost,
  uniqueNamespace,
  type StoreUnderTest,
} from '@corral/core/testing'

// One private redis-server for the file, with KEYS renamed away: any KEYS the store sends fails
// (and would show up as a reported error), so the whole suite also proves it never uses KEYS.
// Tests never share a namespace, so nothing is flushed between them.
let server: RedisServer
let raw: Redis

beforeAll(async () => {
  server = await startRedis({ args: ['--rename-command', 'KEYS', ''] })
  raw = server.client()
})

afterAll(async () => {
  await server?.stop()
})

type RedisUnderTest = Omit<StoreUnderTest, 'store'> & { readonly store: RedisStore }

/** A RedisStore on the file's server, attached to a TestHost, once its connection is ready. */
async function openRedis(namespace: string, maxEntryBytes: number, opened: CacheStore[]): Promise<RedisUnderTest> {
  // Generous deadlines: these tests check behaviour, not latency, on a shared 2-core machine.
  const store = new RedisStore({ redis: server.url, timeout: '1s', maxEntryBytes })
  opened.push(store)
  const host = new TestHost(namespace)
  store.attach(host)
  // A store that is not connected yet, or has not read Redis's eviction policy, answers every
  // call with a miss or false.
  await eventually('the Redis store to be ready', () => store.isReady(), (ready) => ready)
  return {
    store,
    host,
    sibling: (ns) => openRedis(ns, maxEntryBytes, opened),
    // Every write has reached Redis once set() has resolved.
    settle: async () => undefined,
    cleanup: async () => {
      for (const s of opened.splice(0)) await s.close?.()
    },
  }
}

runStoreSuite('RedisStore', ({ namespace, maxEntryBytes }) => openRedis(namespace, maxEntryBytes, []), {
  clearScope: 'namespace',
  setsExpiredEntry: false,
  staleTagAfterOverwrite: { removed: 1, stillServed: false, removedByNewTag: 0 },
})

/** Calls per command since the server started (INFO commandstats). */
async function commandCalls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of (await raw.info('commandstats')).split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m) out[m[1] as string] = Number(m[2])
  }
  return out
}

/** Every key of a namespace, by SCAN (KEYS is disabled on this server). */
async function keysIn(pattern: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = next
    out.push(...keys)
  } while (cursor !== '0')
  return out.sort()
}

describe('RedisStore specifics', () => {
  async function open(maxEntryBytes = 16 * 1024 * 1024): Promise<RedisUnderTest> {
    return openRedis(uniqueNamespace(), maxEntryBytes, [])
  }

  it('runs on a server where KEYS is disabled', async () => {
    await expect(raw.keys('*')).rejects.toThrow(/unknown command/i)
  })

  it('stores an entry as a binary envelope: raw body bytes after a small header, not JSON or base64', async () => {
    const s = await open()
    try {
      const body = Buffer.concat([Buffer.from([0x00, 0xff]), binary(2044)])
      const { key, entry } = response(s.host.namespace, {
        url: '/raw?x=1',
        body,
        tags: ['raw', 'envelope'],
        headers: { 'content-type': 'application/octet-stream', etag: '"raw-1"', 'cache-control': 'public, max-age=60', 'x-multi': ['a', 'b'] },
      })
      expect(await s.store.set(key, entry)).toBe(true)
      expect(await raw.type(key)).toBe('string')
      const bytes = await raw.getBuffer(key)
      expect(bytes).not.toBeNull()
      if (bytes === null) return
      expect(bytes.subarray(0, 5).equals(Buffer.from([0x43, 0x52, 0x4c, 0x00, 0x03]))).toBe(true)
      expect(bytes.subarray(bytes.length - body.length).equals(body)).toBe(true)
      const overhead = bytes.length - body.length
      expect(overhead).toBeGreaterThan(0)
      expect(overhead).toBeLessThan(1024)
      expect(s.host.reports).toEqual([])
    } finally {
      await s.cleanup()
    }
  })

  it('reads an entry with one command (the value and its TTL from one script), hit or miss', async () => {
    const s = await open()
    try {
      const { key, entry } = response(s.host.namespace, { url: '/one-command', lifetimeMs: 60_000 })
      expect(await s.store.set(key, entry)).toBe(true)
      // This file's server serves other tests only between awaits; nothing else runs now.
      const before = await commandCalls()
      const hit = await s.store.get(key)
      const miss = await s.store.get(`${key}:absent`)
      const after = await commandCalls()
      expectSameResponse(hit, entry)
      expect(miss).toBeUndefined()
      const sent = Object.fromEntries(Object.entries(after).map(([c, n]) => [c, n - (before[c] ?? 0)]).filter(([c, n]) => n !== 0 && c !== 'info'))
      expect(sent).toEqual({ eval: 2, get: 2, pttl: 2 }) // EVAL, and the calls its script made
      expect(s.host.reports).toEqual([])
    } finally {
      await s.cleanup()
    }
  })

  it('sends the reads of one turn of the event loop in one socket write (a client it made), each read answered', async () => {
    const s = await open()
    try {
      const stored = Array.from({ length: 20 }, (_, i) => response(s.host.namespace, { url: `/turn/${i}`, lifetimeMs: 60_000 }))
      for (const { key, entry } of stored) expect(await s.store.set(key, entry)).toBe(true)
      // Count what reaches the socket's own write functions (after Node's Writable buffering).
      const socket = (s.store.client as unknown as { stream: { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void } }).stream
      const writes: number[] = []
      const { _write, _writev } = socket
      socket._write = function (...a: unknown[]) {
        writes.push(1)
        return _write.apply(this, a)
      }
      if (_writev) {
        socket._writev = function (this: unknown, ...a: unknown[]) {
          writes.push((a[0] as unknown[]).length)
          return _writev.apply(this, a)
        }
      }
      let read: (Awaited<ReturnType<RedisStore['get']>>)[]
      try {
        read = await Promise.all(stored.map(({ key }) => s.store.get(key)))
      } finally {
        socket._write = _write
        if (_writev) socket._writev = _writev
      }
      stored.forEach(({ entry }, i) => expectSameResponse(read[i], entry))
      expect(writes).toEqual([20])
      expect(s.host.reports).toEqual([])
    } finally {
      await s.cleanup()
    }
  })

  it('reads entries through a client with enableAutoPipelining (ioredis batches its commands)', async () => {
    const store = new RedisStore({ redis: { host: '127.0.0.1', port: server.port, enableAutoPipelining: true }, timeout: '1s' })
    const host = new TestHost(uniqueNamespace())
    store.attach(host)
    try {
      await eventually('the Redis store to be ready', () => store.isReady(), (ready) => ready)
      const stored = Array.from({ length: 20 }, (_, i) => response(host.namespace, { url: `/auto/${i}`, lifetimeMs: 60_000 }))
      for (const { key, entry } of stored) expect(await store.set(key, entry)).toBe(true)
      // Twenty reads in one tick: ioredis sends them as one pipeline.
      const read = await Promise.all(stored.map(({ key }) => store.get(key)))
      stored.forEach(({ entry }, i) => expectSameResponse(read[i], entry))
      expect(host.reports).toEqual([])
    } finally {
      await store.close()
    }
  })

  it('gives the key a Redis TTL equal to the time the entry has left', async () => {
    const s = await open()
    try {
      const fresh = response(s.host.namespace, { url: '/ttl/fresh', lifetimeMs: 60_000 })
      const aged = response(s.host.namespace, { url: '/ttl/aged', lifetimeMs: 60_000, storedAgoMs: 20_000 })
      expect(await s.store.set(fresh.key, fresh.entry)).toBe(true)
      expect(await s.store.set(aged.key, aged.entry)).toBe(true)
      const [a, b] = await Promise.all([raw.pttl(fresh.key), raw.pttl(aged.key)])
      expect(a).toBeLessThanOrEqual(60_000)
      expect(a).toBeGreaterThan(55_000)
      expect(b).toBeLessThanOrEqual(40_000)
      expect(b).toBeGreaterThan(35_000)
    } finally {
      await s.cleanup()
    }
  })

  it('gives every index set a TTL at least as long as its longest-lived entry; no key of the namespace lives forever', async () => {
    const s = await open()
    try {
      const ns = s.host.namespace
      const short = response(ns, { url: '/ix/a/b?q=1', tags: ['shared'], lifetimeMs: 30_000 })
      const long = response(ns, { url: '/ix/other', tags: ['shared'], lifetimeMs: 90_000 })
      expect(await s.store.set(short.key, short.entry)).toBe(true)
      const indexes = [`${ns}:v1:i:t:shared`, `${ns}:v1:i:p:/ix/a/b`, `${ns}:v1:i:d:/`, `${ns}:v1:i:d:/ix/`, `${ns}:v1:i:d:/ix/a/`]
      for (const ix of indexes) {
        expect(await raw.smembers(ix)).toEqual([`${short.key} /ix/a/b?q=1`])
        const ttl = await raw.pttl(ix)
        expect(ttl).toBeGreaterThan(25_000)
        expect(ttl).toBeLessThanOrEqual(30_000)
      }
      expect(await s.store.set(long.key, long.entry)).toBe(true)
      expect(await raw.pttl(`${ns}:v1:i:t:shared`)).toBeGreaterThan(85_000)
      expect(await raw.pttl(`${ns}:v1:i:d:/`)).toBeGreaterThan(85_000)
      // A shorter-lived entry does not shorten an index.
      expect(await raw.pttl(`${ns}:v1:i:d:/ix/a/`)).toBeLessThanOrEqual(30_000)

      const all = await keysIn(`${ns}:*`)
      expect(all.length).toBeGreaterThanOrEqual(2 + indexes.length)
      for (const k of all) expect(await raw.pttl(k), k).toBeGreaterThan(0)
    } finally {
      await s.cleanup()
    }
  })

  it('spreads 1,000 members of one tag over a hashtable set (so SSCAN takes many steps) and removes them all', async () => {
    const s = await open()
    try {
      const ns = s.host.namespace
      const many = Array.from({ length: 1000 }, (_, i) => response(ns, { url: `/bulk/${i}`, tags: ['bulk'] }))
      await Promise.all(many.map(async ({ key, entry }) => expect(await s.store.set(key, entry)).toBe(true)))
      const index = `${ns}:v1:i:t:bulk`
      expect(await raw.scard(index)).toBe(1000)
      expect(await raw.object('ENCODING', index)).toBe('hashtable')
      // One SSCAN step with the store's COUNT does not cover the set.
      const [cursor] = await raw.sscan(index, '0', 'COUNT', 100)
      expect(cursor).not.toBe('0')
      expect(await s.store.invalidate({ paths: new Set(), urls: new Set(), tags: new Set(['bulk']), prefixes: [] }, ns)).toBe(1000)
      expect(await raw.exists(...many.map((m) => m.key))).toBe(0)
      expect(await raw.exists(index)).toBe(0)
    } finally {
      await s.cleanup()
    }
  })

  it('clear removes only its own namespace (all but its invalidation log): keys of other namespaces and other applications survive', async () => {
    const s = await open()
    try {
      const ns = s.host.namespace
      const mine = response(ns, { url: '/c', tags: ['c'] })
      expect(await s.store.set(mine.key, mine.entry)).toBe(true)
      const strangers = [`${ns}x:v1:entry`, `${ns}.b:v1:entry`, `other:v1:${ns}`, `unrelated-${ns}`, `x${ns}:v1:entry`]
      for (const k of strangers) await raw.set(k, 'keep me', 'PX', 60_000)
      expect((await keysIn(`${ns}:*`)).length).toBeGreaterThan(1)
      await s.store.clear()
      // Only the invalidation log stays: it now records the clear, so that a fill that began
      // before it is not stored after it.
      expect(await keysIn(`${ns}:*`)).toEqual([`${ns}:v1:log`])
      for (const k of strangers) expect(await raw.get(k), k).toBe('keep me')
      expect(s.host.reports).toEqual([])
    } finally {
      await s.cleanup()
    }
  })

  describe('values Corral did not write', () => {
    const cases: [string, (key: string) => Promise<unknown>][] = [
      ['garbage bytes', (key) => raw.set(key, Buffer.from([0x00, 0xff, 0x7b, 0x22, 0x6b, 0x22]), 'PX', 60_000)],
      ['JSON', (key) => raw.set(key, JSON.stringify({ kind: 'response', status: 200, body: 'hi' }), 'PX', 60_000)],
      ['a truncated envelope', async (key) => {
        const bytes = await raw.getBuffer(key)
        if (bytes === null) throw new Error('expected an envelope to truncate')
        await raw.set(key, bytes.subarray(0, bytes.length - 10), 'PX', 60_000)
      }],
      ['an envelope whose metadata length is off by one', async (key) => {
        const bytes = await raw.getBuffer(key)
        if (bytes === null) throw new Error('expected an envelope to alter')
        const altered = Buffer.from(bytes)
        // u32 metadata length right after magic, version and flags (unsigned envelope).
        altered.writeUInt32BE(altered.readUInt32BE(6) + 1, 6)
        await raw.set(key, altered, 'PX', 60_000)
      }],
      ['a valid envelope whose key has no TTL', (key) => raw.persist(key)],
      ['a list', async (key) => {
        await raw.del(key)
        await raw.rpush(key, 'a', 'b')
        await raw.pexpire(key, 60_000)
      }],
      ['a hash without a TTL', async (key) => {
        await raw.del(key)
        await raw.hset(key, 'status', '200')
      }],
    ]
    it.each(cases)('%s: get is a miss, counted once as rejected, and the key is deleted', async (_, plant) => {
      const s = await open()
      try {
        const { key, entry } = response(s.host.namespace, { url: '/planted', body: Buffer.from('genuine body') })
        expect(await s.store.set(key, entry)).toBe(true)
        await plant(key)
        expect(await s.store.get(key)).toBeUndefined()
        expect(s.host.rejectedCount).toBe(1)
        expect(s.host.reports).toEqual([])
        await eventually('the refused value to be deleted', () => raw.exists(key), (n) => n === 0)
        expect(await s.store.get(key)).toBeUndefined()
        expect(s.host.rejectedCount).toBe(1)
        // A good entry written afterwards is served again.
        expect(await s.store.set(key, entry)).toBe(true)
        expectSameResponse(await s.store.get(key), entry)
      } finally {
        await s.cleanup()
      }
    })
  })

  it('health() is ok with a successful round trip on a live server, and leaves no key behind', async () => {
    const s = await open()
    try {
      const h = await s.store.health()
      expect(h.kind).toBe('redis')
      expect(h.ok).toBe(true)
      expect(h.roundTrip.ok).toBe(true)
      expect(h.roundTrip.error).toBeUndefined()
      expect(h.roundTrip.ms).toBeGreaterThanOrEqual(0)
      expect(h.connection).toBe('ready')
      expect(h.breaker).toBe('closed')
      expect(h.pendingInvalidations).toBe(0)
      expect(h.lastError).toBeNull()
      expect(await keysIn(`${s.host.namespace}:*`)).toEqual([])
    } finally {
      await s.cleanup()
    }
  })
})
