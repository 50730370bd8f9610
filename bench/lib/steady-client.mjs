// The expiry-cliff client, run as its own process on the load core:
//   node steady-client.mjs <port> <path> <connections> <duration ms> <slow ms>
// Keeps <connections> keep-alive connections busy with GET <path> for <duration ms>, each sending
// its next request when the last one is answered, and times every response. Prints one JSON
// line: the latency percentiles and maximum, X-Cache values, and how many responses took at least
// <slow ms> (the origin's delay; a pause of the server's counts too).
import { performance } from 'node:perf_hooks'
import { connect, request } from './http-reader.mjs'

const [port, path, connections, durationMs, slowMs] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6])]

const sockets = await Promise.all(Array.from({ length: connections }, () => connect(port)))
const latencies = []
const xCache = {}
const statuses = {}
let slow = 0
const end = performance.now() + durationMs
await Promise.all(
  sockets.map(async (s) => {
    while (performance.now() < end) {
      const t = performance.now()
      const r = await request(s, path, port)
      const ms = performance.now() - t
      latencies.push(ms)
      if (ms >= slowMs) slow++
      xCache[r.xCache ?? 'none'] = (xCache[r.xCache ?? 'none'] ?? 0) + 1
      statuses[r.status] = (statuses[r.status] ?? 0) + 1
    }
  }),
)
for (const s of sockets) s.destroy()
latencies.sort((a, b) => a - b)
const at = (p) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]
process.stdout.write(JSON.stringify({ requests: latencies.length, p50Ms: at(50), p99Ms: at(99), p999Ms: at(99.9), maxMs: latencies[latencies.length - 1], slow, xCache, statuses }) + '\n')
