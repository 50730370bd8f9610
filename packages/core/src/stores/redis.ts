import { createHash, randomBytes } from 'node:crypto'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { decodeEntry, encodeEntry } from '../codec.js'
import { describeValue, parseDuration, type Duration } from '../duration.js'
import type { Entry } from '../entry.js'
import { ConfigError, StoreError } from '../errors.js'
import { matchesSelectors, selectorsFromJson, selectorsToJson, type NormalizedSelectors } from '../invalidation.js'
import { positiveInt, rejectUnknown } from '../options.js'
import { CircuitBreaker, type BreakerState } from './breaker.js'
import type { CacheStore, Fence, StoreHealth, StoreHost } from './types.js'

/** A client Corral can use: an ioredis `Redis` (standalone or Sentinel) or `Cluster`. */
export type RedisClient = Redis | Cluster

export interface RedisStoreOptions {
  /**
   * Where Redis is: a URL (`redis://…`, `rediss://…`), ioredis options, or a client you created.
   * A client you pass is used as it is: Corral changes none of its options, does not close it,
   * and sends nothing while it is not connected (so its offline queue never fills on our account).
   * Corral adds one `error` listener to it and opens one more connection with `duplicate()` for
   * invalidation messages, which it closes.
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
   * keys set, unsigned entries and entries signed with other keys are misses.
   * @default [] (entries are not signed; they are still checked for structure)
   */
  signingKeys?: readonly (string | Buffer)[]
  /**
   * Largest encoded entry (body plus metadata) written to Redis, in bytes.
   * @default 8388608 (8 MiB)
   */
  maxEntryBytes?: number
}

const OPTION_KEYS = new Set(['redis', 'timeout', 'failureThreshold', 'cooldown', 'signingKeys', 'maxEntryBytes'])
/** Members scanned per SSCAN/SCAN step: each step is one short command. */
const SCAN_COUNT = 100
/** Directory levels indexed for prefix invalidation ('/', '/a/', '/a/b/', ...). */
const MAX_DIR_DEPTH = 8
/** Invalidations kept for replay while Redis is away. */
const MAX_PENDING_INVALIDATIONS = 1000
/** Invalidations kept in the log (`XADD … MAXLEN ~`), and the most a fill's write checks. */
const LOG_LENGTH = 1000
const LOG_CHECK = 200
/** Index keys longer than this are named by a hash of the tag or path. */
const MAX_INDEX_NAME = 200

// Adds a member to an index set and makes the set live at least as long as the entry (one key, so
// it works on Redis Cluster). A set without a TTL answers PTTL -1, which is below any TTL.
const INDEX_SCRIPT = `redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1`

/** Thrown inside the store instead of calling Redis while the circuit is open or the client is not connected. */
const NOT_CALLED = new Error('Redis is unavailable')
/** What `RedisStore.read` answers when Redis could not be asked or did not answer in time. */
export const UNAVAILABLE: unique symbol = Symbol('corral.l2-unavailable')

export interface RedisHealth extends StoreHealth {
  readonly kind: 'redis'
  /** The ioredis connection status ('ready', 'connecting', 'reconnecting', 'end', ...). */
  readonly connection: string
  readonly breaker: BreakerState
  readonly lastError: { readonly message: string; readonly at: number } | null
  /** A SET then GET of a random value under a health key, within the write deadline. */
  readonly roundTrip: { readonly ok: boolean; readonly ms: number; readonly error?: string }
  /** Invalidations waiting for Redis to come back. */
  readonly pendingInvalidations: number
}

type Message = (payload: string) => void

/**
 * L2: entries in Redis as versioned binary envelopes (see codec.ts), with the TTL held by Redis.
 * Every call has a deadline, nothing is queued while Redis is away, and a circuit breaker stops
 * calling it after repeated failures. It never throws or rejects into a request: failures are
 * reported to the cache and answered as a miss (or `false`, `0`).
 *
 * Layout, under the cache namespace `<ns>` (all single-key commands, so it works on a Cluster
 * without pinning keys to one slot):
 * - `<ns>:v1:<hash>` (and `…:<variant>`): the entry; its TTL is the entry's lifetime.
 * - `<ns>:v1:i:t:<tag>`, `<ns>:v1:i:p:<path>`, `<ns>:v1:i:d:<dir>`: sets of `<key> <url>`
 *   members for invalidation by tag, by path, and by prefix (directories of the path); each set
 *   lives as long as its longest-lived entry.
 * - `<ns>:v1:log`: a stream of the last ~1000 invalidations, so that a fill that began before
 *   one of them is not stored after it, even on an instance that missed the message.
 * - channels `<ns>:v1:bus` (invalidations) and `<ns>:v1:fill` (lock holders' "stored").
 */
export class RedisStore implements CacheStore {
  readonly client: RedisClient
  readonly timeoutMs: number
  private readonly writeTimeoutMs: number
  private readonly owned: boolean
  private readonly signingKeys: readonly Buffer[]
  private readonly maxEntryBytes: number
  private readonly breaker: CircuitBreaker
  private host: StoreHost = detachedHost()
  private lastError: { message: string; at: number } | null = null
  private pending: NormalizedSelectors[] = []
  private replaying = false
  private subscriber: RedisClient | undefined
  private readonly listeners = new Map<string, Message>()
  private closed = false

  /**
   * `prefix` names the options in error messages (`'options.l2.'` when built by createCache);
   * `rootPrefix` names `redis` and `signingKeys` (`'options.'` there).
   */
  constructor(options: RedisStoreOptions, prefix = '', rootPrefix = prefix) {
    if (typeof options !== 'object' || options === null) throw new ConfigError(`expected ${prefix || 'RedisStore '}options to be an object`)
    rejectUnknown(options, OPTION_KEYS, prefix)
    this.timeoutMs = options.timeout === undefined ? 50 : parseDuration(options.timeout, `${prefix}timeout`)
    this.writeTimeoutMs = this.timeoutMs * 4
    const failureThreshold = options.failureThreshold === undefined ? 5 : positiveInt(options.failureThreshold, `${prefix}failureThreshold`)
    const cooldownMs = options.cooldown === undefined ? 1000 : parseDuration(options.cooldown, `${prefix}cooldown`)
    this.maxEntryBytes = options.maxEntryBytes === undefined ? 8 * 1024 * 1024 : positiveInt(options.maxEntryBytes, `${prefix}maxEntryBytes`)
    this.signingKeys = signingKeys(options.signingKeys, `${rootPrefix}signingKeys`)
    this.breaker = new CircuitBreaker(failureThreshold, cooldownMs, () => Date.now())
    const r = options.redis
    if (r instanceof Redis || r instanceof Cluster || isClientLike(r)) {
      this.client = r as RedisClient
      this.owned = false
    } else if (typeof r === 'string' || (typeof r === 'object' && r !== null && !Array.isArray(r))) {
      this.client = createClient(r, this.timeoutMs, rootPrefix)
      this.owned = true
    } else {
      throw new ConfigError(`expected ${rootPrefix}redis to be a redis:// URL, ioredis options or an ioredis client, got ${describeValue(r)}`)
    }
    this.client.on('error', this.onClientError)
  }

  attach(host: StoreHost): void {
    this.host = host
  }

  get(key: string): Promise<Entry | undefined> {
    return this.read(key).then(orUndefined)
  }

  /** Like `get`, but tells a miss (undefined) from Redis being unavailable or too slow (UNAVAILABLE). */
  read(key: string): Promise<Entry | undefined | typeof UNAVAILABLE> {
    if (!this.ready()) return RESOLVED_UNAVAILABLE
    return this.call(() => this.client.pipeline().getBuffer(key).pttl(key).exec(), this.timeoutMs).then(
      (replies) => this.decode(key, replies),
      (err: unknown) => this.failed(err, 'reading an entry from Redis failed; treated as a miss', UNAVAILABLE),
    )
  }

  /** The newest id of the invalidation log (`0-0` when empty), or undefined when Redis cannot answer. */
  fence(): Fence {
    if (!this.ready()) return RESOLVED_UNDEFINED
    const log = logKey(this.host.namespace)
    return this.call(() => this.client.xrevrange(log, '+', '-', 'COUNT', 1), this.timeoutMs).then(
      (last) => last[0]?.[0] ?? '0-0',
      (err: unknown) => this.failed(err, 'reading the invalidation log from Redis failed', undefined),
    )
  }

  /**
   * Writes the entry and its index members. With a `fence`, the write is skipped when the fence
   * is unknown, and undone when the invalidation log holds a matching invalidation made since the
   * fence: either that invalidation's sweep ran after our write and removed it, or we see it here.
   */
  async set(key: string, entry: Entry, fence?: Fence): Promise<boolean> {
    const since = fence === undefined ? undefined : await fence
    if (fence !== undefined && since === undefined) return false
    const written = await this.write(key, entry)
    if (!written || since === undefined) return written
    const log = logKey(this.host.namespace)
    try {
      const [later, oldest] = await this.call(
        () => Promise.all([this.client.xrange(log, `(${since}`, '+', 'COUNT', LOG_CHECK), this.client.xrange(log, '-', '+', 'COUNT', 1)]),
        this.writeTimeoutMs,
      )
      const trimmed = oldest[0] !== undefined && since !== '0-0' && compareIds(oldest[0][0], since) > 0
      const invalidated =
        trimmed ||
        later.length >= LOG_CHECK ||
        later.some(([, fields]) => {
          const sel = selectorsFromJson(fields[1] ?? '')
          return sel === undefined || matchesSelectors(sel, entry)
        })
      if (!invalidated) return true
    } catch (err) {
      this.failed(err, 'checking the invalidation log in Redis failed; the entry is removed', undefined)
    }
    await this.delete(key)
    return false
  }

  private write(key: string, entry: Entry): Promise<boolean> {
    const now = this.host.now()
    const encoded = encodeEntry(key, entry, now, this.signingKeys[0])
    if (encoded === undefined || encoded.bytes.length > this.maxEntryBytes) return Promise.resolve(false)
    if (!this.ready()) return Promise.resolve(false)
    const { bytes, ttlMs } = encoded
    const member = `${key} ${entry.url}`
    const ns = this.host.namespace
    const indexes = [indexKey(ns, 'p', entry.path), ...dirsOf(entry.path).map((d) => indexKey(ns, 'd', d))]
    for (const t of entry.tags) indexes.push(indexKey(ns, 't', t))
    return this.call(() => {
      if (isCluster(this.client)) {
        // Keys live in different slots: one command each (ioredis routes them).
        const index = indexes.map((ix) => this.client.eval(INDEX_SCRIPT, 1, ix, member, ttlMs))
        return Promise.all([this.client.set(key, bytes, 'PX', ttlMs), ...index]).then(([ok]) => ok === 'OK')
      }
      const p = this.client.pipeline().set(key, bytes, 'PX', ttlMs)
      for (const ix of indexes) p.eval(INDEX_SCRIPT, 1, ix, member, ttlMs)
      return p.exec().then((replies) => {
        const err = replies?.find(([e]) => e !== null)?.[0]
        if (err) throw err
        return replies?.[0]?.[1] === 'OK'
      })
    }, this.writeTimeoutMs).catch((err: unknown) => this.failed(err, 'writing an entry to Redis failed', false))
  }

  delete(key: string): Promise<void> {
    if (!this.ready()) return Promise.resolve()
    return this.call(() => this.client.unlink(key), this.writeTimeoutMs).then(
      () => undefined,
      (err: unknown) => this.failed(err, 'deleting an entry from Redis failed', undefined),
    )
  }

  /**
   * Removes matching entries in bounded steps: each SSCAN reads at most ~100 index members, whose
   * entries are then unlinked one command per key. When Redis is unavailable the invalidation is
   * kept (up to 1000) and replayed once Redis answers again, then the promise rejects.
   */
  async invalidate(sel: NormalizedSelectors, namespace: string): Promise<number> {
    try {
      return await this.invalidateNow(sel, namespace)
    } catch (err) {
      this.keep(sel)
      throw new StoreError('invalidating entries in Redis failed; will retry when Redis is back', err)
    }
  }

  /** Removes every entry and index of the cache's namespace, SCANning in bounded steps (every master of a Cluster). */
  async clear(): Promise<void> {
    if (!this.ready()) throw new StoreError(`clearing Redis failed: ${this.unavailableReason()}`)
    try {
      await this.clearNow()
    } catch (err) {
      throw new StoreError('clearing Redis failed', err)
    }
  }

  private async clearNow(): Promise<void> {
    const ns = this.host.namespace
    const keyPrefix = this.client.options && 'keyPrefix' in this.client.options ? String(this.client.options.keyPrefix ?? '') : ''
    const nodes: Redis[] = isCluster(this.client) ? this.client.nodes('master') : [this.client as Redis]
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await this.call(
          () => node.scan(cursor, 'MATCH', `${keyPrefix}${ns}:v1:*`, 'COUNT', SCAN_COUNT * 5),
          this.writeTimeoutMs,
        )
        cursor = next
        const own = keys.map((k) => k.slice(keyPrefix.length))
        if (own.length > 0) await this.call(() => Promise.all(own.map((k) => this.client.unlink(k))), this.writeTimeoutMs)
      } while (cursor !== '0')
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.off('error', this.onClientError)
    const sub = this.subscriber
    this.subscriber = undefined
    if (sub !== undefined) sub.disconnect()
    if (this.owned) {
      // QUIT lets queued writes finish; do not wait on a Redis that is away.
      if (this.client.status === 'ready') await this.call(() => this.client.quit(), this.writeTimeoutMs).catch(() => undefined)
      this.client.disconnect()
    }
  }

  async health(): Promise<RedisHealth> {
    const started = performance.now()
    const healthKey = `${this.host.namespace}:v1:h:${randomBytes(9).toString('base64url')}`
    const value = randomBytes(16).toString('hex')
    let roundTrip: RedisHealth['roundTrip']
    try {
      if (!this.ready()) throw NOT_CALLED
      const got = await this.call(
        () =>
          this.client
            .set(healthKey, value, 'PX', 10_000)
            .then(() => this.client.get(healthKey))
            .finally(() => this.client.unlink(healthKey).catch(() => undefined)),
        this.writeTimeoutMs,
      )
      roundTrip = got === value ? { ok: true, ms: elapsed(started) } : { ok: false, ms: elapsed(started), error: 'read back a different value' }
    } catch (err) {
      roundTrip = { ok: false, ms: elapsed(started), error: err === NOT_CALLED ? this.unavailableReason() : messageOf(err) }
    }
    return {
      kind: 'redis',
      ok: roundTrip.ok,
      connection: this.client.status,
      breaker: this.breaker.state,
      lastError: this.lastError,
      roundTrip,
      pendingInvalidations: this.pending.length,
    }
  }

  /**
   * Runs one command of another module (the fill lock) under the same breaker and deadlines:
   * `'read'` gets `timeout`, `'write'` four times as much. Answers UNAVAILABLE instead of failing.
   */
  command<T>(op: (client: RedisClient) => Promise<T>, kind: 'read' | 'write'): Promise<T | typeof UNAVAILABLE> {
    if (!this.ready()) return RESOLVED_UNAVAILABLE
    return this.call(() => op(this.client), kind === 'read' ? this.timeoutMs : this.writeTimeoutMs).catch((err: unknown) =>
      this.failed(err, 'a Redis lock command failed', UNAVAILABLE),
    )
  }

  /**
   * Sends a clean-up command (releasing a lock) whenever the connection is up, even while the
   * circuit is open: it must not be lost, nobody waits for it, and a paused Redis runs it in order
   * once it resumes. Fire and forget.
   */
  sendAnyway(op: (client: RedisClient) => Promise<unknown>): void {
    if (this.closed || this.client.status !== 'ready') return
    try {
      op(this.client).catch(() => undefined)
    } catch {
      // a command that cannot even be queued is one we cannot help
    }
  }

  // ---- messages between instances --------------------------------------------------------

  /**
   * Publishes `payload` on `<ns>:v1:<channel>`, fire and forget, whenever the connection is up
   * (see `sendAnyway`): a lost message costs other instances a wait or a stale L1 copy, and the
   * invalidation log and lock expiry bound both.
   */
  publish(channel: string, payload: string): void {
    const name = this.channel(channel)
    this.sendAnyway((c) => c.publish(name, payload))
  }

  /** Calls `listener` with every message on `<ns>:v1:<channel>`, over a connection of its own. */
  subscribe(channel: string, listener: Message): void {
    if (this.closed) return
    const name = this.channel(channel)
    this.listeners.set(name, listener)
    if (this.subscriber === undefined) {
      // A subscriber sends a handful of commands, all of which must arrive: let it queue them
      // until it is connected, and resubscribe after every reconnection (ioredis' default).
      const sub: RedisClient = isCluster(this.client)
        ? this.client.duplicate(undefined, { enableOfflineQueue: true })
        : (this.client as Redis).duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined })
      sub.on('error', this.onClientError)
      sub.on('message', (ch: string, msg: string) => this.listeners.get(ch)?.(msg))
      this.subscriber = sub
    }
    this.subscriber.subscribe(name).catch((err: unknown) => {
      if (!this.closed) this.failed(err, 'subscribing to messages from other instances failed', undefined)
    })
  }

  // ---- internals -------------------------------------------------------------------------

  private channel(name: string): string {
    return `${this.host.namespace}:v1:${name}`
  }

  /** Whether a call may go out: the breaker allows it and the client is connected. */
  private ready(): boolean {
    // Not connected (starting, reconnecting, gone): answer at once without sending anything.
    // That costs no time, so it is not a breaker failure; the breaker is for calls that hang.
    if (this.closed || this.client.status !== 'ready') return false
    return this.breaker.allow()
  }

  /** Runs `op` under a deadline, feeding the outcome to the breaker. The caller checked `ready()`. */
  private call<T>(op: () => Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false
      const timer = setTimeout(() => {
        done = true
        this.breaker.failure()
        reject(new StoreError(`Redis did not answer within ${ms} ms`))
      }, ms)
      let p: Promise<T>
      try {
        p = op()
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then(
        (v) => {
          if (done) return
          done = true
          clearTimeout(timer)
          this.succeeded()
          resolve(v)
        },
        (err: unknown) => {
          if (done) return
          done = true
          clearTimeout(timer)
          // Redis answered (e.g. OOM, WRONGTYPE): it is there, so this does not open the circuit.
          if (isReplyError(err)) this.succeeded()
          else this.breaker.failure()
          reject(err)
        },
      )
    })
  }

  private succeeded(): void {
    this.breaker.success()
    if (this.pending.length > 0 && !this.replaying) void this.replay()
  }

  private failed<T>(err: unknown, message: string, value: T): T {
    if (err !== NOT_CALLED) {
      this.lastError = { message: messageOf(err), at: Date.now() }
      this.host.report(new StoreError(message, err))
    }
    return value
  }

  private readonly onClientError = (err: unknown): void => {
    this.lastError = { message: messageOf(err), at: Date.now() }
  }

  private unavailableReason(): string {
    if (this.closed) return 'the store is closed'
    if (this.breaker.state !== 'closed') return `circuit ${this.breaker.state} after repeated failures`
    return `not connected (${this.client.status})`
  }

  private decode(key: string, replies: [Error | null, unknown][] | null): Entry | undefined | typeof UNAVAILABLE {
    const [getReply, ttlReply] = replies ?? []
    const err = getReply?.[0] ?? ttlReply?.[0]
    if (err) return this.failed(err, 'reading an entry from Redis failed; treated as a miss', UNAVAILABLE)
    const bytes = getReply?.[1]
    if (!Buffer.isBuffer(bytes)) return undefined
    const remaining = typeof ttlReply?.[1] === 'number' ? ttlReply[1] : -1
    // Corral always writes with a TTL: a value without one (PTTL -1) was not written by Corral.
    const result = remaining > 0 ? decodeEntry(key, bytes, remaining, this.host.now(), this.signingKeys) : undefined
    if (result?.ok) return result.entry
    if (remaining === -2) return undefined // expired between GET and PTTL
    this.host.rejected()
    // A value that fails to decode or verify is never served; remove it so it costs one check.
    this.delete(key).catch(() => undefined)
    return undefined
  }

  private async invalidateNow(sel: NormalizedSelectors, ns: string): Promise<number> {
    if (!this.ready()) throw NOT_CALLED
    // Logged first: a fill that began before this point and writes after it sees the entry
    // (see `set`), and one that wrote before it is found by the sweep below.
    await this.call(
      () => this.client.xadd(logKey(ns), 'MAXLEN', '~', LOG_LENGTH, '*', 's', selectorsToJson(sel)),
      this.writeTimeoutMs,
    )
    const seen = new Set<string>()
    let removed = 0
    const sweep = async (index: string, keep: (url: string) => boolean) => {
      removed += await this.sweep(index, keep, seen)
    }
    for (const path of sel.paths) await sweep(indexKey(ns, 'p', path), () => true)
    for (const url of sel.urls) await sweep(indexKey(ns, 'p', url.split('?', 1)[0] ?? url), (u) => u === url)
    for (const tag of sel.tags) await sweep(indexKey(ns, 't', tag), () => true)
    for (const prefix of sel.prefixes) {
      const dirs = dirsOf(prefix.endsWith('/') ? `${prefix}x` : prefix)
      const dir = dirs[dirs.length - 1] ?? '/'
      await sweep(indexKey(ns, 'd', dir), (url) => (url.split('?', 1)[0] ?? url).startsWith(prefix))
    }
    return removed
  }

  /** Walks one index set in SSCAN steps, unlinking the entries `keep` selects and dropping their members. */
  private async sweep(index: string, select: (url: string) => boolean, seen: Set<string>): Promise<number> {
    let cursor = '0'
    let removed = 0
    do {
      const [next, members] = await this.call(() => this.client.sscan(index, cursor, 'COUNT', SCAN_COUNT), this.writeTimeoutMs)
      cursor = next
      const chosen: string[] = []
      const keys: string[] = []
      for (const m of members) {
        const space = m.indexOf(' ')
        if (space <= 0) continue
        const key = m.slice(0, space)
        if (!select(m.slice(space + 1))) continue
        chosen.push(m)
        if (!seen.has(key)) {
          seen.add(key)
          keys.push(key)
        }
      }
      if (keys.length > 0) {
        const counts = await this.call(() => Promise.all(keys.map((k) => this.client.unlink(k))), this.writeTimeoutMs)
        for (const c of counts) removed += c
      }
      if (chosen.length > 0) await this.call(() => this.client.srem(index, ...chosen), this.writeTimeoutMs)
    } while (cursor !== '0')
    return removed
  }

  private keep(sel: NormalizedSelectors): void {
    this.pending.push(sel)
    if (this.pending.length > MAX_PENDING_INVALIDATIONS) this.pending.shift()
  }

  private async replay(): Promise<void> {
    this.replaying = true
    try {
      while (this.pending.length > 0) {
        const sel = this.pending[0] as NormalizedSelectors
        await this.invalidateNow(sel, this.host.namespace)
        this.pending.shift()
      }
    } catch {
      // Redis went away again; the rest waits for the next success.
    } finally {
      this.replaying = false
    }
  }
}

const RESOLVED_UNAVAILABLE: Promise<typeof UNAVAILABLE> = Promise.resolve(UNAVAILABLE)
const RESOLVED_UNDEFINED: Promise<undefined> = Promise.resolve(undefined)

/** The log of invalidations: one stream per namespace. */
function logKey(ns: string): string {
  return `${ns}:v1:log`
}

/** Orders stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}

function orUndefined(e: Entry | undefined | typeof UNAVAILABLE): Entry | undefined {
  return e === UNAVAILABLE ? undefined : e
}

function detachedHost(): StoreHost {
  return {
    namespace: 'corral',
    now: Date.now,
    report: () => undefined,
    rejected: () => undefined,
    remoteInvalidation: () => undefined,
  }
}

function isClientLike(v: unknown): boolean {
  // Another copy of ioredis (an app's own dependency) fails instanceof; recognise it by shape.
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { pipeline?: unknown }).pipeline === 'function' &&
    typeof (v as { getBuffer?: unknown }).getBuffer === 'function' &&
    typeof (v as { status?: unknown }).status === 'string'
  )
}

function isCluster(c: RedisClient): c is Cluster {
  return (c as { isCluster?: boolean }).isCluster === true
}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/**
 * A client that fails fast: no offline queue (a command while disconnected fails at once), no
 * per-request retries, a command timeout, and reconnection with capped backoff in the background.
 * Options the user passes win.
 */
function createClient(r: string | RedisOptions, timeoutMs: number, prefix: string): Redis {
  const defaults: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs * 4,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  }
  if (typeof r === 'string') {
    if (!/^rediss?:\/\//.test(r)) throw new ConfigError(`expected ${prefix}redis to be a redis:// or rediss:// URL, got '${r}'`)
    return new Redis(r, defaults)
  }
  return new Redis({ ...defaults, ...r })
}

function signingKeys(v: unknown, option: string): readonly Buffer[] {
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new ConfigError(`expected ${option} to be an array of secrets (strings or Buffers), got ${describeValue(v)}`)
  return v.map((k: unknown, i) => {
    const b = typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.isBuffer(k) ? Buffer.from(k) : undefined
    if (b === undefined || b.length < 16) {
      throw new ConfigError(`expected ${option}[${i}] to be a secret of at least 16 bytes (a string or a Buffer)`)
    }
    return b
  })
}

/** `/a/b/c` → `['/', '/a/', '/a/b/']`: the directories a prefix invalidation looks in. */
export function dirsOf(path: string): string[] {
  const dirs: string[] = []
  for (let i = path.indexOf('/'); i !== -1 && dirs.length < MAX_DIR_DEPTH; i = path.indexOf('/', i + 1)) {
    dirs.push(path.slice(0, i + 1))
  }
  return dirs
}

function indexKey(ns: string, kind: 't' | 'p' | 'd', name: string): string {
  const n = name.length > MAX_INDEX_NAME ? `#${createHash('sha256').update(name).digest('base64url')}` : name
  return `${ns}:v1:i:${kind}:${n}`
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
