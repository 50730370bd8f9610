import { randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import { decodeEntry, encodeEntry } from '../codec.js'
import { describeValue, MAX_TIMER_MS, parseDuration, type Duration } from '../duration.js'
import type { Entry } from '../entry.js'
import { ConfigError, StoreError, StoreUnavailableError } from '../errors.js'
import { ALL, matchesSelectors, selectorsFromJson, type NormalizedSelectors } from '../invalidation.js'
import { positiveInt, rejectUnknown } from '../options.js'
import { CircuitBreaker, type BreakerState } from './breaker.js'
import { evictionFromInfo, leastSafe, UNCHECKED, type EvictionPolicy } from './eviction.js'
import { createClient, isClient, isCluster, isReplyError, type RedisClient } from './redis-client.js'
import { indexKeysOf, logKey, RedisInvalidator, type RedisAccess } from './redis-invalidation.js'
import type { CacheStore, Fence, SetResult, StoreHealth, StoreHost } from './types.js'

export type { RedisClient } from './redis-client.js'

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
   * keys set, unsigned entries and entries signed with other keys are misses.
   * @default [] (entries are not signed; they are still checked for structure)
   */
  signingKeys?: readonly (string | Buffer)[]
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
/** The most a fill's write reads of the invalidation log. */
const LOG_CHECK = 200
/** Largest invalidation message accepted from another instance. */
const MAX_MESSAGE = 64 * 1024
/** How often the eviction policy and the replicas are read again while connected. */
const EVICTION_CHECK_MS = 60_000
/** How long a primary must have fewer replicas before invalidations stop waiting for the missing one. */
const REPLICA_GRACE_MS = 60_000
const BUS = 'bus'

// Adds a member to an index set and makes the set live at least as long as the entry (one key, so
// it works on Redis Cluster). A set without a TTL answers PTTL -1, which is below any TTL. A key of
// another type is not ours: it is replaced, and the answer 2 tells the writer.
const INDEX_SCRIPT = `local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'set' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
if t == 'set' or t == 'none' then return 1 end
return 2`

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
  /** Redis's eviction policy; entries are kept in Redis only when `safe`. */
  readonly eviction: EvictionPolicy
  /** Replicas every invalidation must reach before it resolves (Redis WAIT), over every primary. */
  readonly replicas: number
  /** Invalidations that failed and run again when Redis answers (0 or 1: they are merged). */
  readonly pendingInvalidations: number
}

type Message = (payload: string) => void

/**
 * L2: entries in Redis as versioned binary envelopes (see codec.ts), with the TTL held by Redis.
 * Every call has a deadline, nothing is queued while Redis is away, and a circuit breaker stops
 * calling it after repeated failures. Reads never throw into a request: failures are reported
 * and answered as a miss. Writes and invalidations reject with a `StoreError`.
 *
 * Layout, under the cache namespace `<ns>` (all single-key commands, so it works on a Cluster
 * without pinning keys to one slot):
 * - `<ns>:v1:<hash>` (and `…:<variant>`): the entry; its TTL is the entry's lifetime.
 * - `<ns>:v1:i:t:<tag>`, `<ns>:v1:i:p:<path>`, `<ns>:v1:i:d:<dir>`: sets of `<key> <url>`
 *   members for invalidation by tag, by path, and by prefix (directories of the path); each set
 *   lives as long as its longest-lived entry and is written before the entry.
 * - `<ns>:v1:<hash>:lock`: the fleet-wide fill lock (see fill/redis-lock.ts).
 * - `<ns>:v1:log`: a stream of the last ~1000 invalidations, so that a fill that began before
 *   one of them is not stored after it, even on an instance that missed the message.
 * - channels `<ns>:v1:bus` (invalidations) and `<ns>:v1:fill` (lock holders' outcomes).
 */
export class RedisStore implements CacheStore, RedisAccess {
  readonly client: RedisClient
  readonly timeoutMs: number
  readonly writeTimeoutMs: number
  private readonly owned: boolean
  private readonly signingKeys: readonly Buffer[]
  private readonly maxEntryBytes: number
  private readonly assumeNoEviction: boolean
  private readonly breaker: CircuitBreaker
  private readonly invalidator: RedisInvalidator
  private readonly id = randomBytes(8).toString('base64url')
  private host: StoreHost = detachedHost()
  private lastError: { message: string; at: number } | null = null
  private eviction: EvictionPolicy = UNCHECKED
  private evictionTimer: NodeJS.Timeout | undefined
  /**
   * Replicas each primary (`host:port`) had when last read: invalidations wait for them. Raised at
   * once; lowered on a new connection, or once fewer have been seen for a minute, so that the
   * moments in which a failover cuts a primary off its replica do not lower it.
   */
  private readonly replicas = new Map<string, { expected: number; fewerSince: number | undefined }>()
  private fresh = true
  private subscriber: RedisClient | undefined
  private subscriberConnections = 0
  private readonly listeners = new Map<string, Message>()
  private readonly gapListeners: (() => void)[] = []
  /** Writes under way, so that a lock holder tells waiters `stored` only once its entry is in. */
  private readonly writing = new Set<Promise<unknown>>()
  private closed = false

  /**
   * `prefix` names the options in error messages (`'options.l2.'` when built by createCache);
   * `rootPrefix` names `redis` and `signingKeys` (`'options.'` there).
   */
  constructor(options: RedisStoreOptions, prefix = '', rootPrefix = prefix) {
    if (typeof options !== 'object' || options === null) throw new ConfigError(`expected ${prefix || 'RedisStore '}options to be an object`)
    rejectUnknown(options, OPTION_KEYS, prefix)
    // Writes get four times the read deadline, and both arm timers.
    this.timeoutMs = options.timeout === undefined ? 50 : parseDuration(options.timeout, `${prefix}timeout`, Math.floor(MAX_TIMER_MS / 4))
    this.writeTimeoutMs = this.timeoutMs * 4
    const failureThreshold = options.failureThreshold === undefined ? 5 : positiveInt(options.failureThreshold, `${prefix}failureThreshold`)
    const cooldownMs = options.cooldown === undefined ? 1000 : parseDuration(options.cooldown, `${prefix}cooldown`, MAX_TIMER_MS)
    this.maxEntryBytes = options.maxEntryBytes === undefined ? 8 * 1024 * 1024 : positiveInt(options.maxEntryBytes, `${prefix}maxEntryBytes`)
    if (options.assumeNoEviction !== undefined && typeof options.assumeNoEviction !== 'boolean') {
      throw new ConfigError(`expected ${prefix}assumeNoEviction to be true or false, got ${describeValue(options.assumeNoEviction)}`)
    }
    this.assumeNoEviction = options.assumeNoEviction === true
    this.signingKeys = signingKeys(options.signingKeys, `${rootPrefix}signingKeys`)
    this.breaker = new CircuitBreaker(failureThreshold, cooldownMs, () => Date.now())
    const r = options.redis
    if (isClient(r)) {
      this.client = r
      this.owned = false
    } else if (typeof r === 'string' || (typeof r === 'object' && r !== null && !Array.isArray(r))) {
      this.client = createClient(r, this.timeoutMs, `${rootPrefix}redis`)
      this.owned = true
    } else {
      throw new ConfigError(`expected ${rootPrefix}redis to be a redis:// URL, ioredis options or an ioredis client, got ${describeValue(r)}`)
    }
    this.invalidator = new RedisInvalidator(this)
    this.client.on('error', this.onClientError)
    this.client.on('ready', this.onReady)
    if (this.client.status === 'ready') this.onReady()
  }

  attach(host: StoreHost): void {
    this.host = host
  }

  namespace(): string {
    return this.host.namespace
  }

  /**
   * Whether entries are read from and written to Redis now: connected, circuit closed, and the
   * eviction policy read and safe (or `assumeNoEviction`).
   */
  isReady(): boolean {
    return this.canSend() && this.eviction.safe
  }

  get(key: string): Promise<Entry | undefined> {
    return this.read(key).then(orUndefined)
  }

  /** Like `get`, but tells a miss (undefined) from Redis being unavailable or too slow (UNAVAILABLE). */
  read(key: string): Promise<Entry | undefined | typeof UNAVAILABLE> {
    if (!this.eviction.safe || !this.canSend()) return RESOLVED_UNAVAILABLE
    return this.call(() => this.client.pipeline().getBuffer(key).pttl(key).exec(), this.timeoutMs).then(
      (replies) => this.decode(key, replies),
      (err: unknown) => this.failed(err, 'reading an entry from Redis failed; treated as a miss', UNAVAILABLE),
    )
  }

  /** The newest id of the invalidation log (`0-0` when empty), or undefined when Redis cannot answer. */
  fence(): Fence {
    if (!this.canSend()) return RESOLVED_UNDEFINED
    const log = logKey(this.host.namespace)
    return this.call(() => this.client.xrevrange(log, '+', '-', 'COUNT', 1), this.timeoutMs).then(
      (last) => last[0]?.[0] ?? '0-0',
      (err: unknown) => this.failed(err, 'reading the invalidation log from Redis failed', undefined),
    )
  }

  /**
   * Writes the entry after its index members (an entry is never in Redis without them). With a
   * `fence`, the write is undone when the invalidation log holds a matching invalidation made
   * since the fence: either that invalidation's sweep ran after our write and removed it, or we
   * see it here. Rejects with a StoreError (StoreUnavailableError when nothing could be sent).
   */
  set(key: string, entry: Entry, fence?: Fence): Promise<SetResult> {
    const written = this.write(key, entry, fence)
    this.writing.add(written)
    const done = (): void => void this.writing.delete(written)
    written.then(done, done)
    return written
  }

  /** Resolves once every write under way when it was called has finished (never rejects). */
  writesSettled(): Promise<void> {
    if (this.writing.size === 0) return RESOLVED_VOID
    return Promise.allSettled([...this.writing]).then(() => undefined)
  }

  private async write(key: string, entry: Entry, fence: Fence | undefined): Promise<SetResult> {
    const now = this.host.now()
    const encoded = encodeEntry(key, entry, now, this.signingKeys[0])
    if (encoded === undefined) return entry.expiresAt - now < 1 ? false : 'too-large'
    if (encoded.bytes.length > this.maxEntryBytes) return 'too-large'
    if (!this.canSend()) throw this.unavailable('writing an entry to Redis')
    // Redis may evict index sets: an entry kept there could outlive its invalidation.
    if (!this.eviction.safe) return false
    const since = fence === undefined ? undefined : await fence
    if (fence !== undefined && since === undefined) throw this.unavailable('reading the invalidation log before a write')
    const { bytes, ttlMs } = encoded
    const member = `${key} ${entry.url}`
    const indexes = indexKeysOf(this.host.namespace, entry.path, entry.tags)
    try {
      const answers = await this.call(
        () => Promise.all(indexes.map((ix) => this.client.eval(INDEX_SCRIPT, 1, ix, member, ttlMs))),
        this.writeTimeoutMs,
      )
      if (answers.some((a) => a === 2)) this.foundForeignIndex()
      await this.call(() => this.client.set(key, bytes, 'PX', ttlMs), this.writeTimeoutMs)
    } catch (err) {
      throw this.storeError(err, 'writing an entry to Redis failed')
    }
    if (since === undefined) return true
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
      await this.delete(key)
      throw this.storeError(err, 'checking the invalidation log in Redis failed; the entry was removed')
    }
    await this.delete(key)
    return 'invalidated'
  }

  delete(key: string): Promise<void> {
    if (!this.canSend()) return Promise.resolve()
    return this.call(() => this.client.unlink(key), this.writeTimeoutMs).then(
      () => undefined,
      (err: unknown) => this.failed(err, 'deleting an entry from Redis failed', undefined),
    )
  }

  /**
   * Removes matching entries from Redis and tells every instance to drop them from its L1; resolves
   * once both are done. Concurrent calls share batches; a batch that fails rejects its callers
   * with a StoreError and runs again when Redis answers (see redis-invalidation.ts).
   */
  invalidate(sel: NormalizedSelectors, _namespace?: string): Promise<number> {
    return this.invalidator.submit(sel)
  }

  /**
   * Removes every entry and index of the namespace and tells every instance to clear its L1.
   * While Redis is away it rejects with a StoreUnavailableError, and runs when Redis answers.
   */
  async clear(): Promise<void> {
    await this.invalidator.submit(ALL)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.evictionTimer)
    this.client.off('error', this.onClientError)
    this.client.off('ready', this.onReady)
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
      if (!this.canSend()) throw this.unavailable('the health check')
      const got = await this.call(
        () =>
          this.client
            .set(healthKey, value, 'PX', 10_000)
            .then(() => this.client.get(healthKey))
            .finally(() => this.client.unlink(healthKey).catch(() => undefined)),
        this.writeTimeoutMs,
      )
      roundTrip = got === value ? { ok: true, ms: elapsed(started) } : { ok: false, ms: elapsed(started), error: 'read back a different value' }
      await this.inspect()
    } catch (err) {
      roundTrip = { ok: false, ms: elapsed(started), error: messageOf(err) }
    }
    return {
      kind: 'redis',
      ok: roundTrip.ok && this.eviction.safe,
      connection: this.client.status,
      breaker: this.breaker.state,
      lastError: this.lastError,
      roundTrip,
      eviction: this.eviction,
      replicas: [...this.replicas.values()].reduce((n, r) => n + r.expected, 0),
      pendingInvalidations: this.invalidator.pending,
    }
  }

  /**
   * Runs one command of another module (the fill lock) under the same breaker and deadlines:
   * `'read'` gets `timeout`, `'write'` four times as much. Answers UNAVAILABLE instead of failing.
   */
  command<T>(op: (client: RedisClient) => Promise<T>, kind: 'read' | 'write'): Promise<T | typeof UNAVAILABLE> {
    if (!this.canSend()) return RESOLVED_UNAVAILABLE
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

  /** Counts a value Corral did not write where it keeps its own (a planted lock, entry or index). */
  foreignValue(_detail: string): void {
    this.host.rejected()
  }

  // ---- messages between instances --------------------------------------------------------

  /**
   * Publishes `payload` on `<ns>:v1:<channel>`, fire and forget, whenever the connection is up
   * (see `sendAnyway`): a lost lock message costs other instances a wait bounded by lockTimeout.
   */
  publish(channel: string, payload: string): void {
    const name = this.channel(channel)
    this.sendAnyway((c) => c.publish(name, payload))
  }

  async replicated(): Promise<void> {
    const waits: Promise<void>[] = []
    for (const node of this.nodes()) {
      const expected = this.replicas.get(nodeName(node))?.expected ?? 0
      if (expected === 0) continue
      // WAIT answers after writeTimeout at the latest; the call's own deadline leaves it room.
      const acked = this.call(() => node.wait(expected, this.writeTimeoutMs), 2 * this.writeTimeoutMs)
      waits.push(
        acked.then(
          (n) => {
            if (n < expected) throw new StoreError(`the invalidation reached ${n} of the ${expected} replicas of ${nodeName(node)} in time; it runs again`)
          },
          (err: unknown) => {
            throw this.storeError(err, 'waiting for the replicas to take an invalidation failed')
          },
        ),
      )
    }
    await Promise.all(waits)
  }

  /** Sends an invalidation to every other instance; resolves once Redis has taken it. */
  async broadcast(json: string): Promise<void> {
    const payload = `${this.id} ${json}`
    if (!this.canSend()) throw this.unavailable('telling other instances of an invalidation')
    try {
      await this.call(() => this.client.publish(this.channel(BUS), payload), this.writeTimeoutMs)
    } catch (err) {
      throw this.storeError(err, 'telling other instances of an invalidation failed')
    }
  }

  /**
   * Calls `listener` with every invalidation another instance makes, and with `ALL` after the
   * connection that receives them was lost (messages sent meanwhile are gone).
   */
  onInvalidation(listener: (sel: NormalizedSelectors) => void): void {
    this.subscribe(BUS, (message) => {
      if (message.length > MAX_MESSAGE) return
      const space = message.indexOf(' ')
      if (space <= 0 || message.slice(0, space) === this.id) return
      const sel = selectorsFromJson(message.slice(space + 1))
      if (sel !== undefined) listener(sel)
    })
    this.gapListeners.push(() => listener(ALL))
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
      sub.on('ready', () => {
        // Every connection after the first may have missed messages while it was down.
        if (++this.subscriberConnections > 1) for (const gap of this.gapListeners) gap()
      })
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
  canSend(): boolean {
    // Not connected (starting, reconnecting, gone): answer at once without sending anything.
    // That costs no time, so it is not a breaker failure; the breaker is for calls that hang.
    if (this.closed || this.client.status !== 'ready') return false
    return this.breaker.allow()
  }

  /** Runs `op` under a deadline, feeding the outcome to the breaker. The caller checked `canSend()`. */
  call<T>(op: () => Promise<T>, ms: number): Promise<T> {
    // A step of a longer operation (a write, a sweep) may come after close(): send nothing then.
    if (this.closed) return Promise.reject(this.unavailable('a Redis call'))
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
    this.invalidator.recovered()
  }

  /** Reports a failure and answers `value` in its place (reads, deletes, lock commands). */
  private failed<T>(err: unknown, message: string, value: T): T {
    this.host.report(this.storeError(err, message))
    return value
  }

  /** Records a failure as the last error and wraps it for the caller to report. */
  private storeError(err: unknown, message: string): StoreError {
    if (err instanceof StoreUnavailableError) return err
    this.lastError = { message: messageOf(err), at: Date.now() }
    return new StoreError(message, err)
  }

  private unavailable(what: string): StoreUnavailableError {
    const why = this.closed
      ? 'the store is closed'
      : this.breaker.state !== 'closed'
        ? `circuit ${this.breaker.state} after repeated failures`
        : `not connected (${this.client.status})`
    return new StoreUnavailableError(`${what} failed: Redis is unavailable (${why})`)
  }

  private readonly onClientError = (err: unknown): void => {
    this.lastError = { message: messageOf(err), at: Date.now() }
  }

  /**
   * A (re)connection, perhaps to another primary: read the eviction policy and the replicas before
   * relying on Redis for entries, then every minute.
   */
  private readonly onReady = (): void => {
    this.fresh = true
    void this.inspect().then(() => this.invalidator.recovered())
    if (this.evictionTimer === undefined && !this.closed) {
      this.evictionTimer = setInterval(() => void this.inspect(), EVICTION_CHECK_MS)
      this.evictionTimer.unref()
    }
  }

  private nodes(): Redis[] {
    return isCluster(this.client) ? this.client.nodes('master') : [this.client]
  }

  /** Reads each primary's eviction policy and replicas (`INFO memory`, `INFO replication`). */
  private async inspect(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') return
    const nodes = this.nodes()
    const fresh = this.fresh
    this.fresh = false
    let found: EvictionPolicy
    try {
      const infos = await this.call(() => Promise.all(nodes.map((n) => Promise.all([n.info('memory'), n.info('replication')]))), this.writeTimeoutMs)
      found = leastSafe(infos.map(([memory]) => evictionFromInfo(memory)))
      infos.forEach(([, replication], i) => this.countReplicas(nodeName(nodes[i] as Redis), replicasFromInfo(replication), fresh))
    } catch (err) {
      found = { policy: 'unknown', maxmemory: undefined, safe: false, note: `INFO failed: ${messageOf(err)}` }
    }
    if (this.assumeNoEviction && !found.safe) found = { ...found, safe: true, note: `assumed safe (assumeNoEviction); ${found.note ?? ''}`.trim() }
    const was = this.eviction
    this.eviction = found
    if (!found.safe && (was.safe || was === UNCHECKED)) {
      this.host.report(new StoreError(`Redis may evict Corral's keys (${found.note ?? found.policy}); entries are kept in L1 only until it cannot`))
    }
  }

  private countReplicas(node: string, seen: number, fresh: boolean): void {
    const known = this.replicas.get(node)
    const now = Date.now()
    if (fresh || known === undefined || seen >= known.expected) this.replicas.set(node, { expected: seen, fewerSince: undefined })
    else if (known.fewerSince === undefined) this.replicas.set(node, { expected: known.expected, fewerSince: now })
    else if (now - known.fewerSince >= REPLICA_GRACE_MS) this.replicas.set(node, { expected: seen, fewerSince: undefined })
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

  /**
   * An index key held something other than a set and was replaced. Whatever it indexed before may
   * be unreachable by invalidation now, so the whole namespace is invalidated (kept and run again
   * if Redis cannot do it now).
   */
  private foundForeignIndex(): void {
    this.host.rejected()
    this.invalidator.submit(ALL).catch(() => undefined)
  }
}

const RESOLVED_UNAVAILABLE: Promise<typeof UNAVAILABLE> = Promise.resolve(UNAVAILABLE)
const RESOLVED_UNDEFINED: Promise<undefined> = Promise.resolve(undefined)
const RESOLVED_VOID: Promise<void> = Promise.resolve()

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

/** `host:port` of a node, for the replicas it is known to have. */
function nodeName(node: Redis): string {
  const o = node.options as { host?: string; port?: number } | undefined
  return `${o?.host ?? ''}:${o?.port ?? ''}`
}

/** Replicas a primary has (`connected_slaves` of `INFO replication`); 0 for anything else. */
function replicasFromInfo(info: string): number {
  if (!/^role:master\s*$/m.test(info)) return 0
  const m = /^connected_slaves:(\d+)\s*$/m.exec(info)
  return m === null ? 0 : Number(m[1])
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
