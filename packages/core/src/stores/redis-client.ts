import { createRequire } from 'node:module'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { ConfigError } from '../model/errors.js'

type IORedis = typeof import('ioredis')
let ioredis: IORedis | undefined

/**
 * ioredis, loaded the first time a cache asks for Redis: it is an optional peer dependency, so an
 * app that only uses the in-memory L1 neither installs nor loads it.
 */
function loadIoredis(option: string): IORedis {
  if (ioredis !== undefined) return ioredis
  try {
    ioredis = createRequire(import.meta.url)('ioredis') as IORedis
  } catch (err) {
    throw new ConfigError(
      `${option} needs the ioredis package, an optional peer dependency of @corral/core: install it (npm install ioredis) (${(err as Error).message})`,
    )
  }
  return ioredis
}

/** A client Corral can use: an ioredis `Redis` (standalone or Sentinel) or `Cluster`. */
export type RedisClient = Redis | Cluster

/**
 * A client that fails fast: no offline queue (a command while disconnected fails at once), no
 * per-request retries, a command timeout, and reconnection with capped backoff in the background.
 * With Sentinel options (`sentinels`, `name`) it follows the primary through a failover: it
 * listens for the sentinels' switch-master announcement (`failoverDetector`), so it does not go on
 * writing to a demoted primary whose writes will be lost when it resyncs, and a connection that
 * gets `READONLY` replies reconnects, which asks the sentinels again. Options the user passes win.
 */
export function createClient(r: string | RedisOptions, timeoutMs: number, option: string): Redis {
  const defaults: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs * 4,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    sentinelRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
  }
  if (typeof r === 'string') {
    if (!/^rediss?:\/\//.test(r)) throw new ConfigError(`expected ${option} to be a redis:// or rediss:// URL, got '${r}'`)
    return new (loadIoredis(option).Redis)(r, defaults)
  }
  const { Redis } = loadIoredis(option)
  if ('sentinels' in r && r.sentinels !== undefined) {
    if (!Array.isArray(r.sentinels) || r.sentinels.length === 0) {
      throw new ConfigError(`expected ${option}.sentinels to be a non-empty array of { host, port }`)
    }
    if (typeof r.name !== 'string' || r.name.length === 0) {
      throw new ConfigError(`expected ${option}.name to be the name of the primary the sentinels monitor`)
    }
    return new Redis({ ...defaults, failoverDetector: true, ...r })
  }
  return new Redis({ ...defaults, ...r })
}

/**
 * Whether `v` is a client the user made. Recognised by its shape, so that a client of any copy of
 * ioredis is (an app's own dependency would fail `instanceof` with Corral's).
 */
export function isClient(v: unknown): v is RedisClient {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { pipeline?: unknown }).pipeline === 'function' &&
    typeof (v as { getBuffer?: unknown }).getBuffer === 'function' &&
    typeof (v as { status?: unknown }).status === 'string'
  )
}

export function isCluster(c: RedisClient): c is Cluster {
  return (c as { isCluster?: boolean }).isCluster === true
}

/** Redis answered with an error (OOM, WRONGTYPE, READONLY, ...): it is there. */
export function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}
