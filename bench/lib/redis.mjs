// A private redis-server for the scenarios that need one (scenarios/l2-hit.mjs). It listens on a
// free port of 127.0.0.1 (never 6379, the shared Redis of the machine, which the bench must not
// touch), keeps nothing on disk (--save "" --appendonly no, a temp dir), runs pinned on the load
// generator's core (the server core is the bench server's alone), and is killed when the
// scenario ends, when the bench exits or is interrupted, and, through a small `sh` watchdog,
// within a second of the bench dying without running any hook (SIGKILL).
import { execFileSync, spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { aptInstall, onPath } from './apt.mjs'
import { cpuSeconds, LOAD_CPU, pinned } from './cpu.mjs'

const HOST = '127.0.0.1'
const SHARED_PORT = 6379
/** Debian's binary first, then whatever PATH has. */
const CANDIDATES = ['/usr/bin/redis-server', 'redis-server']
const START_DEADLINE_MS = 5_000
const START_ATTEMPTS = 5

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function findBinary(log) {
  const found = () =>
    CANDIDATES.find((c) => {
      if (!c.includes('/')) return onPath(c)
      try {
        accessSync(c, constants.X_OK)
        return true
      } catch {
        return false
      }
    })
  const bin = found() ?? (aptInstall('redis-server', () => found() !== undefined, log) ? found() : undefined)
  if (bin === undefined) throw new Error('redis-server is not installed and could not be installed (apt-get install -y redis-server)')
  return bin
}

export function redisVersion() {
  for (const c of CANDIDATES) {
    try {
      const m = /v=(\S+)/.exec(execFileSync(c, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
      if (m) return m[1]
    } catch {}
  }
  return null
}

/** A port the kernel considers free on 127.0.0.1 right now, never the shared Redis's. */
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer()
      server.unref()
      server.once('error', reject)
      server.listen(0, HOST, () => {
        const { port } = server.address()
        server.close(() => resolve(port))
      })
    })
    if (port !== SHARED_PORT) return port
  }
}

// Every server this module started and has not stopped: killed on any way out of the bench.
const live = new Map()
let hooked = false
function hookExit() {
  if (hooked) return
  hooked = true
  const killAll = () => {
    for (const [pid, dir] of live) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
      rmSync(dir, { recursive: true, force: true })
    }
    live.clear()
  }
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      killAll()
      // Then what the signal would have done without this listener.
      if (process.listeners(sig).length === 1) {
        process.removeListener(sig, onSignal)
        process.kill(process.pid, sig)
      }
    }
    process.on(sig, onSignal)
  }
}

/** Kills the server once the bench (`parent`) is gone; exits by itself when the server goes first. */
function watchdog(serverPid, dir) {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do',
    '  kill -0 "$2" 2>/dev/null || exit 0',
    '  sleep 1',
    'done',
    // Only if that pid still is a redis-server (it may have been reaped and reused).
    'grep -qa redis-server "/proc/$2/cmdline" 2>/dev/null || exit 0',
    'kill -KILL "$2" 2>/dev/null',
    'rm -rf "$3"',
  ].join('\n')
  try {
    const child = spawn('/bin/sh', ['-c', script, 'corral-bench-redis-watchdog', String(process.pid), String(serverPid), dir], { stdio: 'ignore', detached: true })
    child.on('error', () => {})
    child.unref()
    return child
  } catch {
    return undefined
  }
}

/** Resolves once the server on `port` answers PING and reports `pid` as its own; false if it never does. */
async function answers(port, pid, exited) {
  const deadline = Date.now() + START_DEADLINE_MS
  while (Date.now() < deadline && !exited()) {
    const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 500 })
    client.on('error', () => {})
    try {
      await client.connect()
      const info = await client.info('server')
      const m = /^process_id:(\d+)\r?$/m.exec(info)
      if (m && Number(m[1]) === pid) return true
      // Another server answers on that port: not ours, never use it.
      return false
    } catch {
      // not listening yet
    } finally {
      client.disconnect()
    }
    await sleep(20)
  }
  return false
}

/**
 * Starts a redis-server pinned on the load generator's core. Resolves to
 * { port, pid, url, cpuSeconds(), stop() }.
 */
export async function startRedis(log = () => {}) {
  const bin = findBinary(log)
  hookExit()
  let lastError
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort()
    const dir = mkdtempSync(join(os.tmpdir(), 'corral-bench-redis-'))
    const args = ['--port', String(port), '--bind', HOST, '--protected-mode', 'yes', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', '']
    // taskset execs redis-server: the child's pid is the server's.
    const [cmd, argv] = pinned(LOAD_CPU, bin, args)
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (d) => (output = (output + d).slice(-4000))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    let gone = false
    const exited = new Promise((resolve) => child.once('exit', () => resolve((gone = true))))
    child.once('error', (err) => keep(`\n${err.message}`))
    const pid = child.pid
    if (pid !== undefined) live.set(pid, dir)
    const dog = pid === undefined ? undefined : watchdog(pid, dir)
    const stop = async () => {
      if (!gone && pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
        await exited
      }
      if (pid !== undefined) live.delete(pid)
      dog?.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
    if (pid !== undefined && (await answers(port, pid, () => gone))) {
      return { port, pid, url: `redis://${HOST}:${port}`, cpuSeconds: () => cpuSeconds(pid), stop }
    }
    await stop()
    lastError = new Error(`redis-server on ${HOST}:${port} did not start (attempt ${attempt}): ${output.trim() || 'no output'}`)
    // A port taken between the check and the bind: try another one.
    if (!/address already in use/i.test(output)) break
  }
  throw lastError
}
