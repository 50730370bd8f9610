import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../src/index.js'
import { createResponseEntry, type ResponseEntry } from '../src/model/entry.js'
import type { NormalizedSelectors } from '../src/model/invalidation.js'

// 4 MiB of L1: 256 KiB slabs, bodies over 16 KiB kept apart.
const MAX_BYTES = 4 * 1024 * 1024
const SLAB = 256 * 1024
const NS = 'arena'

/** A small deterministic PRNG, so that a failing pattern can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `length` bytes that differ for every `seed`, in a slice of Node's shared pool (as a captured body is). */
function bytes(seed: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7) & 0xff
  return b
}

function entry(path: string, body: Buffer): ResponseEntry {
  return createResponseEntry({
    status: 200,
    headers: { 'content-type': 'application/octet-stream' },
    body,
    storedAt: Date.now(),
    lifetimeMs: 3_600_000,
    initialAge: 0,
    tags: [],
    path,
    url: path,
  })
}

const key = (path: string): string => `${NS}:${path}`

/** A soft purge of one path, as the cache hands it to the store. */
function softPurge(path: string): NormalizedSelectors {
  return { paths: new Set([path]), urls: new Set(), tags: new Set(), prefixes: [], soft: true }
}

/** Stores a body of `length` bytes under `/n` and returns a copy of those bytes, to compare with later. */
function put(store: MemoryStore, n: number, length: number): Buffer {
  const body = bytes(n, length)
  const expected = Buffer.from(body)
  expect(store.set(key(`/${n}`), entry(`/${n}`, body))).toBe(true)
  return expected
}

function bodyOf(store: MemoryStore, path: string): Buffer {
  const e = store.get(key(path))
  if (e?.kind !== 'response') throw new Error(`no response under ${path}`)
  return e.body
}

describe('MemoryStore body arena', () => {
  it('keeps bodies byte for byte, copied once into 8-byte aligned views of its slabs', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const lengths = [1, 7, 8, 9, 100, 2048, 4095, 16 * 1024]
    const expected = lengths.map((length, n) => put(store, n, length))
    for (const [n, want] of expected.entries()) {
      const body = bodyOf(store, `/${n}`)
      expect(body.equals(want)).toBe(true)
      expect(body.buffer.byteLength).toBe(SLAB)
      expect(body.byteOffset % 8).toBe(0)
    }
    const stats = store.arenaStats()
    expect(stats.bodies).toBe(lengths.length)
    expect(stats.liveBytes).toBe(lengths.reduce((sum, l) => sum + Math.ceil(l / 8) * 8, 0))
    expect(stats.slabs).toBe(1)
  })

  it('copies the body: the caller may reuse its buffer after set', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const body = bytes(1, 500)
    const want = Buffer.from(body)
    const e = entry('/reused', body)
    store.set(key('/reused'), e)
    body.fill(0)
    expect(store.get(key('/reused'))).toBe(e)
    expect(bodyOf(store, '/reused').equals(want)).toBe(true)
  })

  it('keeps bodies over a sixteenth of a slab, and empty ones, out of the slabs', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const want = put(store, 1, SLAB / 16 + 1)
    const body = bodyOf(store, '/1')
    expect(body.equals(want)).toBe(true)
    expect(body.buffer.byteLength).toBe(body.length)
    put(store, 2, 0)
    expect(bodyOf(store, '/2').length).toBe(0)
    expect(store.arenaStats()).toMatchObject({ bodies: 0, liveBytes: 0, slabs: 0 })
  })

  it('counts a body once when a soft purge or a revalidation re-sets it under the same key, and copies it for another key', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const want = put(store, 1, 1000)
    const stored = store.get(key('/1')) as ResponseEntry
    const view = stored.body

    // A soft purge stores a copy of the entry that shares its body.
    expect(store.invalidate(softPurge('/1'), NS)).toBe(1)
    const stale = store.get(key('/1')) as ResponseEntry
    expect(stale).not.toBe(stored)
    expect(stale.body).toBe(view)
    expect(store.arenaStats()).toMatchObject({ bodies: 1, liveBytes: 1000 })

    // A 304 stores a new entry with the stored body (fill.ts: store(stale.body)).
    const refreshed = entry('/1', stale.body)
    expect(store.set(key('/1'), refreshed)).toBe(true)
    expect(refreshed.body).toBe(view)
    expect(store.arenaStats()).toMatchObject({ bodies: 1, liveBytes: 1000 })

    // The same body under another key: a copy of its own, each released on its own.
    const other = entry('/other', refreshed.body)
    expect(store.set(key('/other'), other)).toBe(true)
    expect(other.body).not.toBe(view)
    expect(store.arenaStats()).toMatchObject({ bodies: 2, liveBytes: 2000 })
    store.delete(key('/1'))
    expect(store.arenaStats()).toMatchObject({ bodies: 1, liveBytes: 1000 })
    expect(bodyOf(store, '/other').equals(want)).toBe(true)
    store.delete(key('/other'))
    expect(store.arenaStats()).toMatchObject({ bodies: 0, liveBytes: 0 })
    expect(view.equals(want)).toBe(true)
  })

  it('releases a body on eviction, replacement and delete, and drops a slab once nothing in it is live', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    for (let n = 0; n < 300; n++) put(store, n, 2000) // about 2.3 slabs
    expect(store.arenaStats().slabs).toBe(3)
    put(store, 0, 1000) // replaced: its first body is dead
    expect(store.arenaStats()).toMatchObject({ bodies: 300, liveBytes: 299 * 2000 + 1000 })
    for (let n = 0; n < 300; n++) store.delete(key(`/${n}`))
    // The full slabs are gone; the current one stays (it is still being filled).
    expect(store.arenaStats()).toMatchObject({ bodies: 0, liveBytes: 0, deadBytes: 0, slabs: 1 })
  })

  it('clear() drops every slab and resets the counts; bodies handed out keep their bytes', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const want = Array.from({ length: 400 }, (_, n) => put(store, n, 1500))
    const held = want.map((_, n) => bodyOf(store, `/${n}`))
    store.clear()
    expect(store.arenaStats()).toMatchObject({ slabs: 0, slabBytes: 0, liveBytes: 0, deadBytes: 0, bodies: 0 })
    for (let n = 0; n < 400; n++) put(store, n + 1000, 1500)
    expect(store.arenaStats()).toMatchObject({ bodies: 400, liveBytes: 400 * 1504 })
    for (const [n, body] of held.entries()) expect(body.equals(want[n] as Buffer)).toBe(true)
  })

  it('moves a hot body out of a slab whose other bodies were evicted, and a view taken before keeps its bytes through 10,000 more sets', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const want = put(store, 0, 2000)
    const before = bodyOf(store, '/0')
    const firstSlab = before.buffer
    let moved = false
    for (let n = 1; n <= 10_000; n++) {
      put(store, n, 2000)
      // Read the hot entry as a hit does: it stays the most recently used, every other entry ages out.
      const now = bodyOf(store, '/0')
      if (now.buffer !== firstSlab) moved = true
      expect(now.equals(want)).toBe(true)
    }
    expect(moved).toBe(true)
    // The view handed out before the move still holds the body: its slab was dropped, never reused.
    expect(before.equals(want)).toBe(true)
    // And the hot body does not keep a slab alive: the arena holds what its live bodies need.
    const stats = store.arenaStats()
    expect(stats.evacuations).toBeGreaterThan(0)
    expect(stats.slabBytes).toBeLessThanOrEqual(stats.liveBytes / 0.9 + 4 * SLAB)
  })

  it('keeps the bytes of an entry returned by get after it is evicted', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const want = put(store, 0, 3000)
    const held = store.get(key('/0')) as ResponseEntry
    for (let n = 1; n <= 10_000; n++) put(store, n, 1 + ((n * 7919) % 8000))
    expect(store.get(key('/0'))).toBeUndefined()
    expect(held.body.equals(want)).toBe(true)
  })

  it('compacts under a random eviction pattern: slab bytes stay within live / 0.9 + 4 slabs, and every body survives the moves', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    const random = prng(13)
    const expected = new Map<number, Buffer>()
    const handedOut: [Buffer, Buffer][] = []
    let next = 0
    let worst = 0
    for (let op = 0; op < 30_000; op++) {
      const r = random()
      if (r < 0.5) {
        const n = next++
        expected.set(n, put(store, n, 64 + Math.floor(random() * 6000)))
      } else if (r < 0.85 && next > 0) {
        // Reads of random live keys reorder the LRU: evictions are not first in, first out.
        const n = Math.floor(random() * next)
        const e = store.get(key(`/${n}`))
        if (e?.kind === 'response') {
          expect(e.body.equals(expected.get(n) as Buffer)).toBe(true)
          if (op % 97 === 0) handedOut.push([e.body, expected.get(n) as Buffer])
        }
      } else if (r < 0.97 && next > 0) {
        store.delete(key(`/${Math.floor(random() * next)}`))
      } else if (next > 0) {
        // A soft purge re-sets the entry with the same body (taken over, even mid-evacuation).
        store.invalidate(softPurge(`/${next - 1 - Math.floor(random() * Math.min(next, 500))}`), NS)
      }
      const s = store.arenaStats()
      worst = Math.max(worst, s.slabBytes - (s.liveBytes / 0.9 + 4 * SLAB))
    }
    const s = store.arenaStats()
    expect(worst).toBeLessThanOrEqual(0)
    expect(s.evacuations).toBeGreaterThan(10)
    for (const [view, want] of handedOut) expect(view.equals(want)).toBe(true)
    // The counts match the entries held: each live body counted once, aligned.
    let bodies = 0
    let live = 0
    for (let n = 0; n < next; n++) {
      const e = store.get(key(`/${n}`))
      if (e?.kind !== 'response') continue
      expect(e.body.equals(expected.get(n) as Buffer)).toBe(true)
      bodies++
      live += Math.ceil(e.body.length / 8) * 8
    }
    expect(bodies).toBeGreaterThan(100)
    expect(s).toMatchObject({ bodies, liveBytes: live })
  })

  it('does not copy in a first-in first-out workload: slabs empty in order and are dropped whole', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    for (let n = 0; n < 20_000; n++) put(store, n, 2048)
    const s = store.arenaStats()
    expect(s.copiedBytes).toBe(0)
    expect(s.slabBytes).toBeLessThanOrEqual(s.liveBytes + 2 * SLAB)
  })

  it('counts the body in the entry size once, whatever the arena does', () => {
    const store = new MemoryStore({ maxBytes: MAX_BYTES })
    put(store, 1, 1000)
    const size = store.size().bytes
    store.invalidate(softPurge('/1'), NS)
    expect(store.size().bytes).toBe(size)
  })
})
