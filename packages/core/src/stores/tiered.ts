import { parseDuration, type Duration } from '../model/duration.js'
import type { Entry } from '../model/entry.js'
import { ConfigError, StoreError, StoreUnavailableError } from '../model/errors.js'
import { matchesSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { rejectUnknown } from '../model/options.js'
import type { CacheStore, Fence, FillLock, LocalStore, SetResult, SharedStore, StoreHealth, StoreHost } from './types.js'
import type { L2Event } from '../observe/events.js'

export interface TieredStoreOptions {
  /**
   * Longest time an entry is answered from L1 before L2 is asked again, whether this instance
   * stored it or promoted it from L2; never longer than the entry's own lifetime. It bounds how
   * long another instance's invalidation can go unseen if its message is lost. While L2 is
   * unavailable, L1 keeps answering with entries that are past this but still fresh.
   * @default '10s'
   */
  l1Ttl?: Duration
}

const OPTION_KEYS = new Set(['l1Ttl'])

/**
 * An L1 in this process in front of an L2 that processes share (a `MemoryStore` in front of a
 * `RedisStore` with `createCache({ redis })`, or any `LocalStore` and `SharedStore`). Reads try L1
 * (synchronously) and then L2, promoting an L2 hit into L1; concurrent L2 reads of one key share
 * one round trip. Writes land in L1 at once and go to L2 in the background, so no response waits
 * for L2. Invalidation clears L1, then L2, which tells the other processes to clear their L1 and
 * drop matching in-flight fills.
 */
export class TieredStore implements CacheStore {
  readonly l1Ttl: number
  private host: StoreHost | undefined
  /** When each L1 entry is due to be checked against L2 again. */
  private readonly l1Deadline = new WeakMap<Entry, number>()
  private readonly reads = new Map<string, Promise<Entry | undefined>>()
  /** Entries kept in L1 and waiting for the next turn of the event loop to be written to L2. */
  private readonly deferred = new Map<string, { entry: Entry; fence: Fence | undefined }>()
  private flushScheduled = false
  /** Bumped by every invalidation and clear. */
  private epoch = 0

  constructor(
    readonly l1: LocalStore,
    readonly l2: SharedStore,
    options: TieredStoreOptions = {},
    prefix = '',
  ) {
    if (typeof options !== 'object' || options === null) throw new ConfigError(`expected ${prefix || 'TieredStore '}options to be an object`)
    rejectUnknown(options, OPTION_KEYS, prefix)
    this.l1Ttl = options.l1Ttl === undefined ? 10_000 : parseDuration(options.l1Ttl, `${prefix}l1Ttl`)
  }

  /** One origin call per key across every instance sharing L2 (L2's own lock, once attached). */
  get locks(): FillLock | undefined {
    return this.l2.locks
  }

  attach(host: StoreHost): void {
    this.host = host
    this.l1.attach?.(host)
    this.l2.attach?.(host)
    this.l2.watch((sel) => this.onRemoteInvalidation(sel))
  }

  get(key: string): Entry | undefined | Promise<Entry | undefined> {
    const e = this.l1.get(key)
    const now = this.now()
    if (e !== undefined && now < (this.l1Deadline.get(e) ?? 0) && e.expiresAt > now) return e
    let read = this.reads.get(key)
    if (read === undefined) {
      const epoch = this.epoch
      const settled = (): boolean => {
        if (this.reads.get(key) === read) this.reads.delete(key)
        // An invalidation landed while L2 was answering: the answer may be what it removed.
        return epoch === this.epoch
      }
      const timed = this.timed('l2.read', key)
      read = this.l2.get(key).then(
        (found) => {
          timed?.(found === undefined ? 'miss' : 'hit', found?.kind === 'response' ? found.body.length : 0)
          if (!settled()) return found
          if (found === undefined) {
            if (e !== undefined) this.l1.delete(key)
            return undefined
          }
          this.promote(key, found)
          return found
        },
        (err: unknown) => {
          timed?.('error', 0, err)
          // L2 being away is what health() reports; a failure is news.
          if (!(err instanceof StoreUnavailableError)) this.host?.report(err instanceof StoreError ? err : new StoreError('reading an entry from L2 failed', err))
          // An L1 entry past its L1 deadline but still fresh is better than the origin.
          return settled() ? e : undefined
        },
      )
      this.reads.set(key, read)
    }
    return read
  }

  fence(): Fence {
    return this.l2.fence()
  }

  set(key: string, entry: Entry, fence?: Fence): SetResult | Promise<SetResult> {
    if (this.l1.set(key, entry) !== true) return this.l2.set(key, entry, fence)
    this.l1Deadline.set(entry, Math.min(entry.expiresAt, this.now() + this.l1Ttl))
    // L1 has it: waiters and the next request are served from memory. Encoding and sending to
    // Redis happen on a later turn of the event loop, so they never delay the response that
    // produced the entry (a Fastify onSend hook stores before the reply is written).
    this.deferred.set(key, { entry, fence })
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.flush)
    }
    return true
  }

  async delete(key: string): Promise<void> {
    this.deferred.delete(key)
    this.l1.delete(key)
    await this.l2.delete(key)
  }

  /**
   * Clears matching entries from L1 at once, then from Redis and every other instance's L1;
   * resolves when all of that is done, and rejects (with a StoreError) when Redis could not do
   * its part. Such an invalidation is not lost: Redis runs it when it answers again.
   */
  async invalidate(sel: NormalizedSelectors, namespace: string): Promise<number> {
    for (const [key, w] of this.deferred) if (matchesSelectors(sel, w.entry)) this.deferred.delete(key)
    this.invalidatedLocally()
    const local = this.l1.invalidate(sel, namespace)
    const shared = await this.l2.invalidate(sel, namespace)
    return Math.max(local, shared)
  }

  size(): { entries: number; bytes: number } {
    return this.l1.size()
  }

  async clear(): Promise<void> {
    this.deferred.clear()
    this.invalidatedLocally()
    this.l1.clear()
    await this.l2.clear()
  }

  async close(): Promise<void> {
    await this.l1.close?.()
    await this.l2.close?.()
  }

  async health(): Promise<StoreHealth> {
    const [l1, l2] = await Promise.all([this.l1.health?.() ?? { kind: 'local', ok: true, ...this.l1.size() }, this.l2.health?.() ?? { kind: 'shared', ok: true }])
    return { kind: 'tiered', ok: l1.ok && l2.ok, l1, l2 }
  }

  /** Reads from L2 already under way may return what was just removed: they must not promote it, nor be joined. */
  private invalidatedLocally(): void {
    this.epoch++
    this.reads.clear()
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    const batch = [...this.deferred]
    this.deferred.clear()
    const failed = (err: unknown): void => {
      // L2 being away is what health() reports; every write it misses is not news.
      if (!(err instanceof StoreUnavailableError)) this.host?.report(err instanceof StoreError ? err : new StoreError('writing an entry to L2 failed', err))
    }
    for (const [key, w] of batch) {
      const timed = this.timed('l2.write', key)
      const bytes = w.entry.kind === 'response' ? w.entry.body.length : 0
      try {
        Promise.resolve(this.l2.set(key, w.entry, w.fence)).then(
          (r) => timed?.(r === true ? 'stored' : 'declined', bytes),
          (err: unknown) => {
            timed?.('error', bytes, err)
            failed(err)
          },
        )
      } catch (err) {
        timed?.('error', bytes, err)
        failed(err)
      }
    }
  }

  /**
   * Times one L2 call for the cache's health and, when observed, its event: call what it returns
   * with the result. Undefined when the cache wants neither (a store used on its own).
   */
  private timed(op: L2Event['op'], key: string): ((result: NonNullable<L2Event['result']>, bytes: number, error?: unknown) => void) | undefined {
    const host = this.host
    if (host?.l2Latency === undefined && host?.observer === undefined) return undefined
    const startedAt = performance.now()
    const obs = host.observer?.watching(op) === true ? host.observer : undefined
    const event = obs?.begin<L2Event>({ op, key, startedAt, durationMs: 0, result: undefined, bytes: 0 })
    if (event !== undefined) obs?.suspend(event)
    return (result, bytes, error) => {
      host.l2Latency?.(performance.now() - startedAt)
      if (obs === undefined || event === undefined) return
      event.result = result
      event.bytes = bytes
      if (error !== undefined) event.error = error
      obs.end(event)
    }
  }

  private now(): number {
    return this.host?.now() ?? Date.now()
  }

  /**
   * Keeps an entry read from L2 in L1. Its body is a view of the Redis reply (maybe of a much
   * larger socket buffer); the L1 copies what it keeps (MemoryStore: into its body arena).
   */
  private promote(key: string, entry: Entry): void {
    if (this.l1.set(key, entry) === true) this.l1Deadline.set(entry, Math.min(entry.expiresAt, this.now() + this.l1Ttl))
  }

  /** Another instance invalidated (or its messages may have been missed: ALL): clear L1 and tell the cache, so matching fills are not stored. */
  private onRemoteInvalidation(sel: NormalizedSelectors): void {
    const host = this.host
    if (host === undefined) return
    this.invalidatedLocally()
    for (const [key, w] of this.deferred) if (matchesSelectors(sel, w.entry)) this.deferred.delete(key)
    this.l1.invalidate(sel, host.namespace)
    host.remoteInvalidation(sel)
  }
}
