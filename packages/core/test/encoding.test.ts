import { describe, expect, it } from 'vitest'
import { normalizeAcceptEncoding, preferredCoding } from '../src/model/encoding.js'

const PREFS = ['gzip', 'br', 'deflate'] as const

describe('preferredCoding: one coding per request, as Varnish narrows Accept-Encoding', () => {
  it.each([
    ['gzip', 'gzip'],
    ['GZIP', 'gzip'],
    ['gzip, deflate, br', 'gzip'],
    ['br, gzip;q=0.5', 'gzip'],
    ['br', 'br'],
    ['deflate', 'deflate'],
    ['zstd, br', 'br'],
    ['identity', 'identity'],
    ['x-custom', 'identity'],
    ['gzip;q=0, br', 'br'],
    ['gzip;q=0.000, identity', 'identity'],
    ['*', 'gzip'],
    ['*;q=0.1, gzip;q=0', 'br'],
    ['gzip;q=0, gzip;q=1', 'gzip'],
    ['  gzip  ;  q = 0.8 ,  ', 'gzip'],
    ['gzip;q=banana', 'identity'],
    ['', 'identity'],
  ])('%j → %s', (value, coding) => {
    expect(preferredCoding(value, PREFS)).toBe(coding)
  })

  it('a missing field is identity; a client that refuses every coding and identity keeps its field', () => {
    expect(preferredCoding(undefined, PREFS)).toBe('identity')
    expect(preferredCoding('identity;q=0', PREFS)).toBeNull()
    expect(preferredCoding('*;q=0', PREFS)).toBeNull()
    expect(preferredCoding('x-custom, *;q=0', PREFS)).toBeNull()
  })

  it('follows the order of the preferences, not of the client', () => {
    expect(preferredCoding('gzip, br', ['br', 'gzip'])).toBe('br')
    expect(preferredCoding('gzip, br', ['gzip', 'br'])).toBe('gzip')
  })

  it('stays bounded: 10,000 distinct values, and values of 14 KB, are answered right', () => {
    for (let i = 0; i < 10_000; i++) expect(preferredCoding(`x-${i}, br`, PREFS)).toBe('br')
    expect(preferredCoding(`${'x-long, '.repeat(2000)}deflate`, PREFS)).toBe('deflate')
  })

  it('rewrites the live header object in place, lists of field lines included', () => {
    const headers: Record<string, string | string[] | undefined> = { 'accept-encoding': 'br;q=0.9, gzip;q=0.8' }
    normalizeAcceptEncoding(headers, PREFS)
    expect(headers['accept-encoding']).toBe('gzip')
    const none: Record<string, string | undefined> = {}
    normalizeAcceptEncoding(none, PREFS)
    expect(none['accept-encoding']).toBe('identity')
    const refusing = { 'accept-encoding': 'identity;q=0' }
    normalizeAcceptEncoding(refusing, PREFS)
    expect(refusing['accept-encoding']).toBe('identity;q=0')
  })
})
