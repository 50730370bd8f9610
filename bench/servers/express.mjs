// Express bench server. BENCH_EXPRESS=4|5 picks the major version, BENCH_CACHE the cache in front
// of the routes: none | map (servers/map-cache-express.mjs) | apicache | corral.
// Routes: /data (the constant route: res.send of a prebuilt 2 KB JSON), /raw (the same bytes with
// one writeHead and one end: the floor), /nostore (never cacheable), /slow (answers after 50 ms).
import { cacheKind, JSON_2K, JSON_2K_BUFFER, JSON_TYPE, origin, reportReady, SLOW_ORIGIN_MS, unknownCache } from './harness.mjs'
import { mapCache } from './map-cache-express.mjs'

const major = process.env.BENCH_EXPRESS ?? '5'
const { default: express } = await import(major === '4' ? 'express4' : 'express5')
const RAW_HEADERS = { 'content-type': JSON_TYPE, 'content-length': String(JSON_2K_BUFFER.length) }

const app = express()
let cacheStats
if (cacheKind === 'map') {
  app.use(mapCache())
} else if (cacheKind === 'apicache') {
  const { default: apicache } = await import('apicache')
  app.use(apicache.middleware('5 minutes'))
} else if (cacheKind === 'corral') {
  const { createCache } = await import('@corral/core')
  const { corral } = await import('@corral/express')
  const cache = createCache({ ttl: '5m' })
  cacheStats = () => cache.stats()
  app.use(corral(cache))
} else if (cacheKind !== 'none') {
  unknownCache('express')
}

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

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => reportReady(server.address().port, cacheStats))
