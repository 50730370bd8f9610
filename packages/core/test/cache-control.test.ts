import { describe, expect, it } from 'vitest'
import { deltaSeconds, parseCacheControl } from '../src/model/cache-control.js'

describe('parseCacheControl', () => {
  it('parses directives with and without values', () => {
    const cc = parseCacheControl('public, max-age=60, must-revalidate')
    expect([...cc]).toEqual([
      ['public', true],
      ['max-age', '60'],
      ['must-revalidate', true],
    ])
  })

  it('is empty for an absent or empty header', () => {
    expect(parseCacheControl(undefined).size).toBe(0)
    expect(parseCacheControl('').size).toBe(0)
    expect(parseCacheControl(' , ,').size).toBe(0)
  })

  it('lower-cases names but keeps values', () => {
    const cc = parseCacheControl('Max-Age=60, NO-STORE, Private="X-Foo"')
    expect(cc.get('max-age')).toBe('60')
    expect(cc.get('no-store')).toBe(true)
    expect(cc.get('private')).toBe('X-Foo')
    expect(cc.has('Max-Age')).toBe(false)
  })

  it('keeps commas inside quoted values', () => {
    const cc = parseCacheControl('no-cache="set-cookie, x-foo", max-age=5')
    expect(cc.get('no-cache')).toBe('set-cookie, x-foo')
    expect(cc.get('max-age')).toBe('5')
    expect(cc.has(' x-foo"')).toBe(false)
    expect(cc.size).toBe(2)
  })

  it('unescapes quoted pairs', () => {
    expect(parseCacheControl('ext="a\\"b", x').get('ext')).toBe('a"b')
    expect(parseCacheControl('ext="a\\"b", x').get('x')).toBe(true)
  })

  it('keeps the first occurrence of a duplicated directive', () => {
    expect(parseCacheControl('max-age=10, max-age=20').get('max-age')).toBe('10')
    expect(parseCacheControl('MAX-AGE=10, max-age=20').get('max-age')).toBe('10')
    expect(parseCacheControl(['max-age=10', 'max-age=20']).get('max-age')).toBe('10')
  })

  it('joins a list of header values', () => {
    const cc = parseCacheControl(['public', 's-maxage=30'])
    expect(cc.get('public')).toBe(true)
    expect(cc.get('s-maxage')).toBe('30')
  })

  it('tolerates whitespace around = and commas', () => {
    const cc = parseCacheControl('  max-age = 60 ,\tpublic ')
    expect(cc.get('max-age')).toBe('60')
    expect(cc.get('public')).toBe(true)
  })
})

describe('deltaSeconds', () => {
  it('reads max-age and s-maxage', () => {
    const cc = parseCacheControl('max-age=60, s-maxage=120')
    expect(deltaSeconds(cc, 'max-age')).toBe(60)
    expect(deltaSeconds(cc, 's-maxage')).toBe(120)
  })

  it('is undefined when absent', () => {
    expect(deltaSeconds(parseCacheControl('public'), 'max-age')).toBeUndefined()
  })

  it.each(['max-age=abc', 'max-age=-1', 'max-age=1.5', 'max-age', 'max-age=', 'max-age=6 0', 'max-age=0x10'])(
    'treats an invalid value as 0 (stale): %s',
    (header) => {
      expect(deltaSeconds(parseCacheControl(header), 'max-age')).toBe(0)
    },
  )

  it('accepts a quoted number', () => {
    expect(deltaSeconds(parseCacheControl('max-age="30"'), 'max-age')).toBe(30)
  })

  it('caps huge values at 2^31 seconds', () => {
    expect(deltaSeconds(parseCacheControl('max-age=99999999999999999999'), 'max-age')).toBe(2 ** 31)
  })
})
