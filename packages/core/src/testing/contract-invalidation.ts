/** The store contract, part 2: invalidation by key, tag and prefix, and what it answers. */

import { expect } from 'vitest'
import { expectSameResponse, keysOf, present, put, response, sel, uniqueNamespace, varied, type ContractTest, type EntrySpec } from './fixtures.js'

export function invalidationContract(test: ContractTest): void {

  test('invalidate by path removes every query, host and variant of that path, and only that path; answers the count', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const doomed = [
      response(ns, { url: '/p/1' }),
      response(ns, { url: '/p/1?a=1' }),
      response(ns, { url: '/p/1?a=2' }),
      response(ns, { url: '/p/1', host: 'other.test' }),
      varied(ns, { url: '/p/1?view=full' }, ['accept-language'], [{ 'accept-language': 'en' }, { 'accept-language': 'fr' }]),
    ]
    const kept = [
      response(ns, { url: '/p/10' }),
      response(ns, { url: '/p/1/x' }),
      response(ns, { url: '/p' }),
      response(ns, { url: '/q/p/1' }),
      response(ns, { url: '/p/1x?a=1' }),
    ]
    await put(store, ...doomed, ...kept)
    await s.settle()
    const doomedKeys = keysOf(...doomed)
    expect(doomedKeys).toHaveLength(7)
    expect(await present(store, doomedKeys)).toEqual(doomedKeys)

    // Every store counts entries removed; for Redis that is keys unlinked, one key per entry.
    expect(await store.invalidate(sel({ keys: ['/p/1'] }), ns)).toBe(7)
    expect(await present(store, doomedKeys)).toEqual([])
    expect(await present(store, keysOf(...kept))).toEqual(keysOf(...kept))
    await s.settle()
    const peer = await s.sibling(ns)
    expect(await present(peer.store, doomedKeys)).toEqual([])
    expect(await present(peer.store, keysOf(...kept))).toEqual(keysOf(...kept))
    // Nothing left to remove.
    expect(await store.invalidate(sel({ keys: ['/p/1'] }), ns)).toBe(0)
  })

  test('invalidate by URL removes only that canonical query (every host and variant of it)', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const doomed = [
      response(ns, { url: '/p?x=1' }),
      response(ns, { url: '/p?x=1', host: 'other.test' }),
      varied(ns, { url: '/p?x=1', host: 'third.test' }, ['accept'], [{ accept: 'text/html' }]),
    ]
    const kept = [
      response(ns, { url: '/p' }),
      response(ns, { url: '/p?x=2' }),
      response(ns, { url: '/p?x=10' }),
      response(ns, { url: '/p?y=2&x=1' }),
      response(ns, { url: '/p?x=1&x=2' }),
      response(ns, { url: '/p/x?x=1' }),
    ]
    await put(store, ...doomed, ...kept)
    await s.settle()
    expect(await store.invalidate(sel({ keys: ['/p?x=1'] }), ns)).toBe(4)
    expect(await present(store, keysOf(...doomed))).toEqual([])
    expect(await present(store, keysOf(...kept))).toEqual(keysOf(...kept))
    // The selector is canonicalised like a request: parameter order does not matter.
    expect(await store.invalidate(sel({ keys: ['/p?x=1&y=2'] }), ns)).toBe(1)
    expect(await present(store, [keysOf(...kept)[3] as string])).toEqual([])
  })

  test('invalidate by tag removes the entries carrying it', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const a = response(ns, { url: '/t/1', tags: ['a'] })
    const ab = response(ns, { url: '/t/2', tags: ['b', 'a'] })
    const b = response(ns, { url: '/t/3', tags: ['b'] })
    const none = response(ns, { url: '/t/4' })
    const aa = response(ns, { url: '/t/5', tags: ['aa'] })
    await put(store, a, ab, b, none, aa)
    // Invalidated right after being set (for Tiered: before the L2 writes went out).
    expect(await store.invalidate(sel({ tags: ['a'] }), ns)).toBe(2)
    expect(await present(store, keysOf(a, ab, b, none, aa))).toEqual(keysOf(b, none, aa))
    await s.settle()
    const peer = await s.sibling(ns)
    expect(await present(peer.store, keysOf(a, ab, b, none, aa))).toEqual(keysOf(b, none, aa))
  })

  test('invalidate by several tags removes each matching entry once and counts it once', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const a = response(ns, { url: '/t/1', tags: ['a'] })
    const ab = response(ns, { url: '/t/2', tags: ['a', 'b'] })
    const b = response(ns, { url: '/t/3', tags: ['b'] })
    const c = response(ns, { url: '/t/4', tags: ['c'] })
    const d = response(ns, { url: '/t/5', tags: ['d'] })
    await put(store, a, ab, b, c, d)
    // Invalidated right after being set (for Tiered: before the L2 writes went out).
    expect(await store.invalidate(sel({ tags: ['a', 'b', 'c', 'missing'] }), ns)).toBe(4)
    expect(await present(store, keysOf(a, ab, b, c, d))).toEqual(keysOf(d))
    await s.settle()
    const peer = await s.sibling(ns)
    expect(await present(peer.store, keysOf(a, ab, b, c, d))).toEqual(keysOf(d))
  })

  test('invalidate by prefix: "/a/" removes /a/b and /a/b/c, not /a or /ab; "/a" removes /ab too', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const all = () => ({
      a: response(ns, { url: '/a' }),
      ab: response(ns, { url: '/ab' }),
      b: response(ns, { url: '/a/b' }),
      bq: response(ns, { url: '/a/b?q=1' }),
      c: response(ns, { url: '/a/b/c' }),
      other: response(ns, { url: '/b/a' }),
    })
    const e = all()
    await put(store, ...Object.values(e))
    await s.settle()
    expect(await store.invalidate(sel({ prefixes: ['/a/'] }), ns)).toBe(3)
    expect(await present(store, keysOf(...Object.values(e)))).toEqual(keysOf(e.a, e.ab, e.other))

    await put(store, e.b, e.bq, e.c)
    await s.settle()
    expect(await store.invalidate(sel({ prefixes: ['/a'] }), ns)).toBe(5)
    expect(await present(store, keysOf(...Object.values(e)))).toEqual(keysOf(e.other))
  })

  test('invalidate by a prefix deeper than 8 segments', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const deep = '/1/2/3/4/5/6/7/8/9'
    const x = response(ns, { url: `${deep}/10/leaf` })
    const y = response(ns, { url: `${deep}/11/a/b/c/leaf?q=1` })
    const near = response(ns, { url: '/1/2/3/4/5/6/7/8/90/leaf' })
    const shallow = response(ns, { url: '/1/2/3/4/5/6/7/8' })
    await put(store, x, y, near, shallow)
    await s.settle()
    expect(await store.invalidate(sel({ prefixes: [`${deep}/`] }), ns)).toBe(2)
    expect(await present(store, keysOf(x, y, near, shallow))).toEqual(keysOf(near, shallow))
    expect(await store.invalidate(sel({ prefixes: [deep] }), ns)).toBe(1)
    expect(await present(store, keysOf(near, shallow))).toEqual(keysOf(shallow))
  })

  test('invalidate by the root prefix "/" removes the whole namespace and nothing of another', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const other = await s.sibling(uniqueNamespace())
    const mine = [response(ns, { url: '/' }), response(ns, { url: '/x' }), response(ns, { url: '/x/y/z?q=1' })]
    const theirs = [response(other.host.namespace, { url: '/' }), response(other.host.namespace, { url: '/x' })]
    await put(store, ...mine)
    await put(other.store, ...theirs)
    await s.settle()
    await other.settle()
    expect(await store.invalidate(sel({ prefixes: ['/'] }), ns)).toBe(3)
    expect(await present(store, keysOf(...mine))).toEqual([])
    expect(await present(other.store, keysOf(...theirs))).toEqual(keysOf(...theirs))
  })

  test('invalidation in one namespace leaves the same paths, URLs and tags of another namespace', async (s) => {
    const { store, host } = s
    const other = await s.sibling(uniqueNamespace())
    const specs: EntrySpec[] = [
      { url: '/n/1', tags: ['shared'] },
      { url: '/n/2?x=1', tags: ['shared', 'two'] },
      { url: '/n/deep/3' },
    ]
    const mine = specs.map((spec) => response(host.namespace, spec))
    const theirs = specs.map((spec) => response(other.host.namespace, spec))
    expect(keysOf(...mine)).not.toEqual(keysOf(...theirs))
    await put(store, ...mine)
    await put(other.store, ...theirs)
    await s.settle()
    await other.settle()
    const everything = sel({ keys: ['/n/1', '/n/2?x=1'], tags: ['shared', 'two'], prefixes: ['/n/'] })
    expect(await store.invalidate(everything, host.namespace)).toBe(3)
    expect(await present(store, keysOf(...mine))).toEqual([])
    expect(await present(other.store, keysOf(...theirs))).toEqual(keysOf(...theirs))
    expect(other.host.reports).toEqual([])
  })

  test('1,000 entries under one tag (many SSCAN steps) are all removed', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const many = Array.from({ length: 1000 }, (_, i) => response(ns, { url: `/bulk/${i}`, tags: ['bulk', `item:${i}`] }))
    const bystander = response(ns, { url: '/bulk-not', tags: ['bulky'] })
    await Promise.all([...many, bystander].map(async (b) => expect(await store.set(b.key, b.entry)).toBe(true)))
    await s.settle()
    expect(await store.invalidate(sel({ tags: ['bulk'] }), ns)).toBe(1000)
    expect(await present(store, keysOf(...many))).toEqual([])
    expect(await present(store, keysOf(bystander))).toEqual(keysOf(bystander))
    const peer = await s.sibling(ns)
    expect(await present(peer.store, keysOf(...many))).toEqual([])
  })

  test('an entry with a tag and a path longer than 200 characters is stored and invalidated by tag, path and prefix', async (s) => {
    const { store, host } = s
    const ns = host.namespace
    const longSegment = 'x'.repeat(250)
    const longTag = `tag:${'t'.repeat(300)}`
    const url = `/long/${longSegment}/leaf`
    const entry = response(ns, { url, tags: [longTag] })
    const sibling = response(ns, { url: `/long/${longSegment.slice(1)}/leaf`, tags: [`${longTag.slice(0, -1)}`] })
    await put(store, entry, sibling)
    await s.settle()
    expectSameResponse(await store.get(entry.key), entry.entry)

    expect(await store.invalidate(sel({ tags: [longTag] }), ns)).toBe(1)
    expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))

    await put(store, entry)
    await s.settle()
    expect(await store.invalidate(sel({ keys: [url] }), ns)).toBe(1)
    expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))

    await put(store, entry)
    await s.settle()
    expect(await store.invalidate(sel({ prefixes: [`/long/${longSegment}/`] }), ns)).toBe(1)
    expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))
  })
}
