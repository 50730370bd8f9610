import { describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import type { Fill } from '../src/fill/fill.js'
import { makePrimaryKey, makeVariantKey, type RequestView } from '../src/model/key.js'
import { KeyMemo } from '../src/key-memo.js'
import { expectFill, view } from './helpers.js'

// The engine remembers keys by route, host and raw URL. Whatever it remembers must be exactly
// the key makePrimaryKey derives for the request in front of it.
describe('key memo in the engine', () => {
  async function keyOf(cache: ReturnType<typeof createCache>, route: ReturnType<typeof cache.route>, v: RequestView) {
    const fill: Fill = await expectFill(cache.handle(v, route, {}))
    fill.abandon('aborted')
    return fill.parts.key
  }

  it('gives every request the key makePrimaryKey derives, across hosts, URLs and repeats', async () => {
    const cache = createCache({ ttl: '1m' })
    const route = cache.route(undefined, 'options.')
    const urls = ['/a', '/a?x=1&y=2', '/a?y=2&x=1', '/a?x=1&x=2', '/a?x=2&x=1', '/a%2Fb', '/a/b', '/A', '/a?q=a%26b', '/a?q=a&b']
    const hosts = ['a.example', 'A.example', 'b.example', 'a.example:8080']
    for (let round = 0; round < 2; round++) {
      for (const host of hosts) {
        for (const url of urls) {
          const v = view(url, { host })
          expect(await keyOf(cache, route, v)).toBe(makePrimaryKey('corral', v).key)
        }
      }
    }
  })

  it('keeps routes apart: the same URL under different query rules gets each rule’s key', async () => {
    const cache = createCache({ ttl: '1m' })
    const all = cache.route(undefined, 'options.')
    const noUtm = cache.route({ query: { exclude: ['utm_*'] } }, 'options.')
    const v = view('/p?id=1&utm_source=x')
    const a = await keyOf(cache, all, v)
    const b = await keyOf(cache, noUtm, v)
    expect(a).not.toBe(b)
    expect(await keyOf(cache, noUtm, view('/p?id=1'))).toBe(b)
    expect(await keyOf(cache, all, v)).toBe(a)
  })

  it('does not reuse a remembered key for a request with forwarding headers or custom key material', async () => {
    const cache = createCache({ ttl: '1m' })
    const route = cache.route(undefined, 'options.')
    const plain = await keyOf(cache, route, view('/r'))
    for (const h of [{ 'x-forwarded-host': 'evil.example' }, { 'x-forwarded-proto': 'http' }, { forwarded: 'host=evil.example' }]) {
      expect(await keyOf(cache, route, view('/r', h))).not.toBe(plain)
    }
    const tenant = cache.route<{ tenant: string }>({ key: (req) => req.tenant }, 'options.')
    const ka = await expectFill(cache.handle(view('/r'), tenant, { tenant: 'a' }))
    const kb = await expectFill(cache.handle(view('/r'), tenant, { tenant: 'b' }))
    expect(ka.parts.key).not.toBe(kb.parts.key)
  })
})

describe('KeyMemo', () => {
  const parts = (url: string) => ({ key: `k${url}`, path: url, url })

  it('is bounded in bytes across routes and starts again from empty rather than grows', () => {
    const memo = new KeyMemo(2000)
    const a = {}
    const b = {}
    memo.set(a, 'h', '/1', parts('/1'))
    memo.set(b, 'h', '/2', parts('/2'))
    expect(memo.get(a, 'h', '/1')?.key).toBe('k/1')
    expect(memo.get(b, 'h', '/2')?.key).toBe('k/2')
    expect(memo.get({}, 'h', '/1')).toBeUndefined()
    expect(memo.get(a, 'other', '/1')).toBeUndefined()
    let last = ''
    for (let i = 3; memo.bytes > 0 && i < 100; i++) {
      last = `/${i}`
      memo.set(a, 'h', last, parts(last))
      expect(memo.bytes).toBeLessThanOrEqual(2000)
      if (memo.get(a, 'h', '/1') === undefined) break
    }
    // Past the budget it forgot everything it held, on every route, and kept the newest.
    expect(memo.get(a, 'h', '/1')).toBeUndefined()
    expect(memo.get(b, 'h', '/2')).toBeUndefined()
    expect(memo.get(a, 'h', last)?.key).toBe(`k${last}`)
  })

  it('does not remember very long URLs: 10,000 URLs of 14 KB hold nothing', () => {
    const memo = new KeyMemo(1024 * 1024)
    const route = {}
    for (let i = 0; i < 10_000; i++) {
      const url = `/${'x'.repeat(14 * 1024)}${i}`
      memo.set(route, 'h', url, parts(url))
    }
    expect(memo.bytes).toBe(0)
  })

  describe('variant keys', () => {
    const primary = 'corral:v1:' + 'a'.repeat(43)
    const forms: Record<string, string | string[] | undefined>[] = [
      {}, { 'accept-encoding': 'gzip' }, { 'accept-encoding': 'GZIP' }, { 'accept-encoding': 'gzip, br' }, { 'accept-encoding': ' gzip ,br' },
      { 'accept-encoding': ['gzip', 'br'] }, { 'accept-encoding': '' }, { 'accept-encoding': '1:a' }, { 'accept-encoding': '-' },
      { 'accept-encoding': 'gzip', 'accept-language': 'de' }, { 'accept-language': 'de' }, { 'accept-language': '2:de' },
    ]

    it('gives exactly the key makeVariantKey derives, for every form of the varied headers, remembered or not', () => {
      const memo = new KeyMemo(1024 * 1024)
      const markers = [{ names: ['accept-encoding'] }, { names: ['accept-encoding', 'accept-language'] }, { names: ['accept-language', 'accept-encoding'] }]
      for (let round = 0; round < 2; round++) {
        for (const marker of markers) {
          for (const headers of forms) expect(memo.variantKey(primary, marker, headers)).toBe(makeVariantKey(primary, marker.names, headers))
        }
      }
      expect(memo.bytes).toBeGreaterThan(0)
    })

    it('keeps primaries apart under one marker object, and markers apart under one primary', () => {
      const memo = new KeyMemo(1024 * 1024)
      const marker = { names: ['accept-encoding'] }
      const other = 'corral:v1:' + 'b'.repeat(43)
      const h = { 'accept-encoding': 'gzip' }
      expect(memo.variantKey(primary, marker, h)).toBe(makeVariantKey(primary, marker.names, h))
      expect(memo.variantKey(other, marker, h)).toBe(makeVariantKey(other, marker.names, h))
      expect(memo.variantKey(primary, { names: ['accept-language'] }, h)).toBe(makeVariantKey(primary, ['accept-language'], h))
    })

    it('is bounded with the URL keys: 10,000 distinct values stay within the budget, and long values are not remembered', () => {
      const memo = new KeyMemo(64 * 1024)
      const marker = { names: ['accept-language'] }
      for (let i = 0; i < 10_000; i++) {
        const h = { 'accept-language': `x-${i}` }
        expect(memo.variantKey(primary, marker, h)).toBe(makeVariantKey(primary, marker.names, h))
        expect(memo.bytes).toBeLessThanOrEqual(64 * 1024)
      }
      const empty = new KeyMemo(64 * 1024)
      const long = { 'accept-language': 'x'.repeat(4096) }
      expect(empty.variantKey(primary, marker, long)).toBe(makeVariantKey(primary, marker.names, long))
      expect(empty.bytes).toBe(0)
    })
  })
})
