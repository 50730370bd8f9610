// The README's first command runs this: an Express app on the in-memory default cache, driven by
// this same process over real HTTP on 127.0.0.1. It prints what the cache does for a cold burst,
// what a hit costs next to a miss, and an invalidation taking effect.
import { performance } from 'node:perf_hooks'
import { createCache } from '@corral/core'
import { corral, invalidate } from '@corral/express'
import express from 'express'

const ORIGIN_MS = 30
const cache = createCache({ ttl: '5m' })
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

const server = app.listen(0, '127.0.0.1')
await new Promise((r) => server.once('listening', r))
const base = `http://127.0.0.1:${server.address().port}`

async function get(path) {
  const t = performance.now()
  const res = await fetch(base + path)
  const body = await res.json()
  return { ms: performance.now() - t, cache: res.headers.get('x-cache'), age: res.headers.get('age'), body }
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

const s = cache.stats()
console.log(
  `stats: hits ${s.hits}, coalesced ${s.coalesced}, misses ${s.misses}, stored ${s.stored}, bypassed ${s.bypassed}, ` +
    `invalidated ${s.invalidated}, entries ${s.entries} (${(s.bytes / 1024).toFixed(1)} KiB)`,
)
server.close()
await cache.close()
