import type { RedisOptions } from 'ioredis'
import { describeValue, MAX_TIMER_MS, parseDuration, type Duration } from '../model/duration.js'
import { ConfigError } from '../model/errors.js'
import { positiveInt, rejectUnknown } from '../model/options.js'
import { createClient, isClient, type RedisClient } from './redis-client.js'

export interface RedisStoreOptions {
  /**
   * Where Redis is: a URL (`redis://…`, `rediss://…`), ioredis options (Sentinel too:
   * `{ sentinels: [{ host, port }], name: 'mymaster' }`), or a client you created (`Redis`,
   * a Sentinel `Redis`, or `Cluster`). A client you pass is used as it is: Corral changes none of
   * its options, does not close it, and sends nothing while it is not connected (so its offline
   * queue never fills on our account). Corral adds one `error` and one `ready` listener to it and
   * opens one more connection with `duplicate()` for messages between instances, which it closes.
   */
  redis: string | RedisOptions | RedisClient
  /**
   * Deadline of a read, in milliseconds or as a duration. A read that takes longer is a miss.
   * Writes, invalidation steps and health checks, which no request waits on, get four times as long.
   * @default 50
   */
  timeout?: Duration
  /**
   * Failures in a row (timeouts, lost connections) after which Redis is not called at all for
   * `cooldown`; errors Redis answers with (such as OOM when full) do not count.
   * @default 5
   */
  failureThreshold?: number
  /**
   * How long the circuit stays open before one request probes Redis again.
   * @default '1s'
   */
  cooldown?: Duration
  /**
   * HMAC-SHA256 keys (strings of at least 16 characters or Buffers of at least 16 bytes). The
   * first signs new entries; all of them verify, so keys can be rotated across instances. With
   * keys set, unsigned entries and entries signed with other keys are misses. An older key that is
   * `undefined` or empty (an unset environment variable) is skipped; the first must be set.
   * @default [] (entries are not signed; they are still checked for structure)
   */
  signingKeys?: readonly (string | Buffer | undefined)[]
  /**
   * Largest encoded entry (body plus metadata) written to Redis, in bytes.
   * @default 8388608 (8 MiB)
   */
  maxEntryBytes?: number
  /**
   * Corral reads `maxmemory-policy` and `maxmemory` (`INFO memory`) on every connection and every
   * minute, and keeps entries in Redis only while Redis cannot evict them: with `noeviction`, or
   * without a `maxmemory` limit. (Evicting an index set silently undoes invalidations.) Otherwise,
   * and when INFO cannot be read, entries live in L1 only and `health()` says why. Set this to
   * `true` only if you know Redis never evicts Corral's keys but does not say so (INFO refused).
   * @default false
   */
  assumeNoEviction?: boolean
}

const OPTION_KEYS = new Set(['redis', 'timeout', 'failureThreshold', 'cooldown', 'signingKeys', 'maxEntryBytes', 'assumeNoEviction'])

/** `RedisStoreOptions` after validation, with the client to use. */
export interface ResolvedRedisOptions {
  readonly client: RedisClient
  /** Whether Corral made the client (it then closes it). */
  readonly owned: boolean
  readonly timeoutMs: number
  readonly failureThreshold: number
  readonly cooldownMs: number
  readonly maxEntryBytes: number
  readonly assumeNoEviction: boolean
  readonly signingKeys: readonly Buffer[]
}

/**
 * Validates the options, throwing a ConfigError that names the bad one (`prefix` names the tier's
 * options, `rootPrefix` `redis` and `signingKeys`), and makes the client unless one was given.
 */
export function resolveRedisOptions(options: RedisStoreOptions, prefix: string, rootPrefix: string): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError(`expected ${prefix || 'RedisStore '}options to be an object`)
  rejectUnknown(options, OPTION_KEYS, prefix)
  // Writes get four times the read deadline, and both arm timers.
  const timeoutMs = options.timeout === undefined ? 50 : parseDuration(options.timeout, `${prefix}timeout`, Math.floor(MAX_TIMER_MS / 4))
  const failureThreshold = options.failureThreshold === undefined ? 5 : positiveInt(options.failureThreshold, `${prefix}failureThreshold`)
  const cooldownMs = options.cooldown === undefined ? 1000 : parseDuration(options.cooldown, `${prefix}cooldown`, MAX_TIMER_MS)
  const maxEntryBytes = options.maxEntryBytes === undefined ? 8 * 1024 * 1024 : positiveInt(options.maxEntryBytes, `${prefix}maxEntryBytes`)
  if (options.assumeNoEviction !== undefined && typeof options.assumeNoEviction !== 'boolean') {
    throw new ConfigError(`expected ${prefix}assumeNoEviction to be true or false, got ${describeValue(options.assumeNoEviction)}`)
  }
  const keys = signingKeys(options.signingKeys, `${rootPrefix}signingKeys`)
  const r = options.redis
  let client: RedisClient
  let owned: boolean
  if (isClient(r)) {
    client = r
    owned = false
  } else if (typeof r === 'string' || (typeof r === 'object' && r !== null && !Array.isArray(r))) {
    client = createClient(r, timeoutMs, `${rootPrefix}redis`)
    owned = true
  } else {
    throw new ConfigError(`expected ${rootPrefix}redis to be a redis:// URL, ioredis options or an ioredis client, got ${describeValue(r)}`)
  }
  return { client, owned, timeoutMs, failureThreshold, cooldownMs, maxEntryBytes, assumeNoEviction: options.assumeNoEviction === true, signingKeys: keys }
}

/**
 * The keys, the signing one first. An older key that is not set (`process.env.OLD_KEY` once a
 * rotation is over) is skipped; the signing key must be there, or entries would silently go
 * unsigned.
 */
function signingKeys(v: unknown, option: string): readonly Buffer[] {
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new ConfigError(`expected ${option} to be an array of secrets (strings or Buffers), got ${describeValue(v)}`)
  const keys: Buffer[] = []
  v.forEach((k: unknown, i) => {
    if (i > 0 && (k === undefined || k === '')) return
    const b = typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.isBuffer(k) ? Buffer.from(k) : undefined
    if (b === undefined || b.length < 16) {
      const what = i === 0 && (k === undefined || k === '') ? ' (it is not set: the first key signs, and must be)' : ''
      throw new ConfigError(`expected ${option}[${i}] to be a secret of at least 16 bytes (a string or a Buffer)${what}`)
    }
    keys.push(b)
  })
  return keys
}
