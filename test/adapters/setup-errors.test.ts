import { ConfigError, createCache } from '@corral/core'
import corralPlugin from '@corral/fastify'
import fastify5 from 'fastify5'
import { describe, expect, it } from 'vitest'

// Mistakes a new user makes in the first hour, answered at start-up with what is wrong.

describe('set-up mistakes', () => {
  it('registering the Fastify plugin twice in one context is refused with a ConfigError, at once', async () => {
    // A plugin timeout longer than the test's: only the plugin's own error can end this in time.
    const app = fastify5({ logger: false, pluginTimeout: 600_000 })
    const cache = createCache({ ttl: '1m' })
    await app.register(corralPlugin, { cache })
    await expect(app.register(corralPlugin, { cache })).rejects.toThrow(/already registered in this context/)
    await app.close().catch(() => undefined)
    await cache.close()
  })

  it.each([[300], [1], [999.5]])('a bare number ttl under a second (%s) is refused: it reads as milliseconds', (ttl) => {
    expect(() => createCache({ ttl })).toThrow(ConfigError)
    expect(() => createCache({ ttl })).toThrow(/'\d+(\.\d+)?s' for seconds/)
    expect(() => createCache({ ttl: `${ttl}ms` as '1ms' })).not.toThrow()
    expect(() => createCache({ ttl: 1000 })).not.toThrow()
  })
})
