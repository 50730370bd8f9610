/** The store contract, part 1: reads and writes (round trips, variants, expiry, overwrite). */

import { expect } from 'vitest'
import { ageOf, type ResponseEntry } from '../model/entry.js'
import { makeVariantKey } from '../model/key.js'
import { CLOCK_SLACK_MS, binary, expectSameAge, expectSameResponse, fresh, present, put, response, sel, sleep, varied, type ContractTest, type StoreTraits, type StoreUnderTest } from './fixtures.js'

/** `key` answers `entry` from the store under test and, once its writes have settled, from a second instance. */
async function expectServedHereAndByPeer(s: StoreUnderTest, key: string, entry: ResponseEntry): Promise<void> {
  expectSameResponse(await s.store.get(key), entry)
  await s.settle()
  const peer = await s.sibling(s.host.namespace)
  expectSameResponse(await peer.store.get(key), entry)
}

export function entriesContract(test: ContractTest, traits: StoreTraits): void {

  test('a key never set is a miss', async ({ store, host }) => {
    const { key } = response(host.namespace, { url: '/never' })
    expect(await store.get(key)).toBeUndefined()
  })

  test('set then get returns the same status, headers, binary body, tags, routing fields, etag, age and expiry', async (s) => {
    const { store, host } = s
    const now = Date.now()
    const body = Buffer.concat([Buffer.from([0x00, 0xff, 0x00, 0xfe]), binary(4096), Buffer.from([0xff, 0x00])])
    const built = response(
      host.namespace,
      {
        url: '/products/42?b=2&a=1',
        status: 203,
        headers: {
          'content-type': 'application/octet-stream',
          etag: '"v42"',
          'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
          'cache-control': 'public, max-age=60',
          link: ['</a.css>; rel=preload', '</b.js>; rel=preload'],
          'x-multi': ['one', 'two', 'three'],
          'x-latin1': 'caf\u00e9',
        },
        body,
        tags: ['product:42', 'catalog'],
        lifetimeMs: 60_000,
        storedAgoMs: 5_500,
        initialAge: 7,
      },
      now,
    )
    // The constructor did what the cache relies on; checked so the comparison below means something.
    expect(built.entry.etag).toBe('"v42"')
    expect(built.entry.url).toBe('/products/42?a=1&b=2')
    expect(built.entry.headers['content-length']).toBe(String(body.length))
    // 7 s from the origin plus 5.5 s in the cache, in whole seconds.
    expect(ageOf(built.entry, now)).toBe(12)
    expect(await store.set(built.key, built.entry)).toBe(true)

    const got = await store.get(built.key)
    expectSameResponse(got, built.entry)
    expectSameAge(got, built.entry)

    // A second instance over the same data (for Tiered: through Redis, not its own L1).
    await s.settle()
    const peer = await s.sibling(host.namespace)
    const viaPeer = await peer.store.get(built.key)
    expectSameResponse(viaPeer, built.entry)
    expectSameAge(viaPeer, built.entry)
    expect(peer.host.reports).toEqual([])
    expect(peer.host.rejectedCount).toBe(0)
  })

  test('a 204 without a body round trips with an empty body and no Content-Length', async (s) => {
    const built = response(s.host.namespace, { url: '/empty', status: 204, body: Buffer.alloc(0), headers: {} })
    expect(built.entry.headers['content-length']).toBeUndefined()
    await put(s.store, built)
    await expectServedHereAndByPeer(s, built.key, built.entry)
  })

  test('a vary marker and its variants round trip', async (s) => {
    const { store, host } = s
    const v = varied(host.namespace, { url: '/greeting', tags: ['greeting'] }, ['accept-language', 'accept-encoding'], [
      { 'accept-language': 'en', 'accept-encoding': 'gzip' },
      { 'accept-language': 'fr' },
    ])
    await put(store, v)
    await s.settle()
    const peer = await s.sibling(host.namespace)
    for (const reader of [store, peer.store]) {
      const marker = await reader.get(v.primary)
      expect(marker?.kind).toBe('vary')
      if (marker?.kind !== 'vary') return
      expect([...marker.names]).toEqual(['accept-language', 'accept-encoding'])
      expect([...marker.tags]).toEqual(['greeting'])
      expect(marker.path).toBe('/greeting')
      expect(marker.url).toBe('/greeting')
      expect(marker.size).toBe(v.marker.size)
      expect(marker.expiresAt).toBeGreaterThanOrEqual(v.marker.expiresAt - 5)
      expect(marker.expiresAt).toBeLessThanOrEqual(v.marker.expiresAt + CLOCK_SLACK_MS)
      for (const variant of v.variants) {
        // The key a later request derives from the marker's names finds the variant.
        const key = makeVariantKey(v.primary, marker.names, variant.request)
        expect(key).toBe(variant.key)
        expectSameResponse(await reader.get(key), variant.entry)
      }
      expect(await reader.get(makeVariantKey(v.primary, marker.names, { 'accept-language': 'de' }))).toBeUndefined()
    }
  })

  test('an entry whose expiresAt is already past is not answered as fresh', async ({ store, host }) => {
    const now = Date.now()
    const built = response(host.namespace, { url: '/stale', lifetimeMs: 1_000, storedAgoMs: 5_000 }, now)
    expect(built.entry.expiresAt).toBeLessThan(now)
    expect(await store.set(built.key, built.entry)).toBe(traits.setsExpiredEntry)
    const got = await store.get(built.key)
    // The contract lets a store return an expired entry; the cache checks expiresAt.
    if (got !== undefined) expect(got.expiresAt).toBeLessThanOrEqual(Date.now())
  })

  test('a short-lived entry stops being fresh once its lifetime has passed in real time', async ({ store, host }) => {
    const built = response(host.namespace, { url: '/short', lifetimeMs: 1_000 })
    await put(store, built)
    expect(await fresh(store, built.key)).toBeDefined()
    // Past expiresAt with room to spare for Redis' own expiry.
    await sleep(built.entry.expiresAt - Date.now() + 300)
    const got = await store.get(built.key)
    if (got !== undefined) expect(got.expiresAt).toBeLessThanOrEqual(Date.now())
  })

  test('delete removes the entry, also one set just before (nothing brings it back later); deleting a missing key is fine', async (s) => {
    const { store, host } = s
    const a = response(host.namespace, { url: '/del/a' })
    const b = response(host.namespace, { url: '/del/b' })
    await put(store, a, b)
    // No pause between set and delete: a write the store put off must not outlive the delete.
    await store.delete(a.key)
    expect(await store.get(a.key)).toBeUndefined()
    expectSameResponse(await store.get(b.key), b.entry)
    await s.settle()
    expect(await store.get(a.key)).toBeUndefined()
    const peer = await s.sibling(host.namespace)
    expect(await peer.store.get(a.key)).toBeUndefined()
    expectSameResponse(await peer.store.get(b.key), b.entry)

    await store.delete(response(host.namespace, { url: '/del/never' }).key)
    await store.delete(a.key)
    expectSameResponse(await store.get(b.key), b.entry)
  })

  test('an entry set again under the same key replaces the first one', async (s) => {
    const first = response(s.host.namespace, { url: '/replace', body: Buffer.from('first'), tags: ['old'] })
    const second = response(s.host.namespace, { url: '/replace', body: Buffer.from('second one'), tags: ['new'] })
    expect(second.key).toBe(first.key)
    await put(s.store, first, second)
    await expectServedHereAndByPeer(s, first.key, second.entry)
  })

  test("invalidating by a tag only the key's earlier entry carried (store-specific, see StoreTraits.staleTagAfterOverwrite)", async (s) => {
    const { store, host } = s
    const want = traits.staleTagAfterOverwrite
    const first = response(host.namespace, { url: '/retag', tags: ['old'] })
    const second = response(host.namespace, { url: '/retag', body: Buffer.from('new'), tags: ['new'] })
    // Written one after the other, as two fills some time apart would be.
    await put(store, first)
    await s.settle()
    await put(store, second)
    await s.settle()
    expect(await store.invalidate(sel({ tags: ['old'] }), host.namespace)).toBe(want.removed)
    expect(await present(store, [first.key])).toEqual(want.stillServed ? [first.key] : [])
    expect(await store.invalidate(sel({ tags: ['new'] }), host.namespace)).toBe(want.removedByNewTag)
    expect(await present(store, [first.key])).toEqual([])
  })
}
