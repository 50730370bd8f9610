// The stampede client, run as its own process on the load core:
//   node burst-client.mjs <port> <concurrency> <burst path> <warm path>
// Opens <concurrency> keep-alive connections and sends one request on each to <warm path>, so
// that the burst does not wait for TCP handshakes; then writes GET <burst path> on every
// connection in one go and times each response from that moment. Prints one JSON line.
import net from 'node:net'
import { performance } from 'node:perf_hooks'

const [port, concurrency, burstPath, warmPath] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5]]
const CONNECT_BATCH = 100 // stay under the server's listen backlog

function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true })
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Minimal HTTP/1.1 response reader: status, headers, Content-Length or chunked bodies. */
function request(socket, path) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    let head
    const onData = (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      if (head === undefined) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
        const headers = {}
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':')
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
        }
        head = { status: Number(lines[0].split(' ')[1]), headers, bodyStart: end + 4 }
      }
      const body = buf.subarray(head.bodyStart)
      const length = head.headers['content-length']
      const complete = length !== undefined ? body.length >= Number(length) : body.subarray(-5).toString('latin1') === '0\r\n\r\n'
      if (!complete) return
      socket.off('data', onData)
      socket.off('error', onError)
      resolve({ status: head.status, xCache: head.headers['x-cache'] })
    }
    const onError = (err) => {
      socket.off('data', onData)
      reject(err)
    }
    socket.on('data', onData)
    socket.once('error', onError)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  })
}

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
