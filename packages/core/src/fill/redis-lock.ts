import { randomBytes } from 'node:crypto'
import { UNAVAILABLE, type RedisStore } from '../stores/redis.js'
import type { FillLock, LockGrant } from './lock.js'

const CHANNEL = 'fill'
// Deletes the lock only if it still holds our token: a lock that expired and was taken by another
// instance is not ours to release.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/**
 * The fleet-wide stampede lock on Redis: `SET <key>:lock <token> NX PX <ttl>` to take it, a
 * compare-and-delete script to release it, and a pub/sub message (`<ns>:v1:fill`) to tell waiting
 * instances that the entry has landed, so they never poll Redis. The lock expires by itself if
 * its holder dies; waiters give up after their deadline and go to the origin.
 */
export class RedisLock implements FillLock {
  private readonly waiters = new Map<string, Set<(stored: boolean) => void>>()

  constructor(private readonly store: RedisStore) {
    store.subscribe(CHANNEL, (message) => this.onMessage(message))
  }

  async acquire(key: string, ttlMs: number): Promise<LockGrant> {
    const token = randomBytes(12).toString('base64url')
    const r = await this.store.command((c) => c.set(lockKey(key), token, 'PX', ttlMs, 'NX'), 'read')
    if (r === UNAVAILABLE) {
      // The SET may still run (a paused or slow Redis answers late): undo it right behind, on
      // the same connection, so that no lock outlives this request with nobody to release it.
      this.store.sendAnyway((c) => c.eval(RELEASE, 1, lockKey(key), token))
      return { state: 'unavailable' }
    }
    return r === 'OK' ? { state: 'acquired', key, token } : { state: 'held' }
  }

  release(grant: LockGrant & { state: 'acquired' }, stored: boolean): void {
    // On the next turn, after TieredStore has sent the entry (its writes are deferred the same
    // way), and on the same connection: a waiter told `stored` finds the entry in Redis. Sent
    // even while the circuit is open: a lock left behind would make other requests wait for it.
    setImmediate(() => {
      this.store.sendAnyway((c) => c.eval(RELEASE, 1, lockKey(grant.key), grant.token))
      this.store.publish(CHANNEL, JSON.stringify({ k: grant.key, s: stored }))
    })
  }

  wait(key: string, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let set = this.waiters.get(key)
      if (set === undefined) this.waiters.set(key, (set = new Set()))
      const waiters = set
      const done = (stored: boolean): void => {
        if (!waiters.delete(done)) return
        clearTimeout(timer)
        if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key)
        resolve(stored)
      }
      const timer = setTimeout(() => done(false), ms)
      waiters.add(done)
      // The holder may have finished before we listened: if the lock is gone, look again now.
      void this.store.command((c) => c.exists(lockKey(key)), 'read').then((n) => {
        if (n === 0) done(true)
        else if (n === UNAVAILABLE) done(false)
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
    const { k, s } = m as { k?: unknown; s?: unknown }
    if (typeof k !== 'string') return
    const waiters = this.waiters.get(k)
    if (waiters === undefined) return
    for (const w of [...waiters]) w(s === true)
  }
}

function lockKey(key: string): string {
  return `${key}:lock`
}
