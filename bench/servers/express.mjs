// Express bench server. BENCH_EXPRESS=4|5 picks the major version, BENCH_CACHE the cache in front
// of the routes: none | map (servers/map-cache-express.mjs) | apicache | corral | corral-l2
// (Corral with no L1: a RedisStore, so every hit is read from Redis) | redis-raw (a middleware that
// answers with `getBuffer` of a 2 KB body the server stores in Redis at start-up: the least a
// hand-rolled Redis cache can do). The last two need BENCH_REDIS_URL (the bench's own Redis).
// Routes: /data (the constant route: res.send of a prebuilt 2 KB JSON), /raw (the same bytes with
// one writeHead and one end: the floor), /nostore (never cacheable), /slow (answers after 50 ms),
// /cliff (answers after 50 ms, fresh for BENCH_CLIFF_TTL_S: the expiry-cliff scenario).
// BENCH_COMPRESSION=none (default) | outside | inside: the `compression` middleware (threshold 0)
// mounted before the cache (every response, hits included, is compressed as it leaves) or after it
// (the cache stores the compressed response, once per coding, and a hit replays it).
import { cacheKind, CLIFF_TTL_S, freshnessOptions, observeOptions, JSON_2K, JSON_2K_BUFFER, JSON_TYPE, origin, reportReady, SLOW_ORIGIN_MS, unknownCache } from './harness.mjs'
import { mapCache } from './map-cache-express.mjs'

const major = process.env.BENCH_EXPRESS ?? '5'
const { default: express } = await import(major === '4' ? 'express4' : 'express5')
const RAW_HEADERS = { 'content-type': JSON_TYPE, 'content-length': String(JSON_2K_BUFFER.length) }
/** Key prefix of the redis-raw mode's bodies (the URL follows). */
const RAW_PREFIX = 'bench:raw:'

function redisUrl() {
  const url = process.env.BENCH_REDIS_URL
  if (!url) {
    console.error(`express bench server: BENCH_CACHE=${cacheKind} needs BENCH_REDIS_URL`)
    process.exit(2)
  }
  return url
}

function ready(client) {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis at ${redisUrl()} not ready within 5 s (${client.status})`)), 5_000)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

const compressionMode = process.env.BENCH_COMPRESSION ?? 'none'
if (!['none', 'outside', 'inside'].includes(compressionMode)) {
  console.error(`express bench server: unknown BENCH_COMPRESSION=${compressionMode}`)
  process.exit(2)
}
const compress = compressionMode === 'none' ? undefined : (await import('compression')).default({ threshold: 0 })

const app = express()
if (compressionMode === 'outside') app.use(compress)
let cacheStats
if (cacheKind === 'map') {
  app.use(mapCache())
} else if (cacheKind === 'apicache') {
  const { default: apicache } = await import('apicache')
  app.use(apicache.middleware(`${Math.min(300, CLIFF_TTL_S)} seconds`))
} else if (cacheKind === 'corral') {
  const { createCache } = await import('@corral/core')
  const { corral } = await import('@corral/express')
  const cache = createCache({ ttl: '5m', ...freshnessOptions(), ...(await observeOptions()), ...JSON.parse(process.env.BENCH_CORRAL_OPTIONS ?? '{}') })
  cacheStats = () => cache.stats()
  app.use(corral(cache))
} else if (cacheKind === 'corral-l2') {
  const { createCache, RedisStore } = await import('@corral/core')
  const { corral } = await import('@corral/express')
  const store = new RedisStore({ redis: redisUrl(), timeout: 50 })
  // A read before the connection is up would be a miss: listen only once Redis is ready.
  await ready(store.client)
  const cache = createCache({ ttl: '5m', store })
  cacheStats = () => cache.stats()
  app.use(corral(cache))
} else if (cacheKind === 'redis-raw') {
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl())
  await redis.set(`${RAW_PREFIX}/data`, JSON_2K_BUFFER, 'PX', 300_000)
  app.use((req, res, next) => {
    if (req.method !== 'GET') return next()
    redis.getBuffer(RAW_PREFIX + req.originalUrl).then((body) => {
      if (body === null) return next()
      res.writeHead(200, RAW_HEADERS)
      res.end(body)
    }, next)
  })
} else if (cacheKind !== 'none') {
  unknownCache('express')
}
if (compressionMode === 'inside') app.use(compress)

app.get('/data', (req, res) => {
  origin.data++
  res.set('content-type', JSON_TYPE)
  res.send(JSON_2K)
})
app.get('/raw', (req, res) => {
  origin.raw++
  res.writeHead(200, RAW_HEADERS)
  res.end(JSON_2K_BUFFER)
})
app.get('/nostore', (req, res) => {
  origin.nostore++
  res.set('cache-control', 'no-store')
  res.set('content-type', JSON_TYPE)
  res.send(JSON_2K)
})
app.get('/slow', (req, res) => {
  origin.slow++
  setTimeout(() => {
    res.set('content-type', JSON_TYPE)
    res.send(JSON_2K)
  }, SLOW_ORIGIN_MS)
})

app.get('/cliff', (req, res) => {
  origin.cliff++
  setTimeout(() => {
    res.set('content-type', JSON_TYPE)
    res.set('cache-control', `max-age=${CLIFF_TTL_S}`)
    res.send(JSON_2K)
  }, SLOW_ORIGIN_MS)
})

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => reportReady(server.address().port, cacheStats))
