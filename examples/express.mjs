// A minimal Express app with Corral: `pnpm --filter corral-examples express`, then
// curl -i localhost:3000/products/1 (twice) and curl -X PUT localhost:3000/products/1
import { createCache } from '@corral/core'
import { corral, invalidate } from '@corral/express'
import express from 'express'

const cache = createCache({ ttl: '5m' })
const app = express()
app.use(corral(cache))
app.get('/products/:id', corral(cache, { ttl: '10m', tags: (req) => [`product:${req.params.id}`] }), (req, res) => {
  res.json({ id: req.params.id, at: new Date().toISOString() })
})
app.put('/products/:id', invalidate(cache, (req) => ({ tags: [`product:${req.params.id}`] })), (req, res) => {
  res.json({ ok: true })
})
app.get('/stats', (req, res) => res.json(cache.stats()))
app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => console.log('listening on http://127.0.0.1:3000'))
