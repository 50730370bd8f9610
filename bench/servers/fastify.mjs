// Fastify 5 bench server. BENCH_CACHE picks the cache in front of the routes:
// none | map (servers/map-cache-fastify.mjs, a minimal onRequest Map cache) | lcache (fastify-lcache) | corral.
// Routes: /data (the constant route: a prebuilt 2 KB JSON string), /nostore (never cacheable),
// /slow (answers after 50 ms), /cliff (answers after 50 ms, fresh for BENCH_CLIFF_TTL_S: the
// expiry-cliff scenario). BENCH_FRESHNESS (plain, swr, early) picks Corral's freshness options.
import Fastify from 'fastify'
import { cacheKind, CLIFF_TTL_S, freshnessOptions, observeOptions, JSON_2K, JSON_TYPE, origin, reportReady, SLOW_ORIGIN_MS, unknownCache } from './harness.mjs'
import { mapCache } from './map-cache-fastify.mjs'

const app = Fastify({ logger: false })
let cacheStats
if (cacheKind === 'map') {
  mapCache(app)
} else if (cacheKind === 'lcache') {
  const { default: lcache } = await import('fastify-lcache')
  await app.register(lcache.default ?? lcache, { ttlInMinutes: Math.min(300, CLIFF_TTL_S) / 60 })
} else if (cacheKind === 'corral') {
  const { createCache } = await import('@corral/core')
  const { default: corral } = await import('@corral/fastify')
  const cache = createCache({ ttl: '5m', ...freshnessOptions(), ...(await observeOptions()), ...JSON.parse(process.env.BENCH_CORRAL_OPTIONS ?? '{}') })
  cacheStats = () => cache.stats()
  await app.register(corral, { cache })
} else if (cacheKind !== 'none') {
  unknownCache('fastify')
}

app.get('/data', (req, reply) => {
  origin.data++
  reply.header('content-type', JSON_TYPE).send(JSON_2K)
})
app.get('/nostore', (req, reply) => {
  origin.nostore++
  reply.header('cache-control', 'no-store').header('content-type', JSON_TYPE).send(JSON_2K)
})
app.get('/slow', async (req, reply) => {
  origin.slow++
  await new Promise((resolve) => setTimeout(resolve, SLOW_ORIGIN_MS))
  reply.header('content-type', JSON_TYPE)
  return JSON_2K
})

app.get('/cliff', async (req, reply) => {
  origin.cliff++
  await new Promise((resolve) => setTimeout(resolve, SLOW_ORIGIN_MS))
  reply.header('content-type', JSON_TYPE).header('cache-control', `max-age=${CLIFF_TTL_S}`)
  return JSON_2K
})

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
reportReady(app.server.address().port, cacheStats)
