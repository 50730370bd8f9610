import { describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { storableHeaders } from '../src/model/entry.js'
import { CACHEABLE, expectFill, expectHit, store, view } from './helpers.js'

describe('stored headers', () => {
  it('drop hop-by-hop fields, fields named in Connection and the cache status header', async () => {
    const cache = createCache()
    await store(cache, view('/p'), {
      headers: {
        ...CACHEABLE,
        connection: 'keep-alive, X-Hop, x-other',
        'keep-alive': 'timeout=5',
        'x-hop': 'secret',
        'x-other': '1',
        'transfer-encoding': 'chunked',
        'proxy-connection': 'keep-alive',
        'proxy-authenticate': 'Basic',
        'proxy-authorization': 'Basic x',
        te: 'trailers',
        trailer: 'x-checksum',
        upgrade: 'h2c',
        'content-length': '3',
        'x-cache': 'MISS',
        'x-kept': 'yes',
        etag: '"1"',
      },
      body: 'abc',
    })
    const hit = await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    expect(Object.keys(hit.headers).sort()).toEqual(['cache-control', 'content-length', 'content-type', 'etag', 'x-kept'])
    expect(hit.headers['content-length']).toBe('3')
  })

  it('drop fields named by a Connection header given as a list', () => {
    const out = storableHeaders({ connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2', 'x-c': '3' }, new Set())
    expect(Object.keys(out)).toEqual(['x-c'])
  })

  it('are lower-cased and keep repeated values as lists', () => {
    const out = storableHeaders({ 'X-Multi': ['a', 'b'], 'X-Num': 5 }, new Set())
    expect(out).toEqual({ 'x-multi': ['a', 'b'], 'x-num': '5' })
  })

  it('never include Set-Cookie', async () => {
    expect(storableHeaders({ 'set-cookie': ['a=1'], 'x-a': '1' }, new Set())).toEqual({ 'x-a': '1' })
    const cache = createCache()
    const fill = await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    expect(fill.begin(200, { ...CACHEABLE, 'set-cookie': ['sid=1; HttpOnly'] }).capture).toBe(false)
    fill.end(Buffer.from('x'))
    await expectFill(cache.handle(view('/p'), cache.defaults, undefined))
    expect(cache.stats().notStored['set-cookie']).toBe(1)
  })

  it('honour a custom cache status header and tag headers', async () => {
    const cache = createCache({ cacheStatusHeader: 'Cache-Status', tagHeaders: ['x-tags'] })
    await store(cache, view('/p'), {
      headers: { ...CACHEABLE, 'cache-status': 'corral; fwd=miss', 'x-tags': 't1 t2', 'x-cache': 'kept' },
    })
    const hit = await expectHit(cache.handle(view('/p'), cache.defaults, undefined))
    expect(hit.headers['cache-status']).toBeUndefined()
    expect(hit.headers['x-tags']).toBeUndefined()
    expect(hit.headers['x-cache']).toBe('kept')
    expect(await cache.invalidate({ tags: ['t2'] })).toBe(1)
  })
})
