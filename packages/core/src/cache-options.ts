import { describeValue, MAX_TIMER_MS, parseDuration, type Duration } from './model/duration.js'
import { ConfigError, type CorralError } from './model/errors.js'
import { DEFAULT_ROUTE_KEYS, positiveInt, rejectUnknown, resolveRoute, type DefaultRouteOptions, type ResolvedRoute } from './model/options.js'
import { MemoryStore } from './stores/memory.js'
import { RedisStore, type RedisStoreOptions } from './stores/redis.js'
import { TieredStore, type TieredStoreOptions } from './stores/tiered.js'
import type { CacheStore } from './stores/types.js'
import { OPERATIONS, type CachePlugin, type CorralLogger } from './observe/events.js'
import { resolveHealthOptions, type HealthOptions, type ResolvedHealthOptions } from './observe/health.js'

/** Options of the Redis tier (`createCache({ redis, l2 })`). */
export interface L2Options extends Omit<RedisStoreOptions, 'redis' | 'signingKeys'>, TieredStoreOptions {}

/** Options of `createCache`. Route defaults given here apply to every route. */
export interface CacheOptions extends DefaultRouteOptions {
  /**
   * Everything Corral keeps in this process: entries with their indexes (15/16 of it), the memo of
   * recent keys and the hit-for-pass table (1/32 each). Ignored when `store` is given (the memo and
   * the table then get 2 MiB each).
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
  /**
   * Largest single entry kept in L1, in bytes. Ignored when `store` is given.
   * @default maxBytes / 16
   */
  maxEntryBytes?: number
  /**
   * Where entries live. Defaults to an in-process `MemoryStore` sized by `maxBytes`.
   * @default new MemoryStore({ maxBytes, maxEntryBytes })
   */
  store?: CacheStore
  /**
   * Turns on the shared L2 tier: a `redis://` URL, ioredis options (Sentinel too), or your own
   * ioredis `Redis` or `Cluster` client (used as it is; see the core README for what Corral does
   * with it). Entries are then kept in L1 (sized by `maxBytes`) and in Redis.
   * @default undefined (L1 only)
   */
  redis?: RedisStoreOptions['redis']
  /**
   * Tuning of the Redis tier: `timeout` (deadline of a read, default 50 ms), `failureThreshold`
   * (default 5) and `cooldown` (default '1s') of the circuit breaker, `maxEntryBytes` (default
   * 8 MiB), `l1Ttl` (default '10s') and `assumeNoEviction` (default false). Only with `redis`.
   * @default {}
   */
  l2?: L2Options
  /**
   * HMAC keys that sign entries in Redis: the first signs, all verify (rotate by putting the new
   * key first, then removing the old one once every instance has it). An older key that is unset
   * (`undefined` or empty) is skipped; the first must be set. Only with `redis`.
   * @default [] (entries are not signed)
   */
  signingKeys?: readonly (string | Buffer | undefined)[]
  /**
   * Prefix of every key, so that several caches can share a store.
   * @default 'corral'
   */
  namespace?: string
  /**
   * Name of the response header that says what the cache did (HIT, STALE, MISS, BYPASS); `false`
   * sends none (`Cache-Status` says it too).
   * @default 'x-cache'
   */
  cacheStatusHeader?: string | false
  /**
   * This cache's name in the `Cache-Status` response header (RFC 9211), which every response
   * through the middleware gets a member of, after any the response already has: `hit` with `ttl`
   * (negative when stale), or `fwd` (`uri-miss`, `vary-miss`, `stale`, `bypass`) with `fwd-status`,
   * `collapsed`, `stored` or `detail` (why not stored, or why bypassed). A token: letters, digits
   * and `!#$%&'*+-.^_\`|~:/`, not starting with a digit. `false` sends none.
   * @default 'Corral'
   */
  cacheStatus?: string | false
  /**
   * Response headers read as tags and removed before the response reaches the client. Headers
   * with a meaning in HTTP (`Set-Cookie`, `Content-*`, `Cache-Control`, `Vary`, ...) are refused.
   * @default ['cache-tag', 'surrogate-key']
   */
  tagHeaders?: readonly string[]
  /**
   * Most tags one entry may carry (route tags and tag headers together); a response with more is
   * not stored (`notStored['too-many-tags']`). At most 1024.
   * @default 256
   */
  maxTags?: number
  /**
   * Longest tag, in characters; a response with a longer one is not stored
   * (`notStored['tag-too-long']`).
   * @default 256
   */
  maxTagLength?: number
  /**
   * Longest time a request waits for another request's origin call on the same key. When that
   * call takes longer, exactly one waiter takes over and calls the origin; the others wait for it.
   * A request waits for at most two such calls (2 × lockTimeout) before it calls the origin itself.
   * @default '5s'
   */
  lockTimeout?: Duration
  /**
   * Clock in milliseconds, for tests.
   * @default Date.now
   */
  now?: () => number
  /**
   * Random numbers in [0, 1), for tests of early refresh (`earlyRefresh`).
   * @default Math.random
   */
  random?: () => number
  /**
   * Called with every error the cache swallows (a store failure, a route callback that threw, a
   * bug in Corral). Requests never fail because of the cache.
   * @default logs a warning, at most once every 10 seconds
   */
  onError?: (error: CorralError) => void
  /**
   * Plugins: hooks called before and after each operation (lookup, fill, store, L2 read and write,
   * invalidate, revalidate) with its key, route, outcome and timing. See `CachePlugin`.
   * @default []
   */
  plugins?: readonly CachePlugin[]
  /**
   * A pino-compatible logger (pino, Fastify's `app.log`, or anything with `warn(obj, msg)` and
   * `error(obj, msg)`): every error the cache swallows is logged to it (`error` for a bug in
   * Corral, `warn` for the rest), besides `onError`, and slow operations (`slowMs`). The Fastify
   * plugin gives a cache without one the app's logger.
   * @default none: errors go to `onError`
   */
  logger?: CorralLogger
  /**
   * Operations (fills, store writes, L2 reads and writes, invalidations, refreshes) that take longer
   * than this are logged at `warn` with their key, route and timing. Needs a `logger`. `false`: off.
   * @default false
   */
  slowMs?: Duration | false
  /** When `cache.health()` reports `degraded`; see `HealthOptions`. */
  health?: HealthOptions
}

/** Options after validation. */
export interface ResolvedCacheOptions {
  readonly defaults: ResolvedRoute
  readonly namespace: string
  /** Undefined when none is sent. */
  readonly cacheStatusHeader: string | undefined
  /** The name in Cache-Status, or undefined when none is sent. */
  readonly cacheStatus: string | undefined
  readonly tagHeaders: readonly string[]
  readonly maxTags: number
  readonly maxTagLength: number
  readonly lockTimeoutMs: number
  readonly now: () => number
  readonly random: () => number
  readonly onError: (error: CorralError) => void
  readonly plugins: readonly CachePlugin[]
  readonly logger: CorralLogger | undefined
  readonly slowMs: number | undefined
  readonly health: ResolvedHealthOptions
  readonly store: CacheStore
  /** Byte budgets of the key memo and of the hit-for-pass table. */
  readonly memoBytes: number
  readonly passBytes: number
}

const CACHE_OPTION_KEYS = new Set([
  ...DEFAULT_ROUTE_KEYS,
  'maxBytes', 'maxEntryBytes', 'store', 'redis', 'l2', 'signingKeys', 'namespace', 'cacheStatusHeader', 'cacheStatus', 'tagHeaders',
  'maxTags', 'maxTagLength', 'lockTimeout', 'now', 'random', 'onError', 'plugins', 'logger', 'slowMs', 'health',
])
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
/** The codec's limit: an entry with more tags could not be read back from Redis. */
const TAG_LIMIT = 1024
/**
 * Headers a tag header may not name: removing them would change what the client receives or how
 * it may use it (cookies, representation metadata, caching, security policy, framing).
 */
const RESERVED_HEADERS = new Set([
  'set-cookie', 'cache-control', 'cache-status', 'expires', 'etag', 'last-modified', 'vary', 'age', 'date', 'location', 'link',
  'transfer-encoding', 'connection', 'keep-alive', 'trailer', 'upgrade', 'te', 'accept-ranges', 'retry-after',
  'www-authenticate', 'proxy-authenticate', 'authorization', 'cookie', 'strict-transport-security', 'pragma',
  'x-frame-options', 'x-content-type-options', 'referrer-policy', 'permissions-policy', 'server', 'alt-svc',
])
const RESERVED_PREFIXES = ['content-', 'access-control-', 'cross-origin-']

export function resolveCacheOptions(options: CacheOptions): ResolvedCacheOptions {
  if (typeof options !== 'object' || options === null) throw new ConfigError('expected createCache options to be an object')
  rejectUnknown(options, CACHE_OPTION_KEYS, 'options.')
  const defaults = resolveRoute(pickDefaults(options), undefined, 'options.', DEFAULT_ROUTE_KEYS)
  const namespace = options.namespace ?? 'corral'
  if (typeof namespace !== 'string' || !/^[\w.-]{1,64}$/.test(namespace)) {
    throw new ConfigError(`expected options.namespace to be 1-64 letters, digits, '_', '.' or '-', got ${describeValue(namespace)}`)
  }
  const cacheStatusHeader = options.cacheStatusHeader === false ? undefined : headerName(options.cacheStatusHeader ?? 'x-cache', 'options.cacheStatusHeader')
  const cacheStatusName = options.cacheStatus ?? 'Corral'
  if (cacheStatusName !== false && (typeof cacheStatusName !== 'string' || !/^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]{0,63}$/.test(cacheStatusName))) {
    throw new ConfigError(`expected options.cacheStatus to be a token (a letter first, then letters, digits or !#$%&'*+-.^_\`|~:/) or false, got ${describeValue(cacheStatusName)}`)
  }
  const list = options.tagHeaders ?? ['cache-tag', 'surrogate-key']
  if (!Array.isArray(list)) throw new ConfigError(`expected options.tagHeaders to be an array of header names, got ${describeValue(list)}`)
  const tagHeaders = list.map((h: unknown, i) => {
    const name = headerName(h, `options.tagHeaders[${i}]`)
    if (RESERVED_HEADERS.has(name) || RESERVED_PREFIXES.some((p) => name.startsWith(p)) || name === cacheStatusHeader) {
      throw new ConfigError(`options.tagHeaders[${i}] may not be '${name}': tag headers are removed from every response, and that one means something to the client`)
    }
    return name
  })
  const maxTags = options.maxTags === undefined ? 256 : positiveInt(options.maxTags, 'options.maxTags')
  if (maxTags > TAG_LIMIT) throw new ConfigError(`expected options.maxTags to be at most ${TAG_LIMIT}, got ${maxTags}`)
  const maxTagLength = options.maxTagLength === undefined ? 256 : positiveInt(options.maxTagLength, 'options.maxTagLength')
  const lockTimeoutMs = parseDuration(options.lockTimeout ?? 5000, 'options.lockTimeout', MAX_TIMER_MS)
  if (options.now !== undefined && typeof options.now !== 'function') throw new ConfigError('expected options.now to be a function returning milliseconds')
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new ConfigError('expected options.onError to be a function')
  if (options.redis === undefined && (options.l2 !== undefined || options.signingKeys !== undefined)) {
    throw new ConfigError('options.l2 and options.signingKeys configure the Redis tier; set options.redis too')
  }

  let store: CacheStore
  let maxBytes = DEFAULT_MAX_BYTES
  if (options.store !== undefined) {
    if (options.maxBytes !== undefined || options.maxEntryBytes !== undefined) {
      throw new ConfigError('options.maxBytes and options.maxEntryBytes size the default store; configure the store you pass in options.store instead')
    }
    if (options.redis !== undefined) throw new ConfigError('options.redis and options.store cannot both be set; pass a TieredStore as options.store instead')
    if (typeof options.store !== 'object' || options.store === null || typeof options.store.get !== 'function') {
      throw new ConfigError(`expected options.store to be a store (get, set, delete, invalidate, clear), got ${describeValue(options.store)}`)
    }
    store = options.store
  } else {
    if (options.maxBytes !== undefined) maxBytes = positiveInt(options.maxBytes, 'options.maxBytes')
    // Validated against what the user set, then sized to the entries' share of it.
    const sizing = new MemoryStore({ maxBytes, maxEntryBytes: options.maxEntryBytes }, 'options.')
    const entriesBytes = maxBytes - 2 * Math.floor(maxBytes / 32)
    const l1 = new MemoryStore({ maxBytes: entriesBytes, maxEntryBytes: Math.min(sizing.maxEntryBytes, entriesBytes) })
    store = options.redis === undefined ? l1 : tiered(l1, options)
  }
  return {
    defaults,
    namespace,
    cacheStatusHeader,
    cacheStatus: cacheStatusName === false ? undefined : cacheStatusName,
    tagHeaders,
    maxTags,
    maxTagLength,
    lockTimeoutMs,
    now: options.now ?? Date.now,
    random: fnOption(options.random, 'options.random', Math.random),
    onError: options.onError ?? (options.logger === undefined ? rateLimitedWarning() : NOTHING),
    plugins: pluginsOption(options.plugins),
    logger: loggerOption(options.logger),
    slowMs: options.slowMs === undefined || options.slowMs === false ? undefined : parseDuration(options.slowMs, 'options.slowMs', MAX_TIMER_MS),
    health: resolveHealthOptions(options.health),
    store,
    memoBytes: Math.floor(maxBytes / 32),
    passBytes: Math.floor(maxBytes / 32),
  }
}

function pickDefaults(o: CacheOptions): DefaultRouteOptions {
  const out: Record<string, unknown> = {}
  for (const k of DEFAULT_ROUTE_KEYS) if (o[k as keyof CacheOptions] !== undefined) out[k] = o[k as keyof CacheOptions]
  return out as DefaultRouteOptions
}

function headerName(v: unknown, option: string): string {
  if (typeof v !== 'string' || !HEADER_NAME.test(v)) throw new ConfigError(`expected ${option} to be an HTTP header name, got ${describeValue(v)}`)
  return v.toLowerCase()
}

function rateLimitedWarning(): (error: CorralError) => void {
  let last = -Infinity
  return (error) => {
    const t = Date.now()
    if (t - last < 10_000) return
    last = t
    process.emitWarning(`${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}`, {
      type: 'CorralWarning',
      code: error.code,
    })
  }
}

function tiered(l1: MemoryStore, o: CacheOptions): TieredStore {
  if (o.l2 !== undefined && (typeof o.l2 !== 'object' || o.l2 === null)) throw new ConfigError(`expected options.l2 to be an object, got ${describeValue(o.l2)}`)
  const { l1Ttl, ...l2 } = o.l2 ?? {}
  for (const k of ['redis', 'signingKeys']) if (k in l2) throw new ConfigError(`unknown option options.l2.${k} (set options.${k})`)
  const redis = new RedisStore({ ...l2, redis: o.redis as RedisStoreOptions['redis'], signingKeys: o.signingKeys }, 'options.l2.', 'options.')
  return new TieredStore(l1, redis, l1Ttl === undefined ? {} : { l1Ttl }, 'options.l2.')
}

const NOTHING = (): void => undefined

function pluginsOption(v: unknown): readonly CachePlugin[] {
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new ConfigError(`expected options.plugins to be an array of plugins, got ${describeValue(v)}`)
  return v.map((p: unknown, i) => {
    const o = p as Partial<CachePlugin> | null
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || o.name === '') {
      throw new ConfigError(`expected options.plugins[${i}] to be a plugin: an object with a name and hooks (before, after), got ${describeValue(p)}`)
    }
    for (const hook of ['attach', 'before', 'after', 'close'] as const) {
      if (o[hook] !== undefined && typeof o[hook] !== 'function') throw new ConfigError(`expected options.plugins[${i}].${hook} (plugin ${o.name}) to be a function`)
    }
    if (o.ops !== undefined && (!Array.isArray(o.ops) || o.ops.some((op) => !(OPERATIONS as readonly string[]).includes(op)))) {
      throw new ConfigError(`expected options.plugins[${i}].ops (plugin ${o.name}) to list operations among ${OPERATIONS.join(', ')}`)
    }
    return o as CachePlugin
  })
}

function loggerOption(v: unknown): CorralLogger | undefined {
  if (v === undefined) return undefined
  const o = v as Partial<CorralLogger> | null
  if (typeof o !== 'object' || o === null || typeof o.warn !== 'function' || typeof o.error !== 'function') {
    throw new ConfigError(`expected options.logger to be a pino-compatible logger (with warn and error methods), got ${describeValue(v)}`)
  }
  return o as CorralLogger
}

function fnOption<F>(v: F | undefined, option: string, fallback: F): F {
  if (v === undefined) return fallback
  if (typeof v !== 'function') throw new ConfigError(`expected ${option} to be a function, got ${describeValue(v)}`)
  return v
}
