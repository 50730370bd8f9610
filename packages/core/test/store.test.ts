import { describe, expect, it } from 'vitest'
import { createCache, MemoryStore } from '../src/index.js'
import type { Decision } from '../src/cache.js'
import { CACHEABLE, expectFill, flush, store, view } from './helpers.js'

const kb = (n: number) => 'x'.repeat(n)

describe('MemoryStore byte budget through the cache', () => {
  it('evicts the least recently used entry past maxBytes and never holds more', async () => {
    // Each entry is about 2.4 KB: a 1000-byte body plus the per-entry overhead counted in entry.ts.
    const cache = createCache({ maxBytes: 5500, maxEntryBytes: 3000 })
    await store(cache, view('/a'), { body: kb(1000) })
    await store(cache, view('/b'), { body: kb(1000) })
    expect(cache.stats().entries).toBe(2)
    // touch /a so that /b is the least recently used
    expect((await cache.handle(view('/a'), cache.defaults, undefined)).type).toBe('hit')
    await store(cache, view('/c'), { body: kb(1000) })

    const s = cache.stats()
    expect(s.entries).toBe(2)
    expect(s.bytes).toBeLessThanOrEqual(5500)
    expect(s.bytes).toBeGreaterThanOrEqual(4000)
    expect((await cache.handle(view('/a'), cache.defaults, undefined)).type).toBe('hit')
    expect((await cache.handle(view('/c'), cache.defaults, undefined)).type).toBe('hit')
    expect((await cache.handle(view('/b'), cache.defaults, undefined)).type).toBe('miss')
  })

  it('keeps stats.bytes within maxBytes under many stores', async () => {
    const cache = createCache({ maxBytes: 10_000, maxEntryBytes: 3_000 })
    for (let i = 0; i < 50; i++) {
      await store(cache, view(`/item/${i}`), { body: kb(100 + ((i * 397) % 2000)) })
      expect(cache.stats().bytes).toBeLessThanOrEqual(10_000)
    }
    expect(cache.stats().entries).toBeGreaterThan(1)
  })

  it('does not store an entry over maxEntryBytes', async () => {
    const cache = createCache({ maxBytes: 100_000, maxEntryBytes: 2000 })
    await store(cache, view('/big'), { body: kb(2500) })
    expect(cache.stats().entries).toBe(0)
    expect(cache.stats().bytes).toBe(0)
    await expectFill(cache.handle(view('/big'), cache.defaults, undefined))
    // and a small one next to it is stored
    await store(cache, view('/small'), { body: kb(10) })
    expect((await cache.handle(view('/small'), cache.defaults, undefined)).type).toBe('hit')
  })

  it('does not count an entry the store refused as stored', async () => {
    const cache = createCache({ maxBytes: 100_000, maxEntryBytes: 2000 })
    await store(cache, view('/big'), { body: kb(2500) })
    const s = cache.stats()
    expect(s.entries).toBe(0)
    expect(s.stored).toBe(0)
    expect(s.notStored['too-large']).toBe(1)
  })

  it('releases waiters to the origin at once when the store refused the leader entry', async () => {
    // As when the leader abandons: waiters told "stored" look again, find nothing, and the first
    // of them leads a second flight that the others wait on, serialising two origin calls.
    const cache = createCache({ maxBytes: 100_000, maxEntryBytes: 2000, lockTimeout: '1h' })
    const leader = await expectFill(cache.handle(view('/big'), cache.defaults, undefined))
    const settled: (Decision | undefined)[] = [undefined, undefined, undefined]
    const waiters = settled.map((_, i) =>
      Promise.resolve(cache.handle(view('/big'), cache.defaults, undefined)).then((d) => (settled[i] = d)),
    )
    leader.begin(200, { ...CACHEABLE })
    leader.end(Buffer.from(kb(2500)))
    await flush()
    expect(settled.map((d) => d?.type)).toEqual(['miss', 'miss', 'miss'])
    // let the test end cleanly whatever happened
    for (const d of settled) if (d?.type === 'miss') d.fill?.abandon('aborted')
    await Promise.all(waiters)
  })

  it('replacing an entry keeps the byte count right', async () => {
    const cache = createCache({ maxBytes: 100_000 })
    await store(cache, view('/p'), { body: kb(1000) })
    const one = cache.stats().bytes
    await cache.invalidate({ keys: ['/p'] })
    expect(cache.stats().bytes).toBe(0)
    await store(cache, view('/p'), { body: kb(1000) })
    expect(cache.stats().bytes).toBe(one)
  })
})

describe('MemoryStore options', () => {
  it('defaults maxEntryBytes to maxBytes / 16', () => {
    const s = new MemoryStore({ maxBytes: 1600 })
    expect(s.maxBytes).toBe(1600)
    expect(s.maxEntryBytes).toBe(100)
    expect(new MemoryStore().maxBytes).toBe(64 * 1024 * 1024)
  })

  it('rejects maxEntryBytes over maxBytes', () => {
    expect(() => new MemoryStore({ maxBytes: 10, maxEntryBytes: 11 })).toThrow(/maxEntryBytes/)
  })
})
