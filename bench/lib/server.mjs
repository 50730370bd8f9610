// Starts one bench server (servers/<framework>.mjs) as a child process pinned on the server core,
// waits for it to listen, and gives the scenario its port, pid, origin counters and CPU time.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { cpuSeconds, pinned, SERVER_CPU } from './cpu.mjs'

const SERVERS = fileURLToPath(new URL('../servers/', import.meta.url))
const START_TIMEOUT_MS = 20_000

/**
 * @param {object} spec
 * @param {'express' | 'fastify'} spec.framework
 * @param {string} spec.cache BENCH_CACHE: none | map | apicache | lcache | corral, and on Express
 *   corral-l2 | redis-raw (these need env.BENCH_REDIS_URL)
 * @param {string} [spec.version] Express major version ('4' or '5')
 * @param {Record<string, string>} [spec.env] more environment variables for the server
 * @param {string[]} [nodeFlags] extra node flags (the profiler's --cpu-prof)
 */
export async function startServer(spec, nodeFlags = []) {
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    BENCH_CACHE: spec.cache,
    BENCH_EXPRESS: spec.version ?? '5',
    ...spec.env,
  }
  delete env.PORT
  const [cmd, args] = pinned(SERVER_CPU, process.execPath, [...nodeFlags, `${SERVERS}${spec.framework}.mjs`])
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${describe(spec)} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    child.once('message', (m) => {
      clearTimeout(timer)
      resolve(m)
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${describe(spec)} exited before listening (code ${code}, signal ${signal})`))
    })
  })
  const pid = ready.pid

  return {
    port: ready.port,
    pid,
    url: (path) => `http://127.0.0.1:${ready.port}${path}`,
    cpuSeconds: () => cpuSeconds(pid),
    /** Origin calls per route and the cache's own stats, from the server itself. */
    stats: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${describe(spec)} did not answer a stats request`)), 10_000)
        const onMessage = (m) => {
          if (m?.type !== 'stats') return
          clearTimeout(timer)
          child.off('message', onMessage)
          resolve(m)
        }
        child.on('message', onMessage)
        child.send({ type: 'stats' })
      }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) child.send({ type: 'stop' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}

export function describe(spec) {
  return `${spec.framework}${spec.framework === 'express' ? ` ${spec.version ?? '5'}` : ''} (${spec.cache})`
}
