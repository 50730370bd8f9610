/** The store contract, part 3: clear, the entry size limit, and load. */

import { randomBytes } from 'node:crypto'
import { expect } from 'vitest'
import { binary, expectSameResponse, keysOf, present, put, response, sel, uniqueNamespace, type Built, type ContractTest, type StoreTraits } from './fixtures.js'

export function limitsContract(test: ContractTest, traits: StoreTraits): void {

  test(`clear removes every entry of the namespace (${traits.clearScope === 'namespace' ? 'and no other namespace' : 'and of every other namespace in the store'})`, async (s) => {
    const { store, host } = s
    const other = await s.sibling(uniqueNamespace())
    const mine = [response(host.namespace, { url: '/c/1', tags: ['c'] }), response(host.namespace, { url: '/c/2' })]
    const theirs = [response(other.host.namespace, { url: '/c/1', tags: ['c'] })]
    await put(other.store, ...theirs)
    await other.settle()
    // No pause between set and clear: a write the store put off must not outlive the clear.
    await put(store, ...mine)
    await store.clear()
    expect(await present(store, keysOf(...mine))).toEqual([])
    expect(await present(other.store, keysOf(...theirs))).toEqual(traits.clearScope === 'namespace' ? keysOf(...theirs) : [])
    // Put-off writes must not bring anything back, and the indexes went with the entries.
    await s.settle()
    const peer = await s.sibling(host.namespace)
    expect(await present(peer.store, keysOf(...mine))).toEqual([])
    expect(await store.invalidate(sel({ tags: ['c'] }), host.namespace)).toBe(0)
  })

  test(
    "set answers 'too-large' for an entry larger than maxEntryBytes, and the entry is not returned",
    async (s) => {
      const { store, host } = s
      const small = response(host.namespace, { url: '/size/small', body: binary(512) })
      const large = response(host.namespace, { url: '/size/large', body: binary(8192) })
      expect(await store.set(small.key, small.entry)).toBe(true)
      expect(await store.set(large.key, large.entry)).toBe('too-large')
      expect(await store.get(large.key)).toBeUndefined()
      expectSameResponse(await store.get(small.key), small.entry)
      await s.settle()
      const peer = await s.sibling(host.namespace)
      expect(await peer.store.get(large.key)).toBeUndefined()
    },
    4096,
  )

  test('200 parallel sets, then 200 parallel gets, of different keys: all readable', async (s) => {
    const { store, host } = s
    const items = Array.from({ length: 200 }, (_, i) => response(host.namespace, { url: `/par/${i}`, body: binary(256 + i, i), tags: [`p${i % 7}`] }))
    const results = await Promise.all(items.map((b) => store.set(b.key, b.entry)))
    expect(results.every((r) => r === true)).toBe(true)
    const got = await Promise.all(items.map((b) => store.get(b.key)))
    got.forEach((e, i) => expectSameResponse(e, (items[i] as Built).entry))
    await s.settle()
    const peer = await s.sibling(host.namespace)
    const viaPeer = await Promise.all(items.map((b) => peer.store.get(b.key)))
    viaPeer.forEach((e, i) => expectSameResponse(e, (items[i] as Built).entry))
  })

  test('a 5 MB binary body round trips byte-identical', async (s) => {
    const { store, host } = s
    const body = randomBytes(5 * 1024 * 1024)
    body[0] = 0x00
    body[body.length - 1] = 0xff
    const big = response(host.namespace, { url: '/big.bin', body, headers: { 'content-type': 'application/octet-stream' } })
    expect(await store.set(big.key, big.entry)).toBe(true)
    expectSameResponse(await store.get(big.key), big.entry)
    await s.settle()
    const peer = await s.sibling(host.namespace)
    expectSameResponse(await peer.store.get(big.key), big.entry)
  })
}
