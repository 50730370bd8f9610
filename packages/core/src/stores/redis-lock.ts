import { randomBytes } from 'node:crypto'
import { MAX_TIMER_MS } from '../model/duration.js'
import type { RedisBus } from './redis-bus.js'
import { UNAVAILABLE, type RedisGateway } from './redis-gateway.js'
import type { FillLock, FlightOutcome, LockGrant } from './types.js'

/** What the lock needs of the Redis store that owns it. */
export interface LockDeps {
  readonly gateway: RedisGateway
  readonly bus: RedisBus
  /** Resolves once every entry write under way has finished. */
  writesSettled(): Promise<void>
  /** Counts a value Corral did not write where it keeps its own. */
  foreignValue(detail: string): void
}

const CHANNEL = 'fill'
const OUTCOMES: ReadonlySet<unknown> = new Set<FlightOutcome>(['stored', 'not-stored', 'retry', 'failed'])

// Takes the lock, or answers who holds it. A token says how long its lock may live
// (`<ttlMs>.<random>`), so a lock Corral did not write is recognised and replaced instead of
// being waited on: a value of another shape or type, no TTL, or a TTL longer than its token
// declares (a planted key would otherwise hold every cold request on it for lockTimeout).
// Answers {1} taken, {2} taken over from such a key, {0, holder} held.
const ACQUIRE = `local ok = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX')
if ok then return {1} end
local holder = false
if redis.call('TYPE', KEYS[1]).ok == 'string' then holder = redis.call('GET', KEYS[1]) end
local declared = holder and tonumber(string.match(holder, '^(%d+)%.[%w_%-]+$'))
local ttl = redis.call('PTTL', KEYS[1])
if not declared or declared > tonumber(ARGV[3]) or ttl < 0 or ttl > declared then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2}
end
return {0, holder}`

// Deletes the lock only if it still holds our token: a lock that expired and was taken by another
// instance is not ours to release.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface Waiter {
  readonly holder: string
  readonly done: (outcome: FlightOutcome) => void
}

/**
 * The fleet-wide stampede lock on Redis: a script that takes `<key>:lock` with `SET NX PX` (or
 * replaces a lock Corral did not write), a compare-and-delete script to release it, and a pub/sub
 * message (`<ns>:v1:fill`) that tells waiting instances how the fill went, so they never poll
 * Redis. The lock expires by itself if its holder dies; a holder that overruns gives it up.
 */
export class RedisLock implements FillLock {
  private readonly waiters = new Map<string, Set<Waiter>>()

  constructor(private readonly deps: LockDeps) {
    deps.bus.subscribe(CHANNEL, (message) => this.onMessage(message))
  }

  async acquire(key: string, ttlMs: number): Promise<LockGrant> {
    const token = `${ttlMs}.${randomBytes(12).toString('base64url')}`
    const r = await this.deps.gateway.command((c) => c.eval(ACQUIRE, 1, lockKey(key), token, ttlMs, MAX_TIMER_MS), 'read', 'taking a fill lock in Redis failed')
    if (r === UNAVAILABLE) {
      // The script may still run (a paused or slow Redis answers late): undo it right behind, on
      // the same connection, so that no lock outlives this request with nobody to release it.
      this.deps.gateway.sendAnyway((c) => c.eval(RELEASE, 1, lockKey(key), token))
      return { state: 'unavailable' }
    }
    const [code, holder] = Array.isArray(r) ? (r as unknown[]) : []
    if (code === 2) this.deps.foreignValue(`${lockKey(key)} held a lock Corral did not write`)
    if (code === 1 || code === 2) return { state: 'acquired', key, token }
    return typeof holder === 'string' ? { state: 'held', holder } : { state: 'unavailable' }
  }

  release(grant: LockGrant & { state: 'acquired' }, outcome: FlightOutcome): void {
    const send = (): void => {
      this.deps.gateway.sendAnyway((c) => c.eval(RELEASE, 1, lockKey(grant.key), grant.token))
      this.deps.bus.publish(CHANNEL, JSON.stringify({ k: grant.key, t: grant.token, s: outcome }))
    }
    if (outcome === 'retry') return send()
    // On the next turn, once TieredStore has started the entry's write (its writes are deferred
    // the same way), and after that write has finished: a waiter told `stored` finds the entry in
    // Redis. Sent even while the circuit is open: a lock left behind would make others wait for it.
    setImmediate(() => void this.deps.writesSettled().then(send))
  }

  wait(key: string, holder: string, ms: number): Promise<FlightOutcome> {
    return new Promise<FlightOutcome>((resolve) => {
      let set = this.waiters.get(key)
      if (set === undefined) this.waiters.set(key, (set = new Set()))
      const waiters = set
      const waiter: Waiter = {
        holder,
        done: (outcome) => {
          if (!waiters.delete(waiter)) return
          clearTimeout(timer)
          if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key)
          resolve(outcome)
        },
      }
      const timer = setTimeout(() => waiter.done('retry'), ms)
      waiters.add(waiter)
      // The holder may have finished before we listened: if the lock is no longer its, look again.
      void this.deps.gateway.command((c) => c.get(lockKey(key)), 'read', 'reading a fill lock in Redis failed').then((v) => {
        if (v === UNAVAILABLE) waiter.done('retry')
        else if (v !== holder) waiter.done('stored')
      })
    })
  }

  private onMessage(message: string): void {
    let m: unknown
    try {
      m = JSON.parse(message)
    } catch {
      return
    }
    if (typeof m !== 'object' || m === null) return
    const { k, t, s } = m as { k?: unknown; t?: unknown; s?: unknown }
    if (typeof k !== 'string' || typeof t !== 'string' || !OUTCOMES.has(s)) return
    const waiters = this.waiters.get(k)
    if (waiters === undefined) return
    for (const w of [...waiters]) if (w.holder === t) w.done(s as FlightOutcome)
  }
}

function lockKey(key: string): string {
  return `${key}:lock`
}
