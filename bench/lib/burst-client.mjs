// The stampede client, run as its own process on the load core:
//   node burst-client.mjs <port> <concurrency> <burst path> <warm path>
// Opens <concurrency> keep-alive connections and sends one request on each to <warm path>, so
// that the burst does not wait for TCP handshakes; then writes GET <burst path> on every
// connection in one go and times each response from that moment. Prints one JSON line.
import { performance } from 'node:perf_hooks'
import { connect as open, request } from './http-reader.mjs'

const [port, concurrency, burstPath, warmPath] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5]]
const CONNECT_BATCH = 100 // stay under the server's listen backlog
const connect = () => open(port)

const sockets = []
for (let i = 0; i < concurrency; i += CONNECT_BATCH) {
  const batch = Math.min(CONNECT_BATCH, concurrency - i)
  sockets.push(...(await Promise.all(Array.from({ length: batch }, connect))))
}
await Promise.all(sockets.map((s) => request(s, warmPath)))

const t0 = performance.now()
const results = await Promise.all(
  sockets.map((s) =>
    request(s, burstPath).then(
      (r) => ({ ...r, ms: performance.now() - t0 }),
      (err) => ({ status: 0, error: err.code ?? err.message, ms: performance.now() - t0 }),
    ),
  ),
)
const sentMs = performance.now() - t0
for (const s of sockets) s.destroy()

const latencies = results.map((r) => r.ms).sort((a, b) => a - b)
const at = (p) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]
const count = (f) => results.reduce((acc, r) => ((acc[f(r)] = (acc[f(r)] ?? 0) + 1), acc), {})
process.stdout.write(
  JSON.stringify({
    concurrency,
    p50Ms: at(50),
    p99Ms: at(99),
    maxMs: latencies[latencies.length - 1],
    totalMs: sentMs,
    statuses: count((r) => r.status),
    xCache: count((r) => r.xCache ?? 'none'),
    errors: results.filter((r) => r.error).length,
  }) + '\n',
)
