// The load generator: wrk (far less CPU per request than a Node client, which matters when the
// server is Fastify) pinned on the load core, or autocannon when wrk cannot be had.
import { execFileSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { aptInstall, onPath } from './apt.mjs'
import { LOAD_CPU, pinned } from './cpu.mjs'

const require = createRequire(import.meta.url)
const WRK_SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url))

/**
 * Picks the load generator: `preference` 'wrk' or 'autocannon' forces one; 'auto' uses wrk,
 * installing it if it can, else autocannon.
 */
export function chooseLoadgen(preference, log) {
  if (preference === 'autocannon') return { tool: 'autocannon', version: require('autocannon/package.json').version }
  let wrk = onPath('wrk', ['-v'])
  if (!wrk) wrk = aptInstall('wrk', () => onPath('wrk', ['-v']), log)
  if (wrk) return { tool: 'wrk', version: wrkVersion() }
  if (preference === 'wrk') throw new Error('wrk was asked for but is not installed and could not be installed')
  log('wrk unavailable: falling back to autocannon (it needs more CPU per request; Fastify numbers may be client-bound)')
  return { tool: 'autocannon', version: require('autocannon/package.json').version }
}

function wrkVersion() {
  try {
    execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: 'pipe' })
  } catch (err) {
    const m = /wrk (\S+)/.exec(String(err.stdout ?? ''))
    if (m) return m[1]
  }
  return 'unknown'
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err || out}`))))
  })
}

/**
 * Drives `url` with `connections` keep-alive connections for `seconds` (whole seconds), sending
 * `headers` (optional) with every request.
 * Resolves to requests, req/s, latency percentiles in ms and error counts.
 */
export async function runLoad(loadgen, { url, connections, seconds, headers = {} }) {
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  if (loadgen.tool === 'wrk') {
    const [cmd, args] = pinned(LOAD_CPU, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', ...headerArgs, '-s', WRK_SCRIPT, url])
    const out = await run(cmd, args)
    const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '))
    if (line === undefined) throw new Error(`wrk printed no result:\n${out}`)
    const r = JSON.parse(line.slice('WRK_JSON '.length))
    const wall = r.durationUs / 1e6
    const ms = (us) => us / 1000
    return {
      requests: r.requests,
      seconds: wall,
      rps: r.requests / wall,
      latencyMs: { mean: ms(r.latencyUs.mean), p50: ms(r.latencyUs.p50), p90: ms(r.latencyUs.p90), p99: ms(r.latencyUs.p99), max: ms(r.latencyUs.max) },
      errors: r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
      non2xx: r.errors.status,
    }
  }
  const bin = require.resolve('autocannon/autocannon.js')
  const [cmd, args] = pinned(LOAD_CPU, process.execPath, [bin, '-c', String(connections), '-d', String(seconds), ...headerArgs, '-j', url])
  const r = JSON.parse(await run(cmd, args))
  return {
    requests: r.requests.total,
    seconds: r.duration,
    rps: r.requests.total / r.duration,
    latencyMs: { mean: r.latency.mean, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  }
}
