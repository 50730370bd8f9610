/**
 * Private redis-server processes for tests that crash, restart, pause or freeze Redis.
 *
 * Every server is a child of the test process, listens on 127.0.0.1 only, on a port the kernel
 * handed out, with a temp dir and no persistence. The shared Redis on 127.0.0.1:6379 (or any
 * server this module did not start) is never contacted: every connection made here goes to the
 * port of a server this module spawned, and a server only counts as started once it reports its
 * own process id.
 *
 * Servers never outlive the test process: they are SIGKILLed (and their temp dirs removed) from
 * a `process.on('exit')` hook and on SIGTERM/SIGINT/SIGHUP (Vitest ends fork workers with
 * SIGTERM, which skips 'exit' hooks), and a tiny detached `sh` watchdog per server does the same
 * within a second if the test process dies without running any hook (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants as fsConstants, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
// ioredis is a root devDependency (and core's runtime dependency): tests and core share one copy.
import { Redis, type RedisOptions } from 'ioredis'

export type { Redis, RedisOptions }

const HOST = '127.0.0.1'
/** The shared Redis; never used for a private server, even if the kernel offered it. */
const SHARED_PORT = 6379
const START_DEADLINE_MS = 5_000
const START_ATTEMPTS = 5
const RESTART_PORT_RETRY_MS = 3_000
const OUTPUT_TAIL_BYTES = 16 * 1024
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
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corral-redis-'))
  registry().dirs.add(dir)
  try {
    let lastError: unknown
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort()
      try {
        const proc = await launch(bin, port, dir, args)
        return new ManagedRedis(bin, port, dir, args, proc)
      } catch (err) {
        lastError = err
        // The port was taken between freePort() and redis-server's bind(): try another one.
        if (!(err instanceof StartFailure && err.portInUse)) throw err
      }
    }
    throw new Error(`startRedis: no free port after ${START_ATTEMPTS} attempts`, { cause: lastError })
  } catch (err) {
    await removeDir(dir)
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// The server handle

class ManagedRedis implements RedisServer {
  readonly host = HOST
  readonly url: string
  private proc: Proc | undefined
  private stopping: Promise<void> | undefined
  private readonly clients = new Set<Redis>()
  private readonly connections = new Set<RespConnection>()

  constructor(
    private readonly bin: string,
    readonly port: number,
    private readonly dir: string,
    private readonly args: readonly string[],
    proc: Proc,
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
    if (proc) await killProc(proc)
  }

  async restart(): Promise<void> {
    this.assertNotStopped('restart')
    await this.kill()
    const deadline = Date.now() + RESTART_PORT_RETRY_MS
    for (;;) {
      try {
        const proc = await launch(this.bin, this.port, this.dir, this.args)
        if (this.stopping) {
          await killProc(proc)
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
    signal(proc, 'SIGSTOP')
    await waitForState(proc, (state) => state === 'T' || state === 't')
  }

  async thaw(): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exited || !proc.frozen) return
    proc.frozen = false
    signal(proc, 'SIGCONT')
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
    await removeDir(this.dir)
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

  private requireRunning(op: string): Proc {
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

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  /** True once the process has exited and been reaped; it must not be signalled any more. */
  exited: boolean
  frozen: boolean
  /** Resolves on the child's 'exit' event. */
  readonly exit: Promise<void>
  readonly output: OutputTail
  readonly watchdog: ChildProcess | undefined
}

/** The port was taken, redis-server exited, or it did not answer in time. */
class StartFailure extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message)
    this.name = 'StartFailure'
  }
}

/** Spawns redis-server on `port` and waits until it answers PING with its own pid. */
async function launch(bin: string, port: number, dir: string, extra: readonly string[]): Promise<Proc> {
  const proc = await spawnRedis(bin, port, dir, extra)
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    if (proc.exited) {
      await settle(proc)
      const out = proc.output.text()
      throw new StartFailure(
        `redis-server on ${HOST}:${port} exited during start (${describeExit(proc)}). Output:\n${out}`,
        /address already in use/i.test(out),
      )
    }
    const state = await probe(port, proc.pid)
    if (state === 'ready') return proc
    if (Date.now() > deadline) {
      await killProc(proc)
      throw new StartFailure(
        `redis-server on ${HOST}:${port} did not answer PING within ${START_DEADLINE_MS} ms` +
          `${state === 'foreign' ? ' (another process answers on that port)' : ''}. Output:\n${proc.output.text()}`,
        false,
      )
    }
    await delay(20)
  }
}

async function spawnRedis(bin: string, port: number, dir: string, extra: readonly string[]): Promise<Proc> {
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
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new OutputTail()
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk))
  const pid = child.pid
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve))
    throw new Error(`could not spawn ${bin}: ${err.message}`, { cause: err })
  }
  const reg = registry()
  let markExited = (): void => {}
  const exit = new Promise<void>((resolve) => {
    markExited = resolve
  })
  const proc: Proc = {
    child,
    pid,
    exited: false,
    frozen: false,
    exit,
    output,
    watchdog: spawnWatchdog(pid, dir),
  }
  reg.live.set(pid, proc)
  child.on('error', (err) => output.push(Buffer.from(`\n[harness] child process error: ${err.message}\n`)))
  child.once('exit', () => {
    proc.exited = true
    proc.frozen = false
    reg.live.delete(pid)
    proc.watchdog?.kill('SIGKILL')
    markExited()
  })
  return proc
}

/** SIGKILLs the process (also when stopped: SIGKILL needs no SIGCONT) and waits for its exit. */
async function killProc(proc: Proc): Promise<void> {
  signal(proc, 'SIGKILL')
  // Harmless after SIGKILL; sent after it so a frozen server gets no chance to answer anything.
  signal(proc, 'SIGCONT')
  await proc.exit
}

/** Signals only a process that has not been reaped, so a recycled pid is never hit. */
function signal(proc: Proc, sig: NodeJS.Signals): void {
  if (proc.exited) return
  try {
    process.kill(proc.pid, sig)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

/** Waits (briefly) until /proc reports a matching scheduler state; a no-op without /proc. */
async function waitForState(proc: Proc, accept: (state: string) => boolean): Promise<void> {
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

/** Resolves once the child's stdio has closed (all output read), or after 200 ms. */
async function settle(proc: Proc): Promise<void> {
  if (proc.child.stdout?.closed !== false && proc.child.stderr?.closed !== false) return
  await Promise.race([new Promise<void>((resolve) => proc.child.once('close', () => resolve())), delay(200)])
}

function describeExit(proc: Proc): string {
  const { exitCode, signalCode } = proc.child
  return signalCode ? `signal ${signalCode}` : `exit code ${String(exitCode)}`
}

/**
 * Kills `serverPid` and removes `dir` once this process is gone, unless the server is gone first.
 * Covers deaths that skip every hook (SIGKILL). Returns undefined if sh cannot be spawned.
 */
function spawnWatchdog(serverPid: number, dir: string): ChildProcess | undefined {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do',
    '  kill -0 "$2" 2>/dev/null || exit 0',
    '  sleep 1',
    'done',
    // Only if the pid still belongs to a redis-server (it may have been reaped and reused).
    'grep -qa redis-server "/proc/$2/cmdline" 2>/dev/null || [ ! -d /proc ] || exit 0',
    'kill -KILL "$2" 2>/dev/null',
    'kill -CONT "$2" 2>/dev/null',
    'rm -rf "$3"',
    'exit 0',
  ].join('\n')
  try {
    const watchdog = spawn('/bin/sh', ['-c', script, 'corral-redis-watchdog', String(process.pid), String(serverPid), dir], {
      stdio: 'ignore',
      detached: true,
    })
    watchdog.on('error', () => {
      // No /bin/sh: the exit hook still covers normal exits.
    })
    watchdog.unref()
    return watchdog
  } catch {
    return undefined
  }
}

/** Keeps the last OUTPUT_TAIL_BYTES of the server's stdout and stderr. */
class OutputTail {
  private chunks: Buffer[] = []
  private size = 0
  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size > OUTPUT_TAIL_BYTES && this.chunks.length > 1) {
      this.size -= this.chunks.shift()?.length ?? 0
    }
  }
  text(): string {
    const text = Buffer.concat(this.chunks).toString('utf8').trim()
    return text === '' ? '(no output)' : text
  }
}

// ---------------------------------------------------------------------------------------------
// Process-wide registry and exit hook, shared by every copy of this module in the process

interface Registry {
  readonly live: Map<number, Proc>
  readonly dirs: Set<string>
}

const REGISTRY_KEY = Symbol.for('corral.test.redis-server.registry')

function registry(): Registry {
  const holder = globalThis as typeof globalThis & { [REGISTRY_KEY]?: Registry }
  let reg = holder[REGISTRY_KEY]
  if (!reg) {
    const created: Registry = { live: new Map(), dirs: new Set() }
    const cleanup = (): void => {
      for (const proc of created.live.values()) {
        // Thaw first so nothing depends on SIGKILL reaching a stopped process.
        signal(proc, 'SIGCONT')
        signal(proc, 'SIGKILL')
      }
      for (const dir of created.dirs) {
        try {
          rmSync(dir, { recursive: true, force: true })
        } catch {
          // Best effort while exiting.
        }
      }
      created.dirs.clear()
    }
    process.on('exit', cleanup)
    // Vitest's fork pool ends its workers with SIGTERM, which skips 'exit' hooks. Clean up, then
    // let the signal do what it would have done without this listener (the signal-exit pattern).
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const onSignal = (): void => {
        cleanup()
        if (process.listeners(sig).length === 1) {
          process.removeListener(sig, onSignal)
          process.kill(process.pid, sig)
        }
      }
      process.on(sig, onSignal)
    }
    holder[REGISTRY_KEY] = created
    reg = created
  }
  return reg
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  registry().dirs.delete(dir)
}

// ---------------------------------------------------------------------------------------------
// Ports and binary

/** A port the kernel considers free on 127.0.0.1 right now (never 6379). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer()
      server.unref()
      server.once('error', reject)
      server.listen(0, HOST, () => {
        const address = server.address()
        server.close(() => {
          if (address !== null && typeof address === 'object') resolve(address.port)
          else reject(new Error(`unexpected server address ${String(address)}`))
        })
      })
    })
    if (port !== SHARED_PORT) return port
  }
}

let redisServerPath: string | undefined

/** The redis-server executable on PATH. */
function findRedisServer(): string {
  if (redisServerPath) return redisServerPath
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '')
  for (const dir of dirs) {
    const candidate = path.join(dir, 'redis-server')
    try {
      accessSync(candidate, fsConstants.X_OK)
      redisServerPath = candidate
      return candidate
    } catch {
      // not here
    }
  }
  throw new Error(
    'redis-server was not found on PATH. The Redis tests start their own servers; ' +
      '`bash .ci/run` installs it (apt-get install -y redis-server), or install it yourself.',
  )
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 connection (readiness probes, CLIENT PAUSE, DEBUG SLEEP)

type Reply = string | number | null | Reply[]

class RespReplyError extends Error {
  override name = 'RespReplyError'
}

interface Waiter {
  resolve(reply: Reply): void
  reject(err: Error): void
}

class RespConnection {
  private buffer: Buffer = Buffer.alloc(0)
  private readonly waiting: Waiter[] = []
  private failure: Error | undefined

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  static open(port: number, timeoutMs: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: HOST, port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`connecting to ${HOST}:${port} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      const onError = (err: Error): void => {
        clearTimeout(timer)
        reject(err)
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeListener('error', onError)
        resolve(new RespConnection(socket))
      })
    })
  }

  /** Writes a command; `written` resolves once it is handed to the kernel. */
  send(args: readonly string[]): { written: Promise<void>; reply: Promise<Reply> } {
    const reply = new Promise<Reply>((resolve, reject) => {
      if (this.failure) reject(this.failure)
      else this.waiting.push({ resolve, reject })
    })
    const written = new Promise<void>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure)
        return
      }
      this.socket.write(encode(args), (err) => (err ? reject(err) : resolve()))
    })
    return { written, reply }
  }

  /** Sends a command and waits for its reply; the connection is closed on timeout. */
  async call(args: readonly string[], timeoutMs: number): Promise<Reply> {
    const { written, reply } = this.send(args)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close()
        reject(new Error(`${args[0] ?? 'command'} got no reply within ${timeoutMs} ms`))
      }, timeoutMs)
    })
    try {
      const [, value] = await Promise.race([Promise.all([written, reply]), timeout])
      return value
    } finally {
      clearTimeout(timer)
    }
  }

  unref(): void {
    this.socket.unref()
  }

  close(): void {
    this.socket.destroy()
    this.fail(new Error('connection closed by the harness'))
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    for (;;) {
      let parsed: [Reply | RespReplyError, number] | undefined
      try {
        parsed = parseReply(this.buffer, 0)
      } catch (err) {
        this.socket.destroy()
        this.fail(err instanceof Error ? err : new Error(String(err)))
        return
      }
      if (!parsed) return
      this.buffer = this.buffer.subarray(parsed[1])
      const waiter = this.waiting.shift()
      const value = parsed[0]
      if (value instanceof RespReplyError) waiter?.reject(value)
      else waiter?.resolve(value)
    }
  }

  private fail(err: Error): void {
    this.failure ??= err
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure)
  }
}

function encode(args: readonly string[]): string {
  let out = `*${args.length}\r\n`
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`
  return out
}

/** Parses one RESP2 reply at `start`; undefined if the buffer does not hold all of it yet. */
function parseReply(buf: Buffer, start: number): [Reply | RespReplyError, number] | undefined {
  const lineEnd = buf.indexOf('\r\n', start)
  if (lineEnd < 0) return undefined
  const type = buf[start]
  const line = buf.toString('utf8', start + 1, lineEnd)
  const next = lineEnd + 2
  switch (type) {
    case 0x2b: // '+'
      return [line, next]
    case 0x2d: // '-'
      return [new RespReplyError(line), next]
    case 0x3a: // ':'
      return [Number(line), next]
    case 0x24: {
      // '$'
      const length = Number(line)
      if (length < 0) return [null, next]
      if (buf.length < next + length + 2) return undefined
      return [buf.toString('utf8', next, next + length), next + length + 2]
    }
    case 0x2a: {
      // '*'
      const count = Number(line)
      if (count < 0) return [null, next]
      const items: Reply[] = []
      let pos = next
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, pos)
        if (!item) return undefined
        if (item[0] instanceof RespReplyError) throw item[0]
        items.push(item[0])
        pos = item[1]
      }
      return [items, pos]
    }
    default:
      throw new Error(`unexpected RESP reply type byte ${String(type)}`)
  }
}

/**
 * One readiness probe: 'ready' if a server answers PING on the port and reports `pid` as its
 * process id, 'foreign' if a server with another pid answers, 'down' otherwise.
 */
async function probe(port: number, pid: number): Promise<'ready' | 'foreign' | 'down'> {
  let conn: RespConnection
  try {
    conn = await RespConnection.open(port, 500)
  } catch {
    return 'down'
  }
  try {
    const [pong, info] = await Promise.all([conn.call(['PING'], 1_000), conn.call(['INFO', 'server'], 1_000)])
    if (pong !== 'PONG' || typeof info !== 'string') return 'down'
    const match = /^process_id:(\d+)\r?$/m.exec(info)
    return match && Number(match[1]) === pid ? 'ready' : 'foreign'
  } catch {
    return 'down'
  } finally {
    conn.close()
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
