/**
 * The redis-server processes of the test harnesses (redis-server.ts, redis-sentinel.ts, and
 * redis-cluster.ts through the former): spawning, readiness, and making sure they die with us.
 *
 * Every child listens on 127.0.0.1 only, on a port the kernel handed out that is never 6379,
 * 16379 or 26379 (the shared Redis, its cluster bus port and the default Sentinel port), and only
 * counts as started once whatever answers on its port reports the child's own process id. So
 * nothing here ever talks to the shared Redis or to any server these harnesses did not spawn.
 *
 * Children never outlive the test process. One process-wide registry holds every live child and
 * temp dir: they are SIGKILLed and removed from a `process.on('exit')` hook and on
 * SIGTERM/SIGINT/SIGHUP (Vitest ends fork workers with SIGTERM, which skips 'exit' hooks), and a
 * tiny detached `sh` watchdog per child does the same within a second if the test process dies
 * without running any hook (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants as fsConstants, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

export const HOST = '127.0.0.1'
/** The shared Redis, its cluster bus port and the default Sentinel port: never used, even if the kernel offers them. */
const SHARED_PORTS = new Set([6379, 16379, 26379])
const START_DEADLINE_MS = 5_000
const START_ATTEMPTS = 5
const OUTPUT_TAIL_BYTES = 16 * 1024

// ---------------------------------------------------------------------------------------------
// Children

/** A redis-server child of the test process (a data server or a sentinel). */
export class ManagedProcess {
  /** True once the process has exited and been reaped; it must not be signalled any more. */
  exited = false
  /** Set by whoever sends SIGSTOP; an exit clears it. */
  frozen = false
  /** Resolves on the child's 'exit' event. */
  readonly exit: Promise<void>
  readonly output = new OutputTail()

  constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    dir: string,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk))
    child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk))
    child.on('error', (err) => this.output.push(Buffer.from(`\n[harness] child process error: ${err.message}\n`)))
    const watchdog = spawnWatchdog(pid, dir)
    const reg = registry()
    reg.live.set(pid, this)
    this.exit = new Promise<void>((resolve) => {
      child.once('exit', () => {
        this.exited = true
        this.frozen = false
        reg.live.delete(pid)
        watchdog?.kill('SIGKILL')
        resolve()
      })
    })
  }

  /** Signals only a process that has not been reaped, so a recycled pid is never hit. */
  signal(sig: NodeJS.Signals): void {
    if (this.exited) return
    try {
      process.kill(this.pid, sig)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
  }

  /** SIGKILLs the process (also when stopped: SIGKILL needs no SIGCONT) and waits for its exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL')
    // Harmless after SIGKILL; sent after it so a frozen server gets no chance to answer anything.
    this.signal('SIGCONT')
    await this.exit
  }

  /** Resolves once the child's stdio has closed (all output read), or after 200 ms. */
  async settleOutput(): Promise<void> {
    const { child } = this
    if (child.stdout?.closed !== false && child.stderr?.closed !== false) return
    await Promise.race([new Promise<void>((resolve) => child.once('close', () => resolve())), delay(200)])
  }

  describeExit(): string {
    const { exitCode, signalCode } = this.child
    return signalCode ? `signal ${signalCode}` : `exit code ${String(exitCode)}`
  }
}

/** The port was taken, the process exited, or it did not answer in time. */
export class StartFailure extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message)
    this.name = 'StartFailure'
  }
}

export interface StartSpec {
  /** What error messages call the process, e.g. `redis-server` or `sentinel`. */
  readonly label: string
  readonly bin: string
  readonly args: readonly string[]
  /** The port the args make it listen on; it is probed there. */
  readonly port: number
  /** Its temp dir (from {@link tempDir}), which the watchdog removes with it. */
  readonly dir: string
}

/**
 * Spawns the process and resolves once it answers PING on `spec.port` with its own pid. Throws a
 * {@link StartFailure} with the process' output if it exits first or does not answer within 5 s.
 */
export async function startProcess(spec: StartSpec): Promise<ManagedProcess> {
  const proc = await spawnManaged(spec.bin, spec.args, spec.dir)
  const where = `${spec.label} on ${HOST}:${spec.port}`
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    if (proc.exited) {
      await proc.settleOutput()
      const out = proc.output.text()
      throw new StartFailure(
        `${where} exited during start (${proc.describeExit()}). Output:\n${out}`,
        /address already in use/i.test(out),
      )
    }
    const state = await probe(spec.port, proc.pid)
    if (state === 'ready') return proc
    if (Date.now() > deadline) {
      await proc.kill()
      throw new StartFailure(
        `${where} did not answer PING within ${START_DEADLINE_MS} ms` +
          `${state === 'foreign' ? ' (another process answers on that port)' : ''}. Output:\n${proc.output.text()}`,
        false,
      )
    }
    await delay(20)
  }
}

/**
 * Calls `start` with a free port, and again with another one while it fails because the port was
 * taken between freePort() and the child's bind().
 */
export async function onFreePort<T>(op: string, start: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort()
    try {
      return await start(port)
    } catch (err) {
      lastError = err
      if (!(err instanceof StartFailure && err.portInUse)) throw err
    }
  }
  throw new Error(`${op}: no free port after ${START_ATTEMPTS} attempts`, { cause: lastError })
}

async function spawnManaged(bin: string, args: readonly string[], dir: string): Promise<ManagedProcess> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const pid = child.pid
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve))
    throw new Error(`could not spawn ${bin}: ${err.message}`, { cause: err })
  }
  return new ManagedProcess(child, pid, dir)
}

/**
 * Kills `pid` and removes `dir` once this process is gone, unless the child is gone first.
 * Covers deaths that skip every hook (SIGKILL). Returns undefined if sh cannot be spawned.
 */
function spawnWatchdog(pid: number, dir: string): ChildProcess | undefined {
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
    const watchdog = spawn('/bin/sh', ['-c', script, 'corral-redis-watchdog', String(process.pid), String(pid), dir], {
      stdio: 'ignore',
      detached: true,
    })
    watchdog.on('error', () => {
      // No /bin/sh: the exit and signal hooks still cover every death but SIGKILL.
    })
    watchdog.unref()
    return watchdog
  } catch {
    return undefined
  }
}

/** Keeps the last OUTPUT_TAIL_BYTES of a child's stdout and stderr. */
export class OutputTail {
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
// Process-wide registry, exit hook and signal hooks

/**
 * Only what cleanup needs, so that a registry created by one copy of this module (Vitest
 * evaluates it again for every test file in a worker) works with children of any other copy.
 */
interface Tracked {
  readonly pid: number
  readonly exited: boolean
}

interface Registry {
  readonly live: Map<number, Tracked>
  readonly dirs: Set<string>
}

// On globalThis, not in a module variable: one registry and one set of hooks per process, however
// many copies of this module are loaded.
const REGISTRY_KEY = Symbol.for('corral.test.processes.registry')

function registry(): Registry {
  const holder = globalThis as typeof globalThis & { [REGISTRY_KEY]?: Registry }
  const existing = holder[REGISTRY_KEY]
  if (existing) return existing
  const created: Registry = { live: new Map(), dirs: new Set() }
  const cleanup = (): void => {
    for (const proc of created.live.values()) {
      if (proc.exited) continue
      // Thaw first so nothing depends on SIGKILL reaching a stopped process.
      for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(proc.pid, sig)
        } catch {
          // Already gone.
        }
      }
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
  // let the signal do what it would have done without this listener (the signal-exit pattern):
  // if someone else listens too, the signal is theirs to handle; if not, it is raised again.
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
  return created
}

/** A new temp dir, removed on exit unless {@link removeTempDir} was called first. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  registry().dirs.add(dir)
  return dir
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  registry().dirs.delete(dir)
}

// ---------------------------------------------------------------------------------------------
// Ports and binaries

/** A port the kernel considers free on 127.0.0.1 right now (never one of SHARED_PORTS). */
export async function freePort(): Promise<number> {
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
    if (!SHARED_PORTS.has(port)) return port
  }
}

/** Resolves with the error code of a raw TCP connect to `port` on 127.0.0.1 (e.g. 'ECONNREFUSED'), or 'connected'. */
export function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

/** True if a process with this pid exists (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const executables = new Map<string, string>()

/** The executable `name` on PATH; throws `name was not found on PATH. <install>` otherwise. */
export function findExecutable(name: string, install: string): string {
  const known = executables.get(name)
  if (known !== undefined) return known
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '')) {
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, fsConstants.X_OK)
      executables.set(name, candidate)
      return candidate
    } catch {
      // not here
    }
  }
  throw new Error(`${name} was not found on PATH. ${install}`)
}

export function findRedisServer(): string {
  return findExecutable(
    'redis-server',
    'The Redis tests start their own servers; `bash .ci/run` installs it (apt-get install -y redis-server), or install it yourself.',
  )
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 connection (readiness probes; redis-server.ts' CLIENT PAUSE and DEBUG SLEEP)

export type Reply = string | number | null | Reply[]

class RespReplyError extends Error {
  override name = 'RespReplyError'
}

interface Waiter {
  resolve(reply: Reply): void
  reject(err: Error): void
}

export class RespConnection {
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
    return Number(infoFields(info).process_id) === pid ? 'ready' : 'foreign'
  } catch {
    return 'down'
  } finally {
    conn.close()
  }
}

/** `role:master\r\n...` (INFO) → { role: 'master', ... } */
export function infoFields(info: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim()
  }
  return out
}
