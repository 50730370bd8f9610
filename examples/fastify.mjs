// A minimal Fastify app with Corral: `pnpm --filter corral-examples fastify`, then
// curl -i localhost:3001/products/1 (twice) and curl -X PUT localhost:3001/products/1
import { createCache } from '@corral/core'
import corralPlugin from '@corral/fastify'
import Fastify from 'fastify'

const cache = createCache({ ttl: '5m' })
const app = Fastify()
await app.register(corralPlugin, { cache })
app.get('/products/:id', { config: { cache: { ttl: '10m', tags: (req) => [`product:${req.params.id}`] } } }, async (req) => {
  return { id: req.params.id, at: new Date().toISOString() }
})
app.put('/products/:id', { config: { invalidate: (req) => ({ tags: [`product:${req.params.id}`] }) } }, async () => ({ ok: true }))
app.get('/stats', { config: { cache: false } }, async () => cache.stats())
await app.listen({ port: Number(process.env.PORT ?? 3001), host: '127.0.0.1' })
console.log('listening on http://127.0.0.1:3001')
