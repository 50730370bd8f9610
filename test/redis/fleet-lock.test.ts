import { randomBytes } from 'node:crypto'
import type { FillLock } from '@corral/core/store'
import { expect, it } from 'vitest'
import { fileRedis, healthy, instance, xcache } from '../helpers/fleet.js'
import { signal, until } from '../helpers/scenario.js'

// Found while making the multi-instance stampede test reliable ("100 concurrent requests ...
// exactly one origin call: expected 2 to be 1"): instance B reads Redis (a miss) while A's origin
// call is under way, and asks for the fleet lock only after A has stored the entry and let the
// lock go. B then took the free lock and called the origin a second time. Now a request that
// takes the lock looks at Redis once more before it calls the origin.

const redis = fileRedis()
const { cleanups } = redis

it('a lock taken after another instance filled the key is given back, and the entry served: one origin call', async () => {
  const ns = `lock-${randomBytes(5).toString('hex')}`
  const originGate = signal()
  const originEntered = signal()
  let calls = 0
  const routes = (name: string) => [
    {
      method: 'GET' as const,
      path: '/p',
      handler: async () => {
        calls++
        originEntered.resolve()
        if (name === 'A') await originGate.promise
        return { headers: { 'content-type': 'text/plain' }, body: `from ${name}` }
      },
    },
  ]
  const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes: routes('A') }, cleanups)
  const b = await instance('B', { cache: { redis: redis.server.url, namespace: ns }, routes: routes('B') }, cleanups)
  await healthy([a, b], 5000)

  // B is slow between its read of Redis and its lock request: its request waits for our signal.
  const locks = (b.cache as unknown as { store: { locks: FillLock } }).store.locks
  const acquire = locks.acquire.bind(locks)
  const acquireGate = signal()
  const acquireCalled = signal()
  locks.acquire = async (key, ttl) => {
    acquireCalled.resolve()
    await acquireGate.promise
    return acquire(key, ttl)
  }

  const onA = a.get('/p')
  await originEntered.promise
  const onB = b.get('/p')
  await acquireCalled.promise
  originGate.resolve()
  expect(xcache(await onA)).toBe('MISS')
  // A's entry is in Redis and its lock is gone: the window in which B used to call the origin.
  const keys = async () => redis.raw.keys(`${ns}:v1:*`)
  await until(async () => (await keys()).some((k) => /:v1:[\w-]{43}$/.test(k)) && !(await keys()).some((k) => k.endsWith(':lock')), 5000, "A's entry stored and its lock released")
  acquireGate.resolve()
  const second = await onB
  expect(xcache(second)).toBe('HIT')
  expect(second.text).toBe('from A')
  expect(calls).toBe(1)
  // B gave the lock back.
  await until(async () => !(await keys()).some((k) => k.endsWith(':lock')), 5000, "B's lock released")
})
