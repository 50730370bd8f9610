import { describe, expect, it } from 'vitest'
import { BodyCapture } from '../src/adapter/capture.js'

describe('BodyCapture', () => {
  it('collects buffers, strings and typed arrays in order', () => {
    const c = new BodyCapture(100)
    expect(c.push(Buffer.from('ab'))).toBe(true)
    expect(c.push('cd')).toBe(true)
    expect(c.push('6566', 'hex')).toBe(true)
    expect(c.push(new Uint8Array([0x67, 0x68]))).toBe(true)
    expect(c.body()?.toString()).toBe('abcdefgh')
    expect(c.overLimit).toBe(false)
  })

  it('keeps a body exactly at the limit', () => {
    const c = new BodyCapture(4)
    expect(c.push('ab')).toBe(true)
    expect(c.push('cd')).toBe(true)
    expect(c.body()?.toString()).toBe('abcd')
  })

  it('drops everything once past the limit, and stays over', () => {
    const c = new BodyCapture(4)
    expect(c.push('abc')).toBe(true)
    expect(c.push('de')).toBe(false)
    expect(c.overLimit).toBe(true)
    expect(c.body()).toBeUndefined()
    expect(c.push('')).toBe(false)
    expect(c.push(null)).toBe(false)
    expect(c.body()).toBeUndefined()
  })

  it('counts bytes, not characters', () => {
    const c = new BodyCapture(3)
    expect(c.push('éé')).toBe(false)
  })

  it('copies chunks, so a caller reusing its buffer does not change the body', () => {
    const c = new BodyCapture(10)
    const buf = Buffer.from('abc')
    c.push(buf)
    buf.write('xyz')
    const arr = new Uint8Array([0x64])
    c.push(arr)
    arr[0] = 0x7a
    expect(c.body()?.toString()).toBe('abcd')
  })

  it('honours the byte window of a typed array view', () => {
    const backing = new Uint8Array([0x61, 0x62, 0x63, 0x64])
    const c = new BodyCapture(10)
    c.push(backing.subarray(1, 3))
    expect(c.body()?.toString()).toBe('bc')
  })

  it('ignores null and undefined chunks and returns an empty body', () => {
    const c = new BodyCapture(10)
    expect(c.push(null)).toBe(true)
    expect(c.push(undefined)).toBe(true)
    expect(c.body()?.length).toBe(0)
  })

  it('gives up on chunks it cannot read', () => {
    const c = new BodyCapture(10)
    c.push('a')
    expect(c.push({ not: 'a chunk' })).toBe(false)
    expect(c.overLimit).toBe(true)
    expect(c.body()).toBeUndefined()
  })
})
