/**
 * Private redis-server processes for tests that crash, restart, pause or freeze Redis.
 *
 * Every server is a child of the test process, listens on 127.0.0.1 only, on a port the kernel
 * handed out, with a temp dir and no persistence. The shared Redis on 127.0.0.1:6379 (or any
 * server this module did not start) is never contacted: every connection made here goes to the
 * port of a server this module spawned, and a server only counts as started once it reports its
 * own process id.
 *
 * Servers never outlive the test process: test/helpers/processes.ts SIGKILLs them (and removes
 * their temp dirs) from a `process.on('exit')` hook and on SIGTERM/SIGINT/SIGHUP, and a detached
 * watchdog per server does the same within a second if the test process is SIGKILLed.
 */
import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
// ioredis is a root devDependency (and core's runtime dependency): tests and core share one copy.
import { Redis, type RedisOptions } from 'ioredis'
import {
  HOST,
  ManagedProcess,
  RespConnection,
  StartFailure,
  findRedisServer,
  onFreePort,
  removeTempDir,
  startProcess,
  tempDir,
} from './processes.js'

export type { Redis, RedisOptions }

const RESTART_PORT_RETRY_MS = 3_000
/** Arguments the harness relies on; options.args may not override them. */
const RESERVED_ARGS = ['--port', '--bind', '--dir', '--daemonize', '--logfile']

/** A redis-server started by {@link startRedis}. */
export interface RedisServer {
  readonly host: '127.0.0.1'
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** True while the process is running (not killed/stopped). A frozen server is running. */
  readonly running: boolean
  /** Pid of the current process, `undefined` while killed or stopped (for liveness checks). */
  readonly pid: number | undefined
  /** SIGKILL the server (a crash); resolves when the process has exited. Connections drop. Works while frozen. */
  kill(): Promise<void>
  /**
   * Starts it again on the SAME port (kills it first if it is running); resolves when it answers
   * PING. Data is gone (no persistence). Retries for a few seconds while the port is still busy.
   */
  restart(): Promise<void>
  /**
   * `CLIENT PAUSE <ms> ALL` sent on a short-lived admin connection: every client's commands block
   * for ms. In Redis 7.0 that includes PING, INFO and CLIENT UNPAUSE, on every connection.
   */
  pause(ms: number): Promise<void>
  /**
   * `DEBUG SLEEP <seconds>` sent on its own connection WITHOUT waiting for the reply (the server is
   * blocked for that time); resolves once the command is written. The connection has answered a
   * PING before, so commands other clients send afterwards are queued behind the sleep.
   */
  sleep(seconds: number): Promise<void>
  /**
   * SIGSTOP the process: it keeps its sockets (the kernel still accepts connections and data)
   * but answers nothing until thawed. Resolves once the process is stopped.
   */
  freeze(): Promise<void>
  /** SIGCONT a frozen process; commands sent meanwhile are then answered. */
  thaw(): Promise<void>
  /**
   * A fresh ioredis client to this server for test setup (planting values, inspecting keys);
   * closed by stop(). Host and port are always this server's. Defaults, overridable by `options`:
   * reconnect every 50–500 ms, `maxRetriesPerRequest: 1` (a command fails after a failed
   * reconnect instead of waiting ~10 s), an `error` listener so a kill does not log noise.
   */
  client(options?: RedisOptions): Redis
  /** Kills the server, closes clients, removes its temp dir. Idempotent. */
  stop(): Promise<void>
}

/** Options for {@link startRedis}. */
export interface StartOptions {
  /**
   * Extra redis-server args, e.g. `['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']`.
   * `--port`, `--bind`, `--dir`, `--daemonize` and `--logfile` belong to the harness.
   */
  args?: readonly string[]
}

/**
 * Starts a private redis-server on a free 127.0.0.1 port and resolves once it answers PING.
 * Throws if redis-server is not on PATH, or with the server's output if it does not come up
 * within 5 s. Call `stop()` when done (e.g. in afterEach/afterAll).
 */
export async function startRedis(options: StartOptions = {}): Promise<RedisServer> {
  const args = [...(options.args ?? [])]
  for (const arg of args) {
    if (RESERVED_ARGS.includes(arg.toLowerCase())) {
      throw new Error(`startRedis: ${arg} is set by the harness and cannot be passed in options.args`)
    }
  }
  const bin = findRedisServer()
  const dir = await tempDir('corral-redis-')
  try {
    return await onFreePort('startRedis', async (port) => {
      const proc = await launch(bin, port, dir, args)
      return new ManagedRedis(bin, port, dir, args, proc)
    })
  } catch (err) {
    await removeTempDir(dir)
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// The server handle

class ManagedRedis implements RedisServer {
  readonly host = HOST
  readonly url: string
  private proc: ManagedProcess | undefined
  private stopping: Promise<void> | undefined
  private readonly clients = new Set<Redis>()
  private readonly connections = new Set<RespConnection>()

  constructor(
    private readonly bin: string,
    readonly port: number,
    private readonly dir: string,
    private readonly args: readonly string[],
    proc: ManagedProcess,
  ) {
    this.url = `redis://${HOST}:${port}`
    this.proc = proc
  }

  get running(): boolean {
    return this.proc !== undefined && !this.proc.exited
  }

  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined
  }

  async kill(): Promise<void> {
    const proc = this.proc
    this.proc = undefined
    this.closeConnections()
    if (proc) await proc.kill()
  }

  async restart(): Promise<void> {
    this.assertNotStopped('restart')
    await this.kill()
    const deadline = Date.now() + RESTART_PORT_RETRY_MS
    for (;;) {
      try {
        const proc = await launch(this.bin, this.port, this.dir, this.args)
        if (this.stopping) {
          await proc.kill()
          throw new Error(`restart: server ${this.url} was stopped while restarting`)
        }
        this.proc = proc
        return
      } catch (err) {
        // TIME_WAIT leftovers or a client's ephemeral port can hold the port for a moment.
        if (!(err instanceof StartFailure && err.portInUse) || Date.now() > deadline) throw err
        await delay(100)
      }
    }
  }

  async pause(ms: number): Promise<void> {
    if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`pause: ms must be a non-negative integer, got ${ms}`)
    this.assertAnswering('pause')
    const conn = await this.open()
    try {
      const reply = await conn.call(['CLIENT', 'PAUSE', String(ms), 'ALL'], 2_000)
      if (reply !== 'OK') throw new Error(`CLIENT PAUSE answered ${JSON.stringify(reply)}`)
    } finally {
      this.dropConnection(conn)
    }
  }

  async sleep(seconds: number): Promise<void> {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`sleep: seconds must be a finite number >= 0, got ${seconds}`)
    this.assertAnswering('sleep')
    const conn = await this.open()
    try {
      // A round trip first: the server has accepted this connection, so the DEBUG SLEEP reaches
      // it before anything another client sends after sleep() resolves.
      const pong = await conn.call(['PING'], 2_000)
      if (pong !== 'PONG') throw new Error(`PING answered ${JSON.stringify(pong)}`)
      const { written, reply } = conn.send(['DEBUG', 'SLEEP', String(seconds)])
      // The reply (or the connection dropping on kill/stop) closes the connection; nobody awaits it.
      reply.then(
        () => this.dropConnection(conn),
        () => this.dropConnection(conn),
      )
      await written
    } catch (err) {
      this.dropConnection(conn)
      throw err
    }
  }

  async freeze(): Promise<void> {
    const proc = this.requireRunning('freeze')
    if (proc.frozen) return
    proc.frozen = true
    proc.signal('SIGSTOP')
    await waitForState(proc, (state) => state === 'T' || state === 't')
  }

  async thaw(): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exited || !proc.frozen) return
    proc.frozen = false
    proc.signal('SIGCONT')
    await waitForState(proc, (state) => state !== 'T' && state !== 't')
  }

  client(options: RedisOptions = {}): Redis {
    this.assertNotStopped('client')
    if (options.path !== undefined || options.sentinels !== undefined) {
      throw new Error('client: path and sentinels are not allowed; the client always talks to this server')
    }
    const client = new Redis({
      retryStrategy: (times: number) => Math.min(times * 50, 500),
      maxRetriesPerRequest: 1,
      ...options,
      host: HOST,
      port: this.port,
    })
    client.on('error', () => {
      // Expected while the server is killed or frozen; commands still reject with the error.
    })
    this.clients.add(client)
    return client
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    for (const client of this.clients) client.disconnect()
    this.clients.clear()
    await this.kill()
    await removeTempDir(this.dir)
  }

  private async open(): Promise<RespConnection> {
    const conn = await RespConnection.open(this.port, 2_000)
    conn.unref()
    this.connections.add(conn)
    return conn
  }

  private dropConnection(conn: RespConnection): void {
    conn.close()
    this.connections.delete(conn)
  }

  private closeConnections(): void {
    for (const conn of this.connections) conn.close()
    this.connections.clear()
  }

  private assertNotStopped(op: string): void {
    if (this.stopping) throw new Error(`${op}: server ${this.url} has been stopped`)
  }

  private requireRunning(op: string): ManagedProcess {
    this.assertNotStopped(op)
    const proc = this.proc
    if (!proc || proc.exited) throw new Error(`${op}: server ${this.url} is not running (killed); call restart() first`)
    return proc
  }

  private assertAnswering(op: string): void {
    if (this.requireRunning(op).frozen) {
      throw new Error(`${op}: server ${this.url} is frozen and would never answer; call thaw() first`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Spawns redis-server on `port` and waits until it answers PING with its own pid. */
function launch(bin: string, port: number, dir: string, extra: readonly string[]): Promise<ManagedProcess> {
  // Redis 7.0 refuses DEBUG unless enable-debug-command is yes/local; Redis < 7 has no such option.
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--protected-mode', 'yes',
    '--enable-debug-command', 'yes',
    '--daemonize', 'no',
    '--logfile', '',
    ...extra,
  ]
  return startProcess({ label: 'redis-server', bin, args, port, dir })
}

/** Waits (briefly) until /proc reports a matching scheduler state; a no-op without /proc. */
async function waitForState(proc: ManagedProcess, accept: (state: string) => boolean): Promise<void> {
  const deadline = Date.now() + 1_000
  while (!proc.exited && Date.now() < deadline) {
    const state = processState(proc.pid)
    if (state === undefined || accept(state)) return
    await delay(2)
  }
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return undefined
  }
}
