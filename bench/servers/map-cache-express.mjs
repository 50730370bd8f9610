// The hand-rolled Express cache the bench compares against: a Map keyed by URL, no stampede
// protection, no HTTP rules. A hit replays the stored head and body with one writeHead and one end.
export function mapCache(ttlMs = 300_000) {
  const store = new Map()
  return function mapCacheMiddleware(req, res, next) {
    if (req.method !== 'GET') return next()
    const key = req.originalUrl
    const hit = store.get(key)
    if (hit !== undefined && hit.expires > Date.now()) {
      res.writeHead(hit.status, hit.headers)
      return res.end(hit.body)
    }
    const end = res.end
    res.end = function (chunk, ...rest) {
      if (res.statusCode === 200 && chunk) store.set(key, { status: 200, headers: res.getHeaders(), body: chunk, expires: Date.now() + ttlMs })
      return end.call(this, chunk, ...rest)
    }
    next()
  }
}
