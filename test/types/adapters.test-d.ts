// Type tests for the adapters' public API: what users write in the README must compile, and
// what is wrong must not.
import { createCache, type CacheStats, type InvalidateSelectors } from '@corral/core'
import { corral, invalidate, type CorralExpressOptions } from '@corral/express'
import corralPlugin, { type CorralFastifyOptions } from '@corral/fastify'
import type { Request, RequestHandler } from 'express'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'

const cache = createCache({ ttl: '5m' })

describe('@corral/express types', () => {
  it('corral() returns an Express handler and route callbacks get the Express request', () => {
    expectTypeOf(corral(cache)).toEqualTypeOf<RequestHandler>()
    corral(cache, {
      ttl: '10m',
      tags: (req) => {
        expectTypeOf(req).toEqualTypeOf<Request>()
        return [`product:${req.params.id}`]
      },
      key: (req) => req.headers['x-tenant'] ?? null,
      query: { exclude: ['utm_*'] },
      bypass: (req) => req.query.preview !== undefined,
      cookies: 'ignore',
    })
    expectTypeOf<CorralExpressOptions['statuses']>().toEqualTypeOf<readonly number[] | undefined>()
  })

  it('rejects wrong option types', () => {
    // @ts-expect-error a duration needs a unit
    corral(cache, { ttl: '10 minutes' })
    // @ts-expect-error POST is never cacheable
    corral(cache, { methods: ['POST'] })
    // @ts-expect-error cookies is 'bypass' or 'ignore'
    corral(cache, { cookies: true })
    // @ts-expect-error tags must be strings
    corral(cache, { tags: () => [42] })
    // @ts-expect-error the cache comes first
    corral({ ttl: '5m' })
  })

  it('invalidate() takes selectors or a function of the request', () => {
    expectTypeOf(invalidate(cache, { tags: ['a'] })).toEqualTypeOf<RequestHandler>()
    invalidate(cache, (req) => ({ keys: [req.path], tags: [`product:${req.params.id}`], prefixes: ['/products/'] }))
    // @ts-expect-error selectors have keys, tags and prefixes only
    invalidate(cache, { tag: ['a'] })
  })
})

describe('@corral/fastify types', () => {
  it('registers with a cache and route defaults', () => {
    expectTypeOf<CorralFastifyOptions['cache']>().toEqualTypeOf<typeof cache>()
    const opts: CorralFastifyOptions = { cache, ttl: '1m', query: false }
    void opts
    // @ts-expect-error the cache is required
    const missing: CorralFastifyOptions = { ttl: '1m' }
    void missing
    void corralPlugin
  })

  it('augments route config and the instance', () => {
    type Config = NonNullable<Parameters<FastifyInstance['get']>[1]> extends infer O
      ? O extends { config?: infer C }
        ? C
        : never
      : never
    expectTypeOf<{ cache: { ttl: '10m' } }>().toMatchTypeOf<Config>()
    expectTypeOf<{ cache: false }>().toMatchTypeOf<Config>()
    expectTypeOf<FastifyInstance['corral']['invalidate']>().toEqualTypeOf<(selectors: InvalidateSelectors) => Promise<number>>()
    expectTypeOf<FastifyInstance['corral']['cache']>().toEqualTypeOf<typeof cache>()
    const tags = (req: FastifyRequest) => [`product:${(req.params as { id: string }).id}`]
    expectTypeOf<{ cache: { tags: typeof tags } }>().toMatchTypeOf<Config>()
  })
})

describe('@corral/core types', () => {
  it('stats are numbers and invalidate resolves to a count', () => {
    expectTypeOf(cache.stats().hits).toBeNumber()
    expectTypeOf<CacheStats['notStored']>().toMatchTypeOf<Record<string, number | undefined>>()
    expectTypeOf(cache.invalidate({ keys: ['/products/42'] })).resolves.toBeNumber()
    expectTypeOf(cache.close()).resolves.toBeVoid()
  })
})
