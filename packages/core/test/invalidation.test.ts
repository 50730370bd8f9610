import { describe, expect, it } from 'vitest'
import { ALL, chunkSelectors, mergeSelectors, normalizeSelectors, selectorsFromJson, selectorsToJson } from '../src/model/invalidation.js'

describe('soft purge selectors', () => {
  it('accepts soft: true or false, and nothing else', () => {
    expect(normalizeSelectors({ tags: ['t'], soft: true }).soft).toBe(true)
    expect(normalizeSelectors({ tags: ['t'], soft: false }).soft).toBeUndefined()
    expect(() => normalizeSelectors({ tags: ['t'], soft: 'yes' } as never)).toThrow(/soft/)
  })

  it('carries soft through JSON (messages and the invalidation log) and through chunks', () => {
    const sel = normalizeSelectors({ keys: ['/a', '/b?x=1'], tags: ['t'], soft: true })
    const back = selectorsFromJson(selectorsToJson(sel))
    expect(back).toEqual(sel)
    expect(selectorsFromJson(selectorsToJson(normalizeSelectors({ tags: ['t'] })))?.soft).toBeUndefined()
    expect(selectorsFromJson('{"soft":"yes","paths":[],"urls":[],"tags":[],"prefixes":[]}')).toBeUndefined()
    const pieces = chunkSelectors(normalizeSelectors({ tags: Array.from({ length: 50 }, (_, i) => `tag-${i}`), soft: true }), 100)
    expect(pieces.length).toBeGreaterThan(1)
    expect(pieces.every((p) => p.soft === true)).toBe(true)
  })

  it('merges to a soft purge only when every part is one: a removal is never weakened', () => {
    const soft = normalizeSelectors({ tags: ['a'], soft: true })
    const hard = normalizeSelectors({ tags: ['b'] })
    expect(mergeSelectors([soft, normalizeSelectors({ tags: ['c'], soft: true })], 100).soft).toBe(true)
    expect(mergeSelectors([soft, hard], 100).soft).toBeUndefined()
    expect(mergeSelectors([soft, hard], 1)).toBe(ALL)
  })
})
