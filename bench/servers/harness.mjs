// What every bench server shares. A server is a child process started by lib/server.mjs: it
// listens on a free port of 127.0.0.1, tells its parent { type: 'ready', port, pid } over IPC,
// answers { type: 'stats' } with how often each origin route ran (and the cache's own stats),
// and exits on { type: 'stop' } (a normal exit, so `--cpu-prof` writes its profile).
import { JSON_2K, JSON_2K_BUFFER, JSON_TYPE, SLOW_ORIGIN_MS } from '../lib/payload.mjs'

export { JSON_2K, JSON_2K_BUFFER, JSON_TYPE, SLOW_ORIGIN_MS }

/** Origin calls per route; a cache hit never touches these. */
export const origin = { data: 0, raw: 0, nostore: 0, slow: 0 }

/** `BENCH_CACHE`: which cache sits in front of the routes (none, map, apicache, lcache, corral). */
export const cacheKind = process.env.BENCH_CACHE ?? 'none'

export function reportReady(port, cacheStats = () => null) {
  if (typeof process.send !== 'function') {
    console.log(`listening on http://127.0.0.1:${port} (cache: ${cacheKind})`)
    return
  }
  process.on('message', (m) => {
    if (m?.type === 'stats') process.send({ type: 'stats', origin: { ...origin }, cache: cacheStats() })
    else if (m?.type === 'stop') process.exit(0)
  })
  // The parent went away (crashed, Ctrl-C): never outlive it.
  process.on('disconnect', () => process.exit(0))
  process.send({ type: 'ready', port, pid: process.pid })
}

export function unknownCache(framework) {
  console.error(`${framework} bench server: unknown BENCH_CACHE=${cacheKind}`)
  process.exit(2)
}
