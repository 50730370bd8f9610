// The hand-rolled Fastify cache the bench compares against: a Map keyed by URL, looked up in
// onRequest and filled in onSend; no stampede protection, no HTTP rules.
export function mapCache(app, ttlMs = 300_000) {
  const store = new Map()
  app.decorateRequest('mapCacheHit', false)
  app.addHook('onRequest', (req, reply, done) => {
    const hit = req.method === 'GET' ? store.get(req.url) : undefined
    if (hit === undefined || hit.expires <= Date.now()) return done()
    req.mapCacheHit = true
    reply.code(hit.status).headers(hit.headers).send(hit.body)
  })
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.mapCacheHit && req.method === 'GET' && reply.statusCode === 200 && typeof payload === 'string') {
      store.set(req.url, { status: 200, headers: reply.getHeaders(), body: payload, expires: Date.now() + ttlMs })
    }
    done(null, payload)
  })
}
