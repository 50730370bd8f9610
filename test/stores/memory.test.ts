import { MemoryStore } from '@corral/core'
import { describe, expect, it } from 'vitest'
import { response, runStoreSuite, TestHost, uniqueNamespace, type StoreUnderTest } from '@corral/core/testing'

// MemoryStore holds its data in the store object, so a "sibling" (another namespace, or a second
// reader of the same one) is the same store behind another host: the namespace is only the key
// prefix it is given.
function handle(store: MemoryStore, namespace: string): StoreUnderTest {
  return {
    store,
    host: new TestHost(namespace),
    sibling: async (ns) => handle(store, ns),
    settle: async () => undefined,
    cleanup: async () => store.clear(),
  }
}

runStoreSuite(
  'MemoryStore',
  async ({ namespace, maxEntryBytes }) => handle(new MemoryStore({ maxBytes: Math.max(64 * 1024 * 1024, maxEntryBytes), maxEntryBytes }), namespace),
  {
    clearScope: 'store',
    setsExpiredEntry: true,
    staleTagAfterOverwrite: { removed: 0, stillServed: true, removedByNewTag: 1 },
  },
)

describe('MemoryStore specifics', () => {
  it('answers synchronously: get and set never return a promise', () => {
    const store = new MemoryStore()
    const { key, entry } = response(uniqueNamespace(), { url: '/sync' })
    expect(store.set(key, entry)).toBe(true)
    expect(store.get(key)).toBe(entry)
    expect(store.invalidate({ paths: new Set(['/sync']), urls: new Set(), tags: new Set(), prefixes: [] }, key.split(':')[0] as string)).toBe(1)
    expect(store.get(key)).toBeUndefined()
  })

  it('evicts the least recently used entries past maxBytes and keeps the byte count within it', () => {
    const ns = uniqueNamespace()
    const items = Array.from({ length: 20 }, (_, i) => response(ns, { url: `/lru/${String(i).padStart(2, '0')}`, body: Buffer.alloc(1000, i) }))
    const store = new MemoryStore({ maxBytes: 10 * (items[0]?.entry.size ?? 0), maxEntryBytes: 4000 })
    for (const { key, entry } of items) expect(store.set(key, entry)).toBe(true)
    expect(store.size().bytes).toBeLessThanOrEqual(store.maxBytes)
    expect(store.size().entries).toBe(10)
    expect(store.get(items[0]?.key as string)).toBeUndefined()
    expect(store.get(items[19]?.key as string)).toBe(items[19]?.entry)
    // Evicted entries left the indexes: invalidating them removes nothing.
    expect(store.invalidate({ paths: new Set(['/lru/00']), urls: new Set(), tags: new Set(), prefixes: [] }, ns)).toBe(0)
  })
})
