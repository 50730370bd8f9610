// 7. Expiry cliff: a hot key whose freshness ends every few seconds under steady load, the origin
// taking 50 ms. Does anyone wait for the origin when it expires?
import { runClient } from '../lib/client.mjs'
import { SLOW_ORIGIN_MS } from '../lib/payload.mjs'
import { startServer } from '../lib/server.mjs'
import { median, round } from '../lib/stats.mjs'

/** The hot key's freshness: several expiries in each measured window. */
const TTL_S = 2

const MODES = [
  { id: 'express-hit', label: 'Express 5 + Corral, hits only (no expiry)', server: { framework: 'express', cache: 'corral' }, path: '/data', baseline: true },
  { id: 'express-plain', label: 'Express 5 + Corral', server: { framework: 'express', cache: 'corral', env: { BENCH_FRESHNESS: 'plain' } } },
  { id: 'express-swr', label: 'Express 5 + Corral, staleWhileRevalidate', server: { framework: 'express', cache: 'corral', env: { BENCH_FRESHNESS: 'swr' } }, option: true },
  { id: 'express-early', label: 'Express 5 + Corral, earlyRefresh', server: { framework: 'express', cache: 'corral', env: { BENCH_FRESHNESS: 'early' } }, option: true },
  { id: 'express-apicache', label: 'Express 5 + apicache', server: { framework: 'express', cache: 'apicache' } },
  { id: 'fastify-hit', label: 'Fastify 5 + Corral, hits only (no expiry)', server: { framework: 'fastify', cache: 'corral' }, path: '/data', baseline: true },
  { id: 'fastify-plain', label: 'Fastify 5 + Corral', server: { framework: 'fastify', cache: 'corral', env: { BENCH_FRESHNESS: 'plain' } } },
  { id: 'fastify-swr', label: 'Fastify 5 + Corral, staleWhileRevalidate', server: { framework: 'fastify', cache: 'corral', env: { BENCH_FRESHNESS: 'swr' } }, option: true },
  { id: 'fastify-early', label: 'Fastify 5 + Corral, earlyRefresh', server: { framework: 'fastify', cache: 'corral', env: { BENCH_FRESHNESS: 'early' } }, option: true },
  { id: 'fastify-lcache', label: 'Fastify 5 + fastify-lcache', server: { framework: 'fastify', cache: 'lcache' } },
]

function steady(port, path, connections, durationMs) {
  return runClient('steady-client.mjs', [port, path, connections, durationMs, SLOW_ORIGIN_MS])
}

export default {
  id: 'expiry-cliff',
  title: 'Expiry cliff on a hot key',
  about:
    `A hot key fresh for ${TTL_S} s (max-age), its origin answering after ${SLOW_ORIGIN_MS} ms, under steady load: ` +
    'each connection sends its next request when the last is answered, for several lifetimes of the entry. ' +
    'Latency percentiles over the whole window, and how many requests waited for the origin: for Corral exactly, ' +
    'the responses marked MISS plus the requests its stats count as coalesced (they waited for another request\'s origin call); ' +
    `for the others, whose waits are not counted, the responses that took ${SLOW_ORIGIN_MS} ms or more. ` +
    'The baseline is the same server answering hits of a key that never expires in the window.',
  async run(ctx) {
    const modes = MODES.filter((m) => !ctx.smoke || m.id === 'express-swr')
    const durationMs = (ctx.smoke ? 3 : Math.max(ctx.duration, 2 * TTL_S + 2)) * 1000
    const connections = Math.min(ctx.connections, 32)
    const rows = modes.map((m) => ({ ...m, runs: [] }))
    for (let r = 1; r <= ctx.rounds; r++) {
      for (const row of rows) {
        const server = await startServer({ ...row.server, env: { ...row.server.env, BENCH_CLIFF_TTL_S: String(row.baseline ? 300 : TTL_S) } })
        try {
          const path = row.path ?? '/cliff'
          // The first fill, outside the window.
          await fetch(server.url(path)).then((res) => res.arrayBuffer())
          const res = await steady(server.port, path, connections, durationMs)
          const ok = res.statuses['200'] ?? 0
          if (ok !== res.requests) throw new Error(`${row.label}: ${ok} of ${res.requests} requests answered 200 (${JSON.stringify(res.statuses)})`)
          const stats = await server.stats()
          // Corral says who waited: MISS answers, and requests coalesced behind one. The first fill is before the window.
          const waited = stats.cache !== null && stats.cache !== undefined ? (res.xCache.MISS ?? 0) + stats.cache.coalesced : res.slow
          row.runs.push({ requests: res.requests, p50Ms: round(res.p50Ms, 2), p99Ms: round(res.p99Ms, 2), p999Ms: round(res.p999Ms, 2), maxMs: round(res.maxMs, 2), waited, slow: res.slow, originCalls: stats.origin.cliff, xCache: res.xCache })
          ctx.log(`  round ${r}/${ctx.rounds}  ${row.label.padEnd(44)} p99 ${res.p99Ms.toFixed(2).padStart(7)} ms  max ${res.maxMs.toFixed(1).padStart(6)} ms  waited ${String(waited).padStart(4)}  origin ${stats.origin.cliff}`)
        } finally {
          await server.stop()
        }
      }
    }
    for (const row of rows) {
      row.median = {
        p50Ms: round(median(row.runs.map((x) => x.p50Ms)), 2),
        p99Ms: round(median(row.runs.map((x) => x.p99Ms)), 2),
        maxMs: round(Math.max(...row.runs.map((x) => x.maxMs)), 2),
      }
      row.slowest = Math.max(...row.runs.map((x) => x.waited))
    }
    const targets = []
    for (const row of rows.filter((x) => x.option)) {
      const framework = row.id.split('-')[0]
      const base = rows.find((x) => x.baseline && x.id.startsWith(framework))
      if (base === undefined) continue
      // Per round, against the plain hit of the same round; the median of the rounds, as elsewhere in the bench.
      const ratios = row.runs.map((x, i) => x.p99Ms / (base.runs[i]?.p99Ms ?? NaN))
      const ratio = median(ratios)
      targets.push({
        id: `expiry-cliff-${row.id}`,
        text: `${row.label}: p99 across expiries ≤ 2× the plain-hit p99, and no request waits for the origin`,
        measured: `p99 ${round(ratio, 2)}× the plain hit (median of rounds; per round ${ratios.map((x) => round(x, 2)).join(', ')}), ${row.slowest} waited for the origin`,
        met: ratio <= 2 && row.slowest === 0,
      })
    }
    const table = {
      title: 'Latency across expiries (median of rounds; max over all rounds)',
      columns: ['cache', 'p50 ms', 'p99 ms', 'max ms', 'waited for the origin (most in a round)', `any response ≥ ${SLOW_ORIGIN_MS} ms (most in a round)`, 'origin calls per round', 'X-Cache (last round)'],
      rows: rows.map((row) => [
        row.label,
        row.median.p50Ms,
        row.median.p99Ms,
        row.median.maxMs,
        row.slowest,
        Math.max(...row.runs.map((x) => x.slow)),
        row.runs.map((x) => x.originCalls).join(' / '),
        Object.entries(row.runs[row.runs.length - 1]?.xCache ?? {}).map(([k, v]) => `${k} ${v}`).join(', '),
      ]),
    }
    return { targets, tables: [table] }
  },
}
