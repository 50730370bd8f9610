import { describe, expect, it } from 'vitest'
import { TagLog } from '../src/fill/tag-log.js'

describe('TagLog', () => {
  it('tells a fill whether one of its tags was invalidated after it began', () => {
    const log = new TagLog(100)
    log.add(new Set(['before']))
    const since = log.head
    log.add(new Set(['a', 'b']))
    log.add(new Set())
    expect(log.touched(since, ['b'])).toBe(true)
    expect(log.touched(since, ['before', 'c'])).toBe(false)
    expect(log.touched(since, [])).toBe(false)
    expect(log.touched(log.head, ['a'])).toBe(false)
  })

  it('keeps at most maxNames names, and then answers true for fills older than what it kept', () => {
    const log = new TagLog(10)
    const old = log.head
    for (let i = 0; i < 5_000; i++) log.add(new Set([`t${i}`]))
    const recent = log.head - 3
    expect(log.touched(old, ['nothing-like-it'])).toBe(true)
    expect(log.touched(recent, ['t4998'])).toBe(true)
    expect(log.touched(recent, ['t4990'])).toBe(false)
  })

  it('forgets a single invalidation bigger than the whole log only by answering true', () => {
    const log = new TagLog(10)
    const since = log.head
    log.add(new Set(Array.from({ length: 11 }, (_, i) => `x${i}`)))
    expect(log.touched(since, ['unrelated'])).toBe(true)
    expect(log.touched(log.head, ['unrelated'])).toBe(false)
  })

  it('starts over when cleared', () => {
    const log = new TagLog(10)
    log.add(new Set(['a']))
    log.clear()
    const since = log.head
    expect(log.touched(since, ['a'])).toBe(false)
    log.add(new Set(['a']))
    expect(log.touched(since, ['a'])).toBe(true)
  })
})
