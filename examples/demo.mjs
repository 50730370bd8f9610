// The README's first command runs this: an Express app on the in-memory default cache, driven by
// this same process over real HTTP on 127.0.0.1. It prints what the cache does for a cold burst,
// what a hit costs next to a miss, an invalidation taking effect, and an origin that becomes slow
// and then fails while users keep getting fast answers (stale-while-revalidate, stale-if-error).
import { performance } from 'node:perf_hooks'
import { createCache } from '@corral/core'
import { corral, invalidate } from '@corral/express'
import express from 'express'

const ORIGIN_MS = 30
const reported = []
const cache = createCache({ ttl: '5m', onError: (e) => reported.push(e.code) })
const prices = new Map([['42', 19.99]])
let originCalls = 0

const app = express()
app.use(express.json())
app.use(corral(cache))
app.get('/products/:id', corral(cache, { tags: (req) => [`product:${req.params.id}`] }), async (req, res) => {
  originCalls++
  await new Promise((r) => setTimeout(r, ORIGIN_MS)) // a database round trip
  res.json({ id: req.params.id, price: prices.get(req.params.id) ?? 9.99, servedBy: `origin call #${originCalls}` })
})
app.put('/products/:id', invalidate(cache, (req) => ({ tags: [`product:${req.params.id}`] })), (req, res) => {
  prices.set(req.params.id, req.body.price)
  res.json({ ok: true })
})

// Scene 4: a deals page fresh for 1 s; stale, it is answered at once for 2 s while one background
// request refreshes it, and for an hour instead of an origin error.
let dealsMode = 'ok'
let dealsCalls = 0
app.get('/deals', corral(cache, { staleWhileRevalidate: '2s', staleIfError: '1h' }), async (req, res) => {
  dealsCalls++
  if (dealsMode === 'failing') return res.status(500).json({ error: 'database down' })
  await new Promise((r) => setTimeout(r, dealsMode === 'slow' ? 1000 : ORIGIN_MS))
  res.set('cache-control', 'max-age=1').json({ deals: ['socks', 'tea'], servedBy: `deals call #${dealsCalls}` })
})

const server = app.listen(0, '127.0.0.1')
await new Promise((r) => server.once('listening', r))
const base = `http://127.0.0.1:${server.address().port}`

async function get(path) {
  const t = performance.now()
  const res = await fetch(base + path)
  const body = await res.json()
  return { ms: performance.now() - t, status: res.status, cache: res.headers.get('x-cache'), age: res.headers.get('age'), body }
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms) => `${ms.toFixed(2)} ms`

console.log(`Corral demo: Express with createCache({ ttl: '5m' }), origin takes ~${ORIGIN_MS} ms\n`)

console.log('1. Cold burst: 200 concurrent GET /products/42 on an empty cache')
const burst = await Promise.all(Array.from({ length: 200 }, () => get('/products/42')))
const byStatus = {}
for (const r of burst) byStatus[r.cache] = (byStatus[r.cache] ?? 0) + 1
const afterBurst = cache.stats()
console.log(`   origin calls: ${originCalls}`)
console.log(`   ${afterBurst.coalesced} waited for that call, ${199 - afterBurst.coalesced} arrived after it was stored`)
console.log(`   X-Cache: ${Object.entries(byStatus).map(([k, v]) => `${k} ${v}`).join(', ')}`)
console.log(`   bodies: ${new Set(burst.map((r) => JSON.stringify(r.body))).size} distinct (${burst[0].body.servedBy})\n`)

console.log('2. Latency: 100 sequential misses (distinct products) vs 100 hits (product 42)')
const misses = []
for (let i = 0; i < 100; i++) misses.push((await get(`/products/${1000 + i}`)).ms)
const hits = []
for (let i = 0; i < 100; i++) hits.push((await get('/products/42')).ms)
const mMiss = median(misses)
const mHit = median(hits)
console.log(`   median miss: ${fmt(mMiss)}   median hit: ${fmt(mHit)}   (${(mMiss / mHit).toFixed(0)}x faster)\n`)

console.log('3. Invalidation: PUT /products/42 { price: 24.5 } drops the tag product:42')
const before = await get('/products/42')
console.log(`   before: ${before.cache} (Age ${before.age}) price ${before.body.price}`)
await fetch(`${base}/products/42`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ price: 24.5 }) })
const after = await get('/products/42')
const again = await get('/products/42')
console.log(`   after:  ${after.cache} price ${after.body.price} (${after.body.servedBy})`)
console.log(`   again:  ${again.cache} price ${again.body.price}\n`)

console.log('4. The origin becomes slow (1 s), then fails (500): GET /deals, fresh for 1 s')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const tally = (rs) => {
  const by = {}
  for (const r of rs) by[r.cache] = (by[r.cache] ?? 0) + 1
  return `${Object.entries(by).map(([k, v]) => `${k} ${v}`).join(', ')}, slowest ${fmt(Math.max(...rs.map((r) => r.ms)))}`
}
await get('/deals')
await sleep(1100)
dealsMode = 'slow'
const storedBefore = cache.stats().stored
const slow = await Promise.all(Array.from({ length: 20 }, () => get('/deals')))
console.log(`   slow origin, 20 concurrent:     ${tally(slow)}; one refresh runs in the background`)
while (cache.stats().stored === storedBefore) await sleep(20)
await sleep(1100)
dealsMode = 'failing'
const failing = []
for (let i = 0; i < 5; i++) failing.push(await get('/deals'))
console.log(`   failing origin, 5 sequential:   ${tally(failing)} (a refresh runs, and fails)`)
await sleep(2100)
const past = []
for (let i = 0; i < 5; i++) past.push(await get('/deals'))
console.log(`   past the 2 s window, 5 more:    ${tally(past)}, status ${past.map((r) => r.status).join(' ')} (stale-if-error)`)
console.log(`   origin calls for /deals: ${dealsCalls}; errors reported to onError: ${reported.length} (${[...new Set(reported)].join(', ')})\n`)

const s = cache.stats()
console.log(
  `stats: hits ${s.hits}, stale ${s.stale}, coalesced ${s.coalesced}, misses ${s.misses}, stored ${s.stored}, bypassed ${s.bypassed}, ` +
    `revalidations ${s.revalidations} (${s.revalidationFailures} failed), invalidated ${s.invalidated}, entries ${s.entries} (${(s.bytes / 1024).toFixed(1)} KiB)`,
)
server.close()
await cache.close()
