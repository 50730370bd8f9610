import { describe, expect, it } from 'vitest'
import type { IncomingHttpHeaders } from 'node:http'
import type { KeyMaterial, QueryRule } from '../src/index.js'
import { canonicalQuery, makePrimaryKey, makeVariantKey, normalizePercent, variantValue } from '../src/model/key.js'
import { view } from './helpers.js'

function key(
  url: string,
  opts: { headers?: IncomingHttpHeaders; method?: string; rule?: QueryRule; custom?: KeyMaterial } = {},
): string {
  return makePrimaryKey('corral', view(url, opts.headers, opts.method), { query: opts.rule, custom: opts.custom }).key
}

describe('makePrimaryKey: equal requests share a key', () => {
  it.each([
    ['/p?b=2&a=1', '/p?a=1&b=2'],
    ['/p?a=%41', '/p?a=A'],
    ['/%41bc', '/Abc'],
    ['/p?x=%7e', '/p?x=~'],
    ['/p?x=%7E', '/p?x=~'],
    ['/%7euser', '/~user'],
    ['/a%2fb', '/a%2Fb'],
    ['/p?x=%2f', '/p?x=%2F'],
    ['/p?c=3&a=1&b=2', '/p?b=2&c=3&a=1'],
    ['/p?a=1&&b=2', '/p?a=1&b=2'],
  ])('%s == %s', (a, b) => {
    expect(key(a)).toBe(key(b))
  })

  it('ignores the case of Host', () => {
    expect(key('/p', { headers: { host: 'Example.COM' } })).toBe(key('/p', { headers: { host: 'example.com' } }))
  })

  it('gives HEAD the key of GET', () => {
    expect(key('/p?a=1', { method: 'HEAD' })).toBe(key('/p?a=1', { method: 'GET' }))
  })

  it('is deterministic for equal custom material', () => {
    expect(key('/p', { custom: ['tenant', 1, { a: null }] })).toBe(key('/p', { custom: ['tenant', 1, { a: null }] }))
  })
})

describe('makePrimaryKey: different requests never share a key', () => {
  it.each([
    ['duplicate params keep their order', '/p?a=1&a=2', '/p?a=2&a=1'],
    ['encoded & is not a separator', '/p?a%26b=1', '/p?a=1&b=1'],
    ['encoded & in a value is not a separator', '/p?a=1%26b=1', '/p?a=1&b=1'],
    ['encoded = is not a separator', '/p?a%3Db=1', '/p?a=b=1'],
    ['encoded / in the path is not a /', '/a%2Fb', '/a/b'],
    ['encoded ? in the path is not a query', '/a%3Fb=1', '/a?b=1'],
    ['name without = differs from name with empty value', '/p?a', '/p?a='],
    ['+ differs from %20', '/p?q=a+b', '/p?q=a%20b'],
    ['path case', '/Path', '/path'],
    ['query value', '/p?a=1', '/p?a=2'],
    ['query vs none', '/p?a=1', '/p'],
    ['different path', '/p', '/q'],
    ['trailing slash', '/p', '/p/'],
    ['encoded % stays encoded', '/p?a=%2541', '/p?a=%41'],
  ])('%s: %s != %s', (_, a, b) => {
    expect(key(a)).not.toBe(key(b))
  })

  it('isolates hosts', () => {
    expect(key('/p', { headers: { host: 'a.example' } })).not.toBe(key('/p', { headers: { host: 'b.example' } }))
    expect(key('/p', { headers: { host: 'a.example:8080' } })).not.toBe(key('/p', { headers: { host: 'a.example' } }))
  })

  it.each([
    ['x-forwarded-host', 'evil.example'],
    ['x-forwarded-proto', 'http'],
    ['forwarded', 'host=evil.example;proto=http'],
  ])('puts %s in the key', (name, value) => {
    const plain = key('/p')
    const withHeader = key('/p', { headers: { [name]: value } })
    expect(withHeader).not.toBe(plain)
    expect(key('/p', { headers: { [name]: `${value}2` } })).not.toBe(withHeader)
  })

  it('does not confuse forwarding headers with each other', () => {
    expect(key('/p', { headers: { 'x-forwarded-host': 'https' } })).not.toBe(
      key('/p', { headers: { 'x-forwarded-proto': 'https' } }),
    )
  })

  it.each(['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'])('gives %s a key different from GET', (method) => {
    expect(key('/p', { method })).not.toBe(key('/p'))
  })

  it.each<[string, KeyMaterial, KeyMaterial]>([
    ['joined vs split strings', ['a:b'], ['a', 'b']],
    ['string vs number', ['1'], [1]],
    ['null vs "null"', null, 'null'],
    ['nested vs flat', [['a', 'b']], ['a', 'b']],
    ['object vs array', { a: 'b' }, ['a', 'b']],
    ['true vs "true"', true, 'true'],
    ['separator inside a string', ['a', 'b,c'], ['a,b', 'c']],
  ])('custom material is hashed as a structure: %s', (_, a, b) => {
    expect(key('/p', { custom: a })).not.toBe(key('/p', { custom: b }))
  })

  it('custom material changes the key', () => {
    expect(key('/p', { custom: 'tenant-a' })).not.toBe(key('/p'))
    expect(key('/p', { custom: 'tenant-a' })).not.toBe(key('/p', { custom: 'tenant-b' }))
  })

  it('namespaces isolate caches', () => {
    const v = view('/p')
    expect(makePrimaryKey('a', v).key).not.toBe(
      makePrimaryKey('b', v).key,
    )
  })
})

describe('makePrimaryKey: query rules', () => {
  const exclude: QueryRule = { exclude: ['utm_*', 'fbclid'] }

  it('drops excluded parameters, with * as a prefix pattern', () => {
    expect(key('/p?a=1&utm_source=x&utm_medium=y&fbclid=z', { rule: exclude })).toBe(key('/p?a=1', { rule: exclude }))
  })

  it('keeps parameters that only resemble an excluded pattern', () => {
    expect(key('/p?a=1&utm=x', { rule: exclude })).not.toBe(key('/p?a=1', { rule: exclude }))
    expect(key('/p?a=1&fbclid2=x', { rule: exclude })).not.toBe(key('/p?a=1', { rule: exclude }))
    expect(key('/p?a=1&xutm_source=x', { rule: exclude })).not.toBe(key('/p?a=1', { rule: exclude }))
  })

  it('keeps only included parameters', () => {
    const rule: QueryRule = { include: ['page', 'f_*'] }
    expect(key('/p?page=2&session=abc&f_color=red', { rule })).toBe(key('/p?f_color=red&page=2', { rule }))
    expect(key('/p?page=2', { rule })).not.toBe(key('/p?page=3', { rule }))
    expect(key('/p?page=2&f_size=m', { rule })).not.toBe(key('/p?page=2', { rule }))
  })

  it('ignores the whole query with query: false', () => {
    expect(key('/p?a=1&b=2', { rule: false })).toBe(key('/p', { rule: false }))
    expect(key('/p?a=1', { rule: false })).not.toBe(key('/q?a=1', { rule: false }))
  })

  it('canonicalQuery sorts by name, keeps duplicate order and distinguishes a from a=', () => {
    expect(canonicalQuery('b=2&a=1&a=0&c')).toEqual([
      ['a', '1'],
      ['a', '0'],
      ['b', '2'],
      ['c', null],
    ])
    expect(canonicalQuery('a=')).toEqual([['a', '']])
    expect(canonicalQuery('a=1&utm_x=2', { exclude: ['utm_*'] })).toEqual([['a', '1']])
    expect(canonicalQuery('a=1', false)).toEqual([])
  })

  it('reports the canonical URL for invalidation', () => {
    const parts = makePrimaryKey('corral', view('/p?b=2&a=%41&utm_x=1'), { query: exclude })
    expect(parts.path).toBe('/p')
    expect(parts.url).toBe('/p?a=A&b=2')
    expect(makePrimaryKey('corral', view('/p?utm_x=1'), { query: exclude }).url).toBe('/p')
  })
})

describe('makePrimaryKey: shape', () => {
  it('is <namespace>:v1:<hash> and bounded for an 8 KB URL', () => {
    const long = `/p?${'q='.padEnd(8 * 1024, 'x')}`
    const k = makePrimaryKey('shop', view(long), { custom: ['x'.repeat(4096)] }).key
    expect(k).toMatch(/^shop:v1:[A-Za-z0-9_-]+$/)
    expect(k.length).toBeLessThanOrEqual(100)
    expect(key('/p')).toMatch(/^corral:v1:[A-Za-z0-9_-]+$/)
    expect(k).not.toContain('xxxx')
  })

  it('two long URLs differing in their last character get different keys', () => {
    const base = `/p?q=${'x'.repeat(8 * 1024)}`
    expect(key(`${base}a`)).not.toBe(key(`${base}b`))
  })
})

describe('normalizePercent', () => {
  it('decodes unreserved escapes and upper-cases the rest', () => {
    expect(normalizePercent('%41%7e%2d%2E%5f%30')).toBe('A~-._0')
    expect(normalizePercent('%2f%3d%26%20')).toBe('%2F%3D%26%20')
    expect(normalizePercent('no-escapes')).toBe('no-escapes')
  })

  it('decodes in a single pass (%2541 is not %41 is not A)', () => {
    expect(normalizePercent('%2541')).toBe('%2541')
  })
})

describe('makeVariantKey', () => {
  const names = ['accept-language']
  const absent = makeVariantKey('k', names, {})
  const empty = makeVariantKey('k', names, { 'accept-language': '' })
  const en = makeVariantKey('k', names, { 'accept-language': 'en' })

  it('distinguishes an absent header, an empty header and a value', () => {
    expect(new Set([absent, empty, en]).size).toBe(3)
    expect(makeVariantKey('k', names, { 'accept-language': 'fr' })).not.toBe(en)
  })

  it('is stable and prefixed by the primary key', () => {
    expect(makeVariantKey('k', names, { 'accept-language': 'en' })).toBe(en)
    expect(en.startsWith('k:')).toBe(true)
    expect(makeVariantKey('other', names, { 'accept-language': 'en' })).not.toBe(en)
  })

  it('ignores surrounding whitespace of a value', () => {
    expect(makeVariantKey('k', names, { 'accept-language': '  en ' })).toBe(en)
  })

  it('normalises list whitespace, field lines and parameter spacing; case only where the field ignores it (RFC 9111 §4.1)', () => {
    const foo = (v: string | string[]) => makeVariantKey('k', ['foo'], { foo: v } as never)
    expect(foo(' 1, 2 ')).toBe(foo('1,2'))
    expect(foo(['1', '2'])).toBe(foo('1, 2'))
    expect(foo('1,,2')).toBe(foo('1,2'))
    expect(foo('a ; q = 1')).toBe(foo('a;q=1'))
    expect(foo('A')).not.toBe(foo('a'))
    expect(foo('1, 2')).not.toBe(foo('2, 1'))
    // A quoted string keeps its spaces.
    expect(foo('"a , b"')).not.toBe(foo('"a,b"'))
    expect(makeVariantKey('k', names, { 'accept-language': 'eN, De' })).toBe(makeVariantKey('k', names, { 'accept-language': ' en ,   de' }))
    expect(makeVariantKey('k', ['accept-encoding'], { 'accept-encoding': 'GZIP, Br' })).toBe(makeVariantKey('k', ['accept-encoding'], { 'accept-encoding': 'gzip,br' }))
    expect(variantValue('accept-language', undefined)).toBeNull()
    expect(variantValue('accept-language', '')).toBe('')
  })

  it('does not let values shift between header names', () => {
    const two = ['accept', 'accept-language']
    expect(makeVariantKey('k', two, { accept: 'a', 'accept-language': 'b' })).not.toBe(
      makeVariantKey('k', two, { accept: 'a, b' }),
    )
    expect(makeVariantKey('k', two, { accept: 'x' })).not.toBe(makeVariantKey('k', two, { 'accept-language': 'x' }))
  })
})
