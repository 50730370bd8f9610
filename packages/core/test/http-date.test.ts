import { describe, expect, it } from 'vitest'
import { parseHttpDate } from '../src/model/http-date.js'

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37)

describe('parseHttpDate (RFC 9110 §5.6.7)', () => {
  it('reads the three forms a recipient must accept', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(NOV_6_1994)
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(2026, 0, 1))).toBe(NOV_6_1994)
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(NOV_6_1994)
    expect(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT ')).toBe(NOV_6_1994)
  })

  it('reads a two-digit year as the most recent past year with those digits when it would be over 50 years ahead', () => {
    const now = Date.UTC(2026, 5, 1)
    expect(new Date(parseHttpDate('Friday, 01-Jan-76 00:00:00 GMT', now)).getUTCFullYear()).toBe(2076)
    expect(new Date(parseHttpDate('Thursday, 01-Jan-77 00:00:00 GMT', now)).getUTCFullYear()).toBe(1977)
  })

  it.each([
    '',
    '0',
    '-1',
    '1994-11-06T08:49:37Z',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 AEST',
    'Sun, 06 Nov 1994 08:49:37',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'sun, 06 nov 1994 08:49:37 gmt',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sun, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 25:49:37 GMT',
    'Sun, 06 Foo 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT',
  ])('refuses %j', (text) => {
    expect(parseHttpDate(text)).toBeNaN()
  })
})
