import { describe, expectTypeOf, it } from 'vitest'
import { CallbackError, ConfigError, CorralError, createCache, errors, StoreError, type Cache, type CacheOptions, type CacheStats, type Duration, type KeyMaterial, type RouteOptions } from '../src/index.js'
import type { Decision } from '../src/cache.js'
import type { StoredHeaders } from '../src/model/entry.js'
import type { Fill, HeadDecision } from '../src/fill/fill.js'
import type { RequestView } from '../src/model/key.js'
import type { ResolvedRoute } from '../src/model/options.js'

describe('createCache options', () => {
  it('accepts durations as strings and numbers', () => {
    expectTypeOf(createCache({ ttl: '5m' })).toEqualTypeOf<Cache>()
    createCache({ ttl: 300_000, lockTimeout: '500ms' })
    createCache({ ttl: '30s' })
    createCache({ ttl: '1h' })
    createCache({ ttl: '1d' })
    createCache()
    expectTypeOf<'5m'>().toExtend<Duration>()
    expectTypeOf<300000>().toExtend<Duration>()
    expectTypeOf<'five minutes'>().not.toExtend<Duration>()
  })

  it('rejects durations that are not one', () => {
    // @ts-expect-error not a duration
    createCache({ ttl: 'five minutes' })
    // @ts-expect-error a unit is required
    createCache({ ttl: '5' })
    // @ts-expect-error unknown unit
    createCache({ lockTimeout: '5min' })
  })

  it('rejects unknown and route-only options', () => {
    // @ts-expect-error typo
    createCache({ tll: '5m' })
    // @ts-expect-error tags need a request, so they are route options only
    createCache({ tags: ['a'] })
    // @ts-expect-error only GET and HEAD are cacheable
    createCache({ methods: ['POST'] })
    // @ts-expect-error
    createCache({ cookies: 'yes' })
  })

  it('takes a clock and an error handler', () => {
    expectTypeOf<NonNullable<CacheOptions['now']>>().toEqualTypeOf<() => number>()
    expectTypeOf<NonNullable<CacheOptions['onError']>>().parameter(0).toEqualTypeOf<CorralError>()
  })
})

describe('RouteOptions<Req>', () => {
  interface MyReq {
    params: { id: string }
    tenant: string
  }

  it('passes Req to every callback', () => {
    expectTypeOf<NonNullable<RouteOptions<MyReq>['key']>>().parameter(0).toEqualTypeOf<MyReq>()
    expectTypeOf<NonNullable<RouteOptions<MyReq>['bypass']>>().parameter(0).toEqualTypeOf<MyReq>()
    expectTypeOf<NonNullable<RouteOptions<MyReq>['key']>>().returns.toEqualTypeOf<KeyMaterial>()
    expectTypeOf<NonNullable<RouteOptions<MyReq>['bypass']>>().returns.toEqualTypeOf<boolean>()
    const options: RouteOptions<MyReq> = {
      ttl: '10m',
      key: (req) => {
        expectTypeOf(req).toEqualTypeOf<MyReq>()
        return [req.tenant]
      },
      tags: (req) => [`product:${req.params.id}`],
      bypass: (req) => req.tenant === 'admin',
      query: { exclude: ['utm_*'] },
    }
    const cache = createCache()
    expectTypeOf(cache.route(options, 'route.')).toEqualTypeOf<ResolvedRoute<MyReq>>()
  })

  it('rejects callbacks that do not fit', () => {
    const bad: RouteOptions<MyReq> = {
      // @ts-expect-error MyReq has no `user`
      key: (req) => req.user,
    }
    const badTags: RouteOptions<MyReq> = {
      // @ts-expect-error tags are strings
      tags: () => [1],
    }
    const badKey: RouteOptions<MyReq> = {
      // @ts-expect-error functions are not key material
      key: () => () => 1,
    }
    void bad
    void badTags
    void badKey
  })

  it('takes query rules', () => {
    const rules: RouteOptions['query'][] = [false, { include: ['page'] }, { exclude: ['utm_*'] }]
    void rules
    // @ts-expect-error true is not a rule
    const r: RouteOptions['query'] = true
    void r
  })
})

describe('Decision', () => {
  it('narrows by type', () => {
    const cache = createCache()
    const view: RequestView = { method: 'GET', url: '/', headers: {} }
    const d = cache.handle(view, cache.defaults, undefined)
    expectTypeOf(d).toEqualTypeOf<Decision | Promise<Decision>>()
    const decide = (x: Decision) => {
      switch (x.type) {
        case 'hit':
          expectTypeOf(x.status).toEqualTypeOf<number>()
          expectTypeOf(x.body).toEqualTypeOf<Buffer>()
          expectTypeOf(x.age).toEqualTypeOf<string>()
          expectTypeOf(x.headers).toEqualTypeOf<StoredHeaders>()
          break
        case 'miss':
          expectTypeOf(x.fill).toEqualTypeOf<Fill | null>()
          // @ts-expect-error a miss has no body
          void x.body
          break
        case 'bypass':
          expectTypeOf(x.reason).toEqualTypeOf<'method' | 'authorization' | 'cookie' | 'body' | 'route' | 'error'>()
          break
        default:
          expectTypeOf(x).toBeNever()
      }
    }
    void decide
  })

  it('has a fill with begin and end', () => {
    expectTypeOf<Fill['begin']>().returns.toEqualTypeOf<HeadDecision>()
    expectTypeOf<Fill['end']>().parameter(0).toEqualTypeOf<Buffer>()
  })
})

describe('CacheStats', () => {
  it('has numeric counters', () => {
    expectTypeOf(createCache().stats()).toEqualTypeOf<CacheStats>()
    expectTypeOf<CacheStats['hits']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['misses']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['coalesced']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['stored']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['bypassed']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['invalidated']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['errors']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['entries']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['bytes']>().toEqualTypeOf<number>()
    expectTypeOf<CacheStats['inFlight']>().toEqualTypeOf<number>()
    expectTypeOf<NonNullable<CacheStats['notStored']['stale']>>().toEqualTypeOf<number>()
  })
})

describe('errors', () => {
  it('carry a string code and extend CorralError and Error', () => {
    expectTypeOf<CorralError['code']>().toEqualTypeOf<string>()
    expectTypeOf<ConfigError>().toExtend<CorralError>()
    expectTypeOf<StoreError>().toExtend<CorralError>()
    expectTypeOf<CallbackError>().toExtend<CorralError>()
    expectTypeOf<CorralError>().toExtend<Error>()
    expectTypeOf<ConfigError['code']>().toEqualTypeOf<string>()
    expectTypeOf(errors.ConfigError).toEqualTypeOf<typeof ConfigError>()
    expectTypeOf(errors.StoreError).toEqualTypeOf<typeof StoreError>()
  })

  it('invalidate resolves to a count', () => {
    expectTypeOf(createCache().invalidate({ keys: ['/p'], tags: ['t'], prefixes: ['/a'] })).toEqualTypeOf<Promise<number>>()
    // @ts-expect-error unknown selector
    void createCache().invalidate({ paths: ['/'] })
  })
})
