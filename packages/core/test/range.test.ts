import { describe, expect, it } from 'vitest'
import { byteRange, ifRangeMatches } from '../src/model/range.js'

describe('byteRange', () => {
  it.each<[string, number, ReturnType<typeof byteRange>]>([
    ['bytes=0-1', 11, { kind: 'partial', start: 0, end: 1 }],
    ['bytes=1-', 11, { kind: 'partial', start: 1, end: 10 }],
    ['bytes=-1', 11, { kind: 'partial', start: 10, end: 10 }],
    ['bytes=-50', 11, { kind: 'partial', start: 0, end: 10 }],
    ['bytes=5-500', 11, { kind: 'partial', start: 5, end: 10 }],
    ['BYTES = 2 - 3', 11, { kind: 'partial', start: 2, end: 3 }],
    ['bytes=10-10', 11, { kind: 'partial', start: 10, end: 10 }],
  ])('%s of %i bytes is one range', (range, length, answer) => {
    expect(byteRange(range, length)).toEqual(answer)
  })

  it.each<[string, number]>([
    ['bytes=11-', 11],
    ['bytes=11-20', 11],
    ['bytes=-0', 11],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
  ])('%s of %i bytes is unsatisfiable (416)', (range, length) => {
    expect(byteRange(range, length)).toEqual({ kind: 'unsatisfiable' })
  })

  it.each([
    'bytes=0-1,3-4', // several ranges: a multipart answer is not built; the whole body is
    'bytes=3-1', // last before first: invalid
    'items=0-1', // another unit
    'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=1.5-2', 'bytes=+1-2', '0-1', '',
  ])('ignores %j: the whole body', (range) => {
    expect(byteRange(range, 11)).toEqual({ kind: 'full' })
  })

  it('reads huge positions without overflow', () => {
    expect(byteRange('bytes=99999999999999999999999-', 11)).toEqual({ kind: 'unsatisfiable' })
    expect(byteRange('bytes=0-99999999999999999999999', 11)).toEqual({ kind: 'partial', start: 0, end: 10 })
  })
})

describe('ifRangeMatches', () => {
  const lm = 'Wed, 01 Jan 2025 00:00:00 GMT'

  it('is true without If-Range', () => {
    expect(ifRangeMatches({}, undefined, undefined)).toBe(true)
  })

  it('matches a strong entity-tag only strongly', () => {
    expect(ifRangeMatches({ 'if-range': '"v1"' }, '"v1"', lm)).toBe(true)
    expect(ifRangeMatches({ 'if-range': '"v0"' }, '"v1"', lm)).toBe(false)
    expect(ifRangeMatches({ 'if-range': 'W/"v1"' }, 'W/"v1"', lm)).toBe(false)
    expect(ifRangeMatches({ 'if-range': '"v1"' }, 'W/"v1"', lm)).toBe(false)
    expect(ifRangeMatches({ 'if-range': '"v1"' }, undefined, lm)).toBe(false)
  })

  it('matches a date only when it is the Last-Modified date', () => {
    expect(ifRangeMatches({ 'if-range': lm }, undefined, lm)).toBe(true)
    expect(ifRangeMatches({ 'if-range': 'Thu, 02 Jan 2025 00:00:00 GMT' }, undefined, lm)).toBe(false)
    expect(ifRangeMatches({ 'if-range': lm }, '"v1"', undefined)).toBe(false)
    expect(ifRangeMatches({ 'if-range': 'yesterday' }, undefined, lm)).toBe(false)
  })
})
