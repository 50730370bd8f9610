// 4. Stampede: N concurrent requests on a cold key whose origin takes 50 ms. How many origin
// calls does each cache let through, and how long do the clients wait?
import { runClient } from '../lib/client.mjs'
import { startServer } from '../lib/server.mjs'
import { median, round } from '../lib/stats.mjs'


const PEERS = [
  { id: 'express-map', label: 'Express 5 + Map cache', server: { framework: 'express', version: '5', cache: 'map' } },
  { id: 'express-apicache', label: 'Express 5 + apicache', server: { framework: 'express', version: '5', cache: 'apicache' } },
  { id: 'express-corral', label: 'Express 5 + Corral', server: { framework: 'express', version: '5', cache: 'corral' }, corral: true },
  { id: 'fastify-map', label: 'Fastify 5 + onRequest Map cache', server: { framework: 'fastify', cache: 'map' } },
  { id: 'fastify-lcache', label: 'Fastify 5 + fastify-lcache', server: { framework: 'fastify', cache: 'lcache' } },
  { id: 'fastify-corral', label: 'Fastify 5 + Corral', server: { framework: 'fastify', cache: 'corral' }, corral: true },
]

function burst(port, concurrency) {
  return runClient('burst-client.mjs', [port, concurrency, '/slow', '/data'])
}

export default {
  id: 'stampede',
  title: 'Stampede on a cold key',
  about:
    'N clients (200, then 1000) on open keep-alive connections send GET of the same cold URL at once; ' +
    'the origin answers after 50 ms. Origin calls are counted by the server; latency is from the ' +
    'moment the burst was written to each complete response. A fresh server for every burst.',
  async run(ctx) {
    const peers = PEERS.filter((p) => !ctx.smoke || p.id === 'express-corral')
    const sizes = ctx.stampedeSizes
    const rows = []
    for (const p of peers) for (const n of sizes) rows.push({ peer: p.id, label: p.label, corral: p.corral === true, concurrency: n, runs: [] })
    for (let r = 1; r <= ctx.rounds; r++) {
      for (const row of rows) {
        const peer = peers.find((p) => p.id === row.peer)
        const server = await startServer(peer.server)
        try {
          const res = await burst(server.port, row.concurrency)
          const stats = await server.stats()
          const ok = res.statuses['200'] ?? 0
          if (ok !== row.concurrency) throw new Error(`${row.label}: ${ok} of ${row.concurrency} burst requests answered 200 (${JSON.stringify(res.statuses)})`)
          row.runs.push({ originCalls: stats.origin.slow, p50Ms: round(res.p50Ms, 2), p99Ms: round(res.p99Ms, 2), maxMs: round(res.maxMs, 2), xCache: res.xCache })
          ctx.log(`  round ${r}/${ctx.rounds}  ${row.label.padEnd(34)} ${String(row.concurrency).padStart(5)} concurrent: ${String(stats.origin.slow).padStart(4)} origin calls, p99 ${res.p99Ms.toFixed(1)} ms`)
        } finally {
          await server.stop()
        }
      }
    }
    for (const row of rows) {
      row.median = {
        originCalls: median(row.runs.map((x) => x.originCalls)),
        p99Ms: round(median(row.runs.map((x) => x.p99Ms)), 2),
        p50Ms: round(median(row.runs.map((x) => x.p50Ms)), 2),
      }
      row.maxOriginCalls = Math.max(...row.runs.map((x) => x.originCalls))
    }
    const targets = rows
      .filter((row) => row.corral)
      .map((row) => ({
        id: `stampede-${row.peer}-${row.concurrency}`,
        text: `${row.label}: 1 origin call for ${row.concurrency} concurrent requests on a cold key`,
        measured: `${row.maxOriginCalls} (most in any round)`,
        met: row.maxOriginCalls === 1,
      }))
    const table = {
      title: 'Origin calls and client latency',
      columns: ['cache', 'concurrent', 'origin calls (median)', 'origin calls (max)', 'p50 ms', 'p99 ms', 'per round: origin calls / p99 ms'],
      rows: rows.map((row) => [
        row.label,
        row.concurrency,
        row.median.originCalls,
        row.maxOriginCalls,
        row.median.p50Ms.toFixed(1),
        row.median.p99Ms.toFixed(1),
        row.runs.map((x) => `${x.originCalls} / ${x.p99Ms.toFixed(0)}`).join(', '),
      ]),
    }
    return { bursts: rows, targets, tables: [table] }
  },
}
