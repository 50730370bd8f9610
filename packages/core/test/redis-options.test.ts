import { describe, expect, it } from 'vitest'
import { ConfigError, createCache, MemoryStore, RedisStore, TieredStore, type CacheOptions } from '../src/index.js'
import { CircuitBreaker } from '../src/stores/breaker.js'

const bad = (o: unknown) => o as CacheOptions
// Nothing in this file talks to a Redis server: port 1 refuses connections, and lazyConnect
// keeps the main connection from even trying.
const lazy = { lazyConnect: true, host: '127.0.0.1', port: 1 }

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

describe('Redis options are checked at construction, naming the option', () => {
  it.each<[string, unknown, RegExp]>([
    ['redis 42', { redis: 42 }, /options\.redis/],
    ['redis http URL', { redis: 'http://127.0.0.1:6379' }, /options\.redis.*redis:\/\//],
    ['l2.timeout abc', { redis: lazy, l2: { timeout: 'abc' } }, /options\.l2\.timeout.*'abc'/],
    ['l2.timeout 0', { redis: lazy, l2: { timeout: 0 } }, /options\.l2\.timeout/],
    ['l2.failureThreshold 0', { redis: lazy, l2: { failureThreshold: 0 } }, /options\.l2\.failureThreshold/],
    ['l2.cooldown -1', { redis: lazy, l2: { cooldown: -1 } }, /options\.l2\.cooldown/],
    ['l2.maxEntryBytes 1.5', { redis: lazy, l2: { maxEntryBytes: 1.5 } }, /options\.l2\.maxEntryBytes/],
    ['l2.l1Ttl x', { redis: lazy, l2: { l1Ttl: 'x' } }, /options\.l2\.l1Ttl/],
    ['l2 typo', { redis: lazy, l2: { timout: 50 } }, /options\.l2\.timout/],
    ['l2.redis', { redis: lazy, l2: { redis: lazy } }, /options\.l2\.redis/],
    ['l2 not an object', { redis: lazy, l2: 5 }, /options\.l2/],
    ['signingKeys string', { redis: lazy, signingKeys: 'secret-secret-secret' }, /options\.signingKeys/],
    ['signingKeys short', { redis: lazy, signingKeys: ['short'] }, /options\.signingKeys\[0\].*16 bytes/],
    ['signingKeys number', { redis: lazy, signingKeys: ['0123456789abcdef', 7] }, /options\.signingKeys\[1\]/],
    ['signingKeys with the signing key unset', { redis: lazy, signingKeys: [undefined, '0123456789abcdef'] }, /options\.signingKeys\[0\].*not set/],
    ['l2 without redis', { l2: { timeout: 50 } }, /options\.redis/],
    ['signingKeys without redis', { signingKeys: ['0123456789abcdef'] }, /options\.redis/],
    ['redis and store', { redis: lazy, store: new MemoryStore() }, /options\.redis.*options\.store/],
  ])('%s', (_name, options, message) => {
    expect(configError(() => createCache(bad(options))).message).toMatch(message)
  })

  it('RedisStore and TieredStore name their own options', () => {
    expect(configError(() => new RedisStore({ redis: lazy, timeout: 'x' } as never)).message).toMatch(/^expected timeout/)
    expect(configError(() => new RedisStore({ redis: lazy, nope: 1 } as never)).message).toMatch(/unknown option nope/)
    const l2 = new RedisStore({ redis: lazy })
    expect(configError(() => new TieredStore(new MemoryStore(), l2, { l1Ttl: 0 })).message).toMatch(/l1Ttl/)
    l2.client.disconnect()
  })

  it('an older signing key that is not set (an unset environment variable) is skipped', async () => {
    for (const older of [undefined, '']) {
      const cache = createCache({ redis: lazy, signingKeys: ['0123456789abcdef', older] })
      await cache.close()
    }
  })

  it('good options build a tiered cache whose defaults match the documentation', async () => {
    const cache = createCache({ redis: lazy, signingKeys: ['0123456789abcdef', Buffer.alloc(16, 1)] })
    const health = await cache.health()
    expect(health.status).toBe('degraded') // never connected: lazyConnect
    expect(health.store).toMatchObject({ kind: 'tiered', ok: false, l2: { kind: 'redis', breaker: 'closed', roundTrip: { ok: false } } })
    await cache.close()
    expect((await cache.health()).status).toBe('closed')
    const store = new RedisStore({ redis: lazy })
    expect(store.timeoutMs).toBe(50)
    expect(new TieredStore(new MemoryStore(), store).l1Ttl).toBe(10_000)
    store.client.disconnect()
  })

  it('a client Corral did not create keeps its options and is not closed by cache.close()', async () => {
    const own = new RedisStore({ redis: lazy }).client
    const before = { ...own.options }
    const cache = createCache({ redis: own })
    await cache.close()
    expect(own.options).toEqual(before)
    expect(own.status).toBe('wait') // never connected, never ended by Corral
    own.disconnect()
  })
})

describe('CircuitBreaker', () => {
  function clock() {
    let t = 0
    return { now: () => t, advance: (ms: number) => void (t += ms) }
  }

  it('opens after threshold failures in a row, and a success in between resets the count', () => {
    const c = clock()
    const b = new CircuitBreaker(3, 1000, c.now)
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    expect(b.state).toBe('closed')
    expect(b.allow()).toBe(true)
    b.failure()
    expect(b.state).toBe('open')
    expect(b.allow()).toBe(false)
  })

  it('lets one probe through after the cooldown; success closes, failure reopens for another cooldown', () => {
    const c = clock()
    const b = new CircuitBreaker(1, 1000, c.now)
    b.failure()
    c.advance(999)
    expect(b.allow()).toBe(false)
    c.advance(1)
    expect(b.allow()).toBe(true)
    expect(b.state).toBe('half-open')
    expect(b.allow()).toBe(false) // one probe at a time
    b.failure()
    expect(b.state).toBe('open')
    c.advance(500)
    expect(b.allow()).toBe(false)
    c.advance(500)
    expect(b.allow()).toBe(true)
    b.success()
    expect(b.state).toBe('closed')
    expect(b.allow()).toBe(true)
    expect(b.allow()).toBe(true)
  })
})
