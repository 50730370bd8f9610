// What every bench server shares. A server is a child process started by lib/server.mjs: it
// listens on a free port of 127.0.0.1, tells its parent { type: 'ready', port, pid } over IPC,
// answers { type: 'stats' } with how often each origin route ran (and the cache's own stats),
// and exits on { type: 'stop' } (a normal exit, so `--cpu-prof` writes its profile).
import { JSON_2K, JSON_2K_BUFFER, JSON_TYPE, SLOW_ORIGIN_MS } from '../lib/payload.mjs'

export { JSON_2K, JSON_2K_BUFFER, JSON_TYPE, SLOW_ORIGIN_MS }

/** Origin calls per route; a cache hit never touches these. */
export const origin = { data: 0, raw: 0, nostore: 0, slow: 0, cliff: 0 }

/**
 * The expiry-cliff route (/cliff): a hot key whose freshness ends every BENCH_CLIFF_TTL_S seconds
 * (default 300: the other scenarios never see it expire), answered after SLOW_ORIGIN_MS.
 */
export const CLIFF_TTL_S = Number(process.env.BENCH_CLIFF_TTL_S ?? 300)

/**
 * Corral's options for the freshness modes of the expiry-cliff scenario (BENCH_FRESHNESS):
 * plain (none), swr (staleWhileRevalidate), early (earlyRefresh, XFetch).
 */
export function freshnessOptions() {
  const mode = process.env.BENCH_FRESHNESS ?? 'plain'
  if (mode === 'swr') return { staleWhileRevalidate: '30s' }
  if (mode === 'early') return { earlyRefresh: true }
  if (mode !== 'plain') {
    console.error(`bench server: unknown BENCH_FRESHNESS=${mode}`)
    process.exit(2)
  }
  return {}
}

/**
 * Corral's observation for the observe scenario (BENCH_OBSERVE): none; prometheus (the
 * `@corral/core/prometheus` plugin on a prom-client registry, scraped never: its hooks are what a
 * request pays); diagnostics (a subscriber on every `corral:*` tracing channel that counts events,
 * as an APM's would, minus its own work); plugin (a plugin with empty hooks).
 */
export async function observeOptions() {
  const mode = process.env.BENCH_OBSERVE ?? 'none'
  if (mode === 'none') return {}
  if (mode === 'prometheus') {
    const { Registry } = await import('prom-client')
    const { prometheus } = await import('@corral/core/prometheus')
    return { plugins: [prometheus({ registry: new Registry() })] }
  }
  if (mode === 'plugin') return { plugins: [{ name: 'empty', before() {}, after() {} }] }
  if (mode === 'diagnostics') {
    const diagnostics = await import('node:diagnostics_channel')
    const { CHANNEL_NAMES } = await import('@corral/core')
    let events = 0
    const count = () => {
      events++
    }
    for (const name of Object.values(CHANNEL_NAMES)) {
      diagnostics.tracingChannel(name).subscribe({ start: count, end: count, asyncStart: count, asyncEnd: count, error: count })
    }
    return {}
  }
  console.error(`bench server: unknown BENCH_OBSERVE=${mode}`)
  process.exit(2)
}

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
