import { randomBytes } from 'node:crypto'
import { decodeEntry, encodeEntry } from './codec.js'
import type { Entry } from '../model/entry.js'
import { ALL, matchesSelectors, selectorsFromJson, type NormalizedSelectors } from '../model/invalidation.js'
import type { BreakerState } from './breaker.js'
import type { EvictionPolicy } from './eviction.js'
import { RedisBus } from './redis-bus.js'
import type { RedisClient } from './redis-client.js'
import { messageOf, RedisGateway } from './redis-gateway.js'
import { RedisInspector } from './redis-inspector.js'
import { indexKeysOf, logKey, RedisInvalidator } from './redis-invalidation.js'
import { RedisLock } from './redis-lock.js'
import { resolveRedisOptions, type RedisStoreOptions } from './redis-options.js'
import type { Fence, FillLock, SetResult, SharedStore, StoreHealth, StoreHost } from './types.js'

export type { RedisClient } from './redis-client.js'
export type { RedisStoreOptions } from './redis-options.js'

// An entry and its TTL in one command: one round trip, one reply. The reader derives expiry and age
// from the TTL on its own clock (codec.ts), and a soft purge shortens the TTL, so both are needed.
// A key of another type (planted: a list, a hash) answers WRONG_TYPE in place of a TTL, not an
// error, so that it is rejected and deleted like any value Corral did not write.
// A pipelined GET and PTTL cost about twice the client CPU (bench/results: the L2 hit). Sent as
// EVAL, not EVALSHA: a node that lacks the script (a restart, a failover, a Cluster node never
// asked before) would answer NOSCRIPT, a failed call, and the text is only 64 bytes.
const READ_SCRIPT = "local v = redis.pcall('GET', KEYS[1]) if type(v) == 'table' then return {false, -3} end return {v, redis.call('PTTL', KEYS[1])}"
const WRONG_TYPE = -3

/** The most a fill's write reads of the invalidation log. */
const LOG_CHECK = 200

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
 * - `<ns>:v1:<hash>:lock`: the fleet-wide fill lock (see redis-lock.ts).
 * - `<ns>:v1:log`: a stream of the last ~1000 invalidations, so that a fill that began before
 *   one of them is not stored after it, even on an instance that missed the message.
 * - channels `<ns>:v1:bus` (invalidations) and `<ns>:v1:fill` (lock holders' outcomes).
 */
export class RedisStore implements SharedStore {
  readonly client: RedisClient
  readonly timeoutMs: number
  readonly writeTimeoutMs: number
  /** One origin call per key across every instance sharing this Redis; set by `attach`. */
  locks: FillLock | undefined
  private readonly gateway: RedisGateway
  private readonly inspector: RedisInspector
  private readonly bus: RedisBus
  private readonly invalidator: RedisInvalidator
  private readonly signingKeys: readonly Buffer[]
  private readonly maxEntryBytes: number
  private host: StoreHost = detachedHost()
  /** Writes under way, so that a lock holder tells waiters `stored` only once its entry is in. */
  private readonly writing = new Set<Promise<unknown>>()

  /**
   * `prefix` names the options in error messages (`'options.l2.'` when built by createCache);
   * `rootPrefix` names `redis` and `signingKeys` (`'options.'` there).
   */
  constructor(options: RedisStoreOptions, prefix = '', rootPrefix = prefix) {
    const o = resolveRedisOptions(options, prefix, rootPrefix)
    const { client, owned, timeoutMs, failureThreshold, cooldownMs } = o
    this.maxEntryBytes = o.maxEntryBytes
    this.signingKeys = o.signingKeys
    this.gateway = new RedisGateway({ client, owned, timeoutMs, failureThreshold, cooldownMs })
    this.client = client
    this.timeoutMs = timeoutMs
    this.writeTimeoutMs = this.gateway.writeTimeoutMs
    this.bus = new RedisBus(this.gateway, () => this.host.namespace)
    const gateway = this.gateway
    this.invalidator = new RedisInvalidator({
      client,
      writeTimeoutMs: gateway.writeTimeoutMs,
      namespace: () => this.host.namespace,
      canSend: () => gateway.canSend(),
      call: (op, ms) => gateway.call(op, ms),
      broadcast: (json) => this.bus.broadcast(json),
      replicated: () => this.inspector.replicated(),
      foreignValue: (detail) => this.foreignValue(detail),
    })
    this.gateway.onRecovered(() => this.invalidator.recovered())
    this.inspector = new RedisInspector(this.gateway, o.assumeNoEviction, () => this.invalidator.recovered())
  }

  attach(host: StoreHost): void {
    this.host = host
    this.gateway.report = (error) => host.report(error)
    // Its channel is named by the namespace, known from now on.
    this.locks ??= new RedisLock({
      gateway: this.gateway,
      bus: this.bus,
      writesSettled: () => this.writesSettled(),
      foreignValue: (detail) => this.foreignValue(detail),
    })
  }

  /**
   * Whether entries are read from and written to Redis now: connected, circuit closed, and the
   * eviction policy read and safe (or `assumeNoEviction`).
   */
  isReady(): boolean {
    return this.gateway.canSend() && this.inspector.eviction.safe
  }

  /**
   * The entry under `key`, or undefined. Rejects when Redis cannot answer: a StoreUnavailableError
   * when it could not be asked (not connected, circuit open, an eviction policy that rules Redis
   * out for entries), a StoreError when it failed or missed the deadline.
   */
  get(key: string): Promise<Entry | undefined> {
    const { gateway } = this
    if (!gateway.canSend()) return Promise.reject(gateway.unavailable('reading an entry from Redis'))
    if (!this.inspector.eviction.safe) return Promise.reject(gateway.unavailable('reading an entry from Redis (its eviction policy rules it out)'))
    gateway.coalesce()
    return gateway.call(() => readEntry(this.client, key), this.timeoutMs).then(
      (reply) => this.decode(key, reply),
      (err: unknown) => {
        throw gateway.storeError(err, 'reading an entry from Redis failed; treated as a miss')
      },
    )
  }

  /** The newest id of the invalidation log (`0-0` when empty), or undefined when Redis cannot answer. */
  fence(): Fence {
    const { gateway } = this
    if (!gateway.canSend()) return RESOLVED_UNDEFINED
    const log = logKey(this.host.namespace)
    return gateway.call(() => this.client.xrevrange(log, '+', '-', 'COUNT', 1), this.timeoutMs).then(
      (last) => last[0]?.[0] ?? '0-0',
      (err: unknown) => gateway.failed(err, 'reading the invalidation log from Redis failed', undefined),
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
    const { gateway } = this
    const now = this.host.now()
    const encoded = encodeEntry(key, entry, now, this.signingKeys[0])
    if (encoded === undefined) return entry.expiresAt - now < 1 ? false : 'too-large'
    if (encoded.bytes.length > this.maxEntryBytes) return 'too-large'
    if (!gateway.canSend()) throw gateway.unavailable('writing an entry to Redis')
    // Redis may evict index sets: an entry kept there could outlive its invalidation.
    if (!this.inspector.eviction.safe) return false
    const since = fence === undefined ? undefined : await fence
    if (fence !== undefined && since === undefined) throw gateway.unavailable('reading the invalidation log before a write')
    const { bytes, ttlMs } = encoded
    const member = `${key} ${entry.url}`
    const indexes = indexKeysOf(this.host.namespace, entry.path, entry.tags)
    try {
      const answers = await gateway.call(
        () => Promise.all(indexes.map((ix) => this.client.eval(INDEX_SCRIPT, 1, ix, member, ttlMs))),
        this.writeTimeoutMs,
      )
      if (answers.some((a) => a === 2)) this.foundForeignIndex()
      await gateway.call(() => this.client.set(key, bytes, 'PX', ttlMs), this.writeTimeoutMs)
    } catch (err) {
      throw gateway.storeError(err, 'writing an entry to Redis failed')
    }
    if (since === undefined) return true
    const log = logKey(this.host.namespace)
    try {
      const [later, oldest] = await gateway.call(
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
      throw gateway.storeError(err, 'checking the invalidation log in Redis failed; the entry was removed')
    }
    await this.delete(key)
    return 'invalidated'
  }

  delete(key: string): Promise<void> {
    const { gateway } = this
    if (!gateway.canSend()) return Promise.resolve()
    return gateway.call(() => this.client.unlink(key), this.writeTimeoutMs).then(
      () => undefined,
      (err: unknown) => gateway.failed(err, 'deleting an entry from Redis failed', undefined),
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
    this.inspector.close()
    this.bus.close()
    await this.gateway.close()
  }

  async health(): Promise<RedisHealth> {
    const { gateway } = this
    const started = performance.now()
    const healthKey = `${this.host.namespace}:v1:h:${randomBytes(9).toString('base64url')}`
    const value = randomBytes(16).toString('hex')
    let roundTrip: RedisHealth['roundTrip']
    try {
      if (!gateway.canSend()) throw gateway.unavailable('the health check')
      const got = await gateway.call(
        () =>
          this.client
            .set(healthKey, value, 'PX', 10_000)
            .then(() => this.client.get(healthKey))
            .finally(() => this.client.unlink(healthKey).catch(() => undefined)),
        this.writeTimeoutMs,
      )
      roundTrip = got === value ? { ok: true, ms: elapsed(started) } : { ok: false, ms: elapsed(started), error: 'read back a different value' }
      await this.inspector.inspect()
    } catch (err) {
      roundTrip = { ok: false, ms: elapsed(started), error: messageOf(err) }
    }
    return {
      kind: 'redis',
      ok: roundTrip.ok && this.inspector.eviction.safe,
      connection: this.client.status,
      breaker: gateway.breakerState,
      lastError: gateway.lastError,
      roundTrip,
      eviction: this.inspector.eviction,
      replicas: this.inspector.expectedReplicas,
      pendingInvalidations: this.invalidator.pending,
    }
  }

  /** The circuit breaker's state, read without sending anything. */
  get breakerState(): BreakerState {
    return this.gateway.breakerState
  }

  /** Calls `listener` with every message on `<ns>:v1:<channel>`, own messages too (diagnostics, tests). */
  subscribe(channel: string, listener: (payload: string) => void): void {
    this.bus.subscribe(channel, listener)
  }

  watch(listener: (sel: NormalizedSelectors) => void): void {
    this.bus.onInvalidation(listener)
  }

  /** Counts a value Corral did not write where it keeps its own (a planted lock, entry or index). */
  private foreignValue(_detail: string): void {
    this.host.rejected()
  }

  // ---- internals -------------------------------------------------------------------------

  private decode(key: string, reply: unknown): Entry | undefined {
    const [bytes, ttl] = Array.isArray(reply) ? (reply as unknown[]) : []
    if (ttl === WRONG_TYPE) return this.refused(key)
    if (!Buffer.isBuffer(bytes)) return undefined
    const remaining = typeof ttl === 'number' ? ttl : -1
    // Corral always writes with a TTL: a value without one (PTTL -1) was not written by Corral.
    const result = remaining > 0 ? decodeEntry(key, bytes, remaining, this.host.now(), this.signingKeys) : undefined
    if (result?.ok) return result.entry
    if (remaining === -2) return undefined // expired between GET and PTTL
    return this.refused(key)
  }

  /** A value that fails to decode or verify is never served; it is counted and removed, so it costs one check. */
  private refused(key: string): undefined {
    this.host.rejected()
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

/** ioredis has `evalBuffer` on every client, but its types do not declare it. */
type EvalBuffer = { evalBuffer(script: string, numKeys: number, key: string): Promise<unknown> }

/**
 * `[value or null, PTTL]` of `key` (READ_SCRIPT). Not `callBuffer('EVAL', …)`: with
 * `enableAutoPipelining` ioredis 6 drops the command name of `call` and sends the script as one.
 */
function readEntry(client: RedisClient, key: string): Promise<unknown> {
  return (client as unknown as EvalBuffer).evalBuffer(READ_SCRIPT, 1, key)
}

const RESOLVED_UNDEFINED: Promise<undefined> = Promise.resolve(undefined)
const RESOLVED_VOID: Promise<void> = Promise.resolve()

/** Orders stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
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




function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100
}

