import { createCache, type Cache, type CacheOptions, type CorralError } from '@corral/core'
import express5 from 'express5'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { expressFactory } from './express.js'
import { quickGet, send, type Res, type SendOptions } from './http.js'
import { startRedis, type Redis, type RedisServer } from './redis-server.js'
import { until, type AdapterFactory, type AppHandle, type RouteSpec } from './scenario.js'
import { runCleanups } from './setup.js'

/**
 * App instances that share a Redis, the way processes behind a load balancer do: each has its own
 * cache (L1) and origin counter, and only Redis connects them. Requests carry one Host header on
 * every instance (the Host is part of the key, and each app listens on its own port).
 */
export const FLEET_HOST = 'shop.test'
const EXPRESS: AdapterFactory = expressFactory('express5', express5, 5, 'route')

export interface Instance {
  readonly name: string
  readonly cache: Cache
  readonly app: AppHandle
  /** Every error the cache passed to onError (the first 10 000: a load test may cause many more). */
  readonly errors: CorralError[]
  get(path: string, options?: SendOptions): Promise<Res>
  /** A plain GET over a keep-alive connection, for bulk requests. */
  fetch(path: string): Promise<Res>
  calls(route?: string): number
}

/** Where an instance's entries are shared: `redis` (a URL, an ioredis client or Sentinel options), or a `store` built by hand. */
type Shared = Required<Pick<CacheOptions, 'redis'>> | Required<Pick<CacheOptions, 'store'>>

export interface InstanceOptions {
  /**
   * `createCache` options; `namespace` is required, and `redis` or `store`. With `redis`, generous
   * L2 deadlines by default: a busy CI machine must not turn a read into a miss, unless the test
   * is about the deadlines.
   */
  readonly cache: CacheOptions & Required<Pick<CacheOptions, 'namespace'>> & Shared
  readonly routes: readonly RouteSpec[]
  readonly factory?: AdapterFactory
}

/** Starts one instance, the one way tests do; `cleanups` closes its app and then its cache. */
export async function instance(name: string, options: InstanceOptions, cleanups: (() => Promise<void>)[]): Promise<Instance> {
  const errors: CorralError[] = []
  const onError = (e: CorralError): void => {
    if (errors.length < 10_000) errors.push(e)
  }
  const l2 = options.cache.redis === undefined ? {} : { l2: { timeout: 1000 } }
  // health() here reports the store's state: the rate and latency thresholds (judged in
  // test/redis/observe.test.ts) would turn it degraded in tests that make Redis slow on purpose.
  const health: CacheOptions['health'] = { minHitRate: 0, maxErrorRate: 1, maxL2P99: '1h' }
  const cache = createCache({ ttl: '5m', ...l2, onError, health, ...options.cache })
  cleanups.push(() => cache.close())
  const app = await (options.factory ?? EXPRESS).createApp({ cache, routes: options.routes })
  cleanups.push(() => app.close())
  return {
    name,
    cache,
    app,
    errors,
    get: (path, o) => send(app.url, path, { ...o, headers: { host: FLEET_HOST, ...o?.headers } }),
    fetch: (path) => quickGet(app.url, path, { host: FLEET_HOST }),
    calls: (route) => app.calls(route),
  }
}

/**
 * Waits until every instance reports health 'ok': connected, round trip answered, the eviction
 * policy read and safe. `within` should come from the instances' L2 deadlines plus margin.
 */
export async function healthy(instances: readonly Instance[], within: number): Promise<void> {
  await until(async () => (await Promise.all(instances.map((i) => i.cache.health()))).every((h) => h.status === 'ok'), within, 'every instance healthy on Redis')
}

/** The `x-cache` header of a response. */
export const xcache = (res: Res): string | undefined => res.headers['x-cache'] as string | undefined

/** A test file's own redis-server, a client to it, and the cleanups each test registers. */
export interface FileRedis {
  readonly server: RedisServer
  /** For planting and inspecting keys. */
  readonly raw: Redis
  /** Run (in reverse) after each test: apps, caches, extra servers. */
  readonly cleanups: (() => Promise<void>)[]
}

/**
 * Starts a private redis-server before the file's tests and stops it after them, and runs each
 * test's cleanups after it. Read `server` and `raw` inside tests (they exist from `beforeAll` on).
 */
export function fileRedis(): FileRedis {
  let server: RedisServer | undefined
  let raw: Redis | undefined
  const cleanups: (() => Promise<void>)[] = []
  beforeAll(async () => {
    server = await startRedis()
    raw = server.client()
  })
  afterEach(() => runCleanups(cleanups))
  afterAll(async () => {
    await runCleanups(cleanups)
    await server?.stop()
  })
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('fileRedis: the server starts in beforeAll; use it inside tests')
    return v
  }
  return {
    get server() {
      return started(server)
    },
    get raw() {
      return started(raw)
    },
    cleanups,
  }
}
