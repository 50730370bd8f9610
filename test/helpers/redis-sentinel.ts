/**
 * A private Redis Sentinel set-up for tests: one primary, one replica and three sentinels, all
 * on 127.0.0.1.
 *
 * The two data servers are servers of test/helpers/redis-server.ts (`startRedis`). The sentinels
 * cannot be: Sentinel only runs with a config file given as redis-server's FIRST argument (it
 * rewrites that file with its id and everything it learns, and exits if it has none), while
 * `startRedis` always starts with `--port`. So this module spawns them itself, as
 * `redis-server <dir>/sentinel.conf --sentinel`, through test/helpers/processes.ts like
 * `startRedis` does. All five processes therefore share its guarantees: kernel-assigned ports
 * (never 6379 or 26379), a temp dir each, no persistence, readiness only once the process on the
 * port reports its own pid, and SIGKILL plus temp-dir removal on exit, on SIGTERM/SIGINT/SIGHUP
 * and, through a detached watchdog, when the test process itself is SIGKILLed. Every connection
 * made here goes to a port of a process this module or `startRedis` spawned; nothing ever talks
 * to 127.0.0.1:6379 or :26379.
 *
 * Sentinel's own timers are fixed in sentinel.c and shape every wait below: it sends INFO to
 * each instance every 10 s (every 1 s while a failover is under way), PINGs every 1 s, and
 * publishes its hello message (how sentinels find each other) every 2 s. Only down-after and
 * failover-timeout are configurable, and both are set small here.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import {
  HOST,
  findRedisServer,
  infoFields,
  onFreePort,
  removeTempDir,
  startProcess,
  tempDir,
  type ManagedProcess,
} from './processes.js'
import { startRedis, type RedisServer, type StartOptions } from './redis-server.js'

export type { Redis, RedisOptions, RedisServer }

const SENTINELS = 3
/** Two of three: one sentinel may be down and failover still works, as in a real deployment. */
const QUORUM = 2
const DEFAULTS = {
  name: 'corral',
  downAfterMs: 1_000,
  failoverTimeoutMs: 5_000,
  readyTimeoutMs: 15_000,
} as const
/**
 * After a failover, sentinels turn the old primary into a replica only once it has reported
 * role:master for 8 s (SENTINEL_PUBLISH_PERIOD * 4), at their next INFO to it (every 10 s):
 * about 10 s after the switch in practice, at most ~18 s; plus a sync. The default bound of settle().
 */
const SETTLE_TIMEOUT_MS = 25_000
const POLL_MS = 50
/** Per sentinel, in error messages: enough for the +sdown/+switch-master story, not a wall of text. */
const OUTPUT_IN_ERRORS = 3_000
/** Options only the harness sets on the data servers. */
const RESERVED_ARGS = ['--replicaof', '--slaveof']

export interface SentinelAddress {
  readonly host: '127.0.0.1'
  readonly port: number
}

/** ioredis options that make a client find the primary through the sentinels. */
export interface SentinelClientOptions {
  readonly sentinels: SentinelAddress[]
  readonly name: string
}

/** Options for {@link startSentinelGroup}. */
export interface StartSentinelOptions {
  /** The master name the sentinels monitor. @default 'corral' */
  readonly name?: string
  /** `sentinel down-after-milliseconds`: how long the primary must be silent to count as down. @default 1000 */
  readonly downAfterMs?: number
  /** `sentinel failover-timeout`; a failed leader election is retried after twice this. @default 5000 */
  readonly failoverTimeoutMs?: number
  /** How long startSentinelGroup waits for replication and sentinel discovery. @default 15000 */
  readonly readyTimeoutMs?: number
  /** Extra redis-server args for both data servers (see {@link StartOptions}); not `--replicaof`. */
  readonly args?: StartOptions['args']
}

/** What failover() and killPrimary() observed. */
export interface Failover {
  /** Port of the primary before. */
  readonly from: number
  /** Port of the primary after (the former replica). */
  readonly to: number
  /** Milliseconds from the trigger (SENTINEL FAILOVER sent, or SIGKILL) until every sentinel and the new primary agree. */
  readonly ms: number
}

/** A Sentinel set-up started by {@link startSentinelGroup}. */
export interface SentinelGroup {
  /** The master name the sentinels monitor. */
  readonly name: string
  /** Sentinel addresses, ready for ioredis' `sentinels` option. */
  readonly sentinels: readonly SentinelAddress[]
  /** Both data servers in start order (the first primary, then the first replica), whatever their roles now. */
  readonly servers: readonly RedisServer[]
  /** The sentinels' down-after-milliseconds (how soon they can notice a dead primary). */
  readonly downAfterMs: number
  /** The sentinels' failover-timeout (a split leader vote is retried after twice this). */
  readonly failoverTimeoutMs: number
  /** Pids of every running process of the group (2 servers, 3 sentinels), for liveness checks. */
  pids(): number[]
  /** The port the sentinels give for the primary: SENTINEL GET-MASTER-ADDR-BY-NAME on the first sentinel that answers. */
  currentPrimaryPort(): Promise<number>
  /** The server at {@link currentPrimaryPort}. */
  primary(): Promise<RedisServer>
  /**
   * The other server. Not necessarily replicating: it may have been killed (killPrimary), or be a
   * demoted primary the sentinels have not reconfigured yet (after failover()); see settle().
   */
  replica(): Promise<RedisServer>
  /**
   * Waits until the group is settled (see settle()), sends `SENTINEL FAILOVER <name>` to one
   * sentinel, and resolves once every sentinel gives the former replica's address and that
   * server reports role:master. The old primary keeps role:master, its clients and their writes
   * (lost later) until the sentinels demote it, about 10 s later; settle() waits for that.
   */
  failover(): Promise<Failover>
  /**
   * Waits until the group is settled, SIGKILLs the primary, and resolves once every sentinel
   * gives the replica's address and it reports role:master. The killed server stays down; its
   * handle (in `servers`, or replica()) can restart() it; the sentinels make it a replica about
   * 10 s later (settle() waits for that). Until then failover() and killPrimary() throw at once.
   */
  killPrimary(): Promise<Failover>
  /**
   * Resolves once every sentinel agrees on the primary, sees the other server as a connected
   * replica and two other sentinels, the primary reports role:master and the other server
   * replicates from it with its link up. Throws with the observed state after `timeoutMs`
   * (default 25 s, enough for sentinels to reconfigure a demoted primary), and at once while a
   * server is killed.
   */
  settle(timeoutMs?: number): Promise<void>
  /** `{ sentinels, name }`: what an ioredis client (or Corral's `l2.redis`) needs for this group. */
  clientOptions(): SentinelClientOptions
  /**
   * A new ioredis client that follows the primary through the sentinels; closed by stop().
   * Defaults, overridable by `options`: reconnect and re-ask the sentinels every 50–500 ms,
   * `maxRetriesPerRequest: 1`, no `CLIENT SETINFO` (Redis 7.0 does not know it), an `error`
   * listener. `failoverDetector` stays off (ioredis' default) unless you pass it.
   */
  client(options?: RedisOptions): Redis
  /** An admin connection to sentinel `index` (for SENTINEL commands); the same one on every call, closed by stop(). */
  sentinelClient(index?: number): Redis
  /** Kills all five processes, closes every client made here, removes the temp dirs. Idempotent. */
  stop(): Promise<void>
}

interface Settings {
  readonly name: string
  readonly downAfterMs: number
  readonly failoverTimeoutMs: number
  readonly readyTimeoutMs: number
  readonly args: readonly string[]
}

/**
 * Starts a primary, a replica of it and three sentinels monitoring it, and resolves once the
 * replica's link is up and every sentinel knows the primary, the replica and the two other
 * sentinels (usually 2–3 s: sentinels find each other through hellos sent every 2 s). Throws,
 * after stopping whatever it started, with the sentinels' output if that takes longer than
 * `readyTimeoutMs`.
 */
export async function startSentinelGroup(options: StartSentinelOptions = {}): Promise<SentinelGroup> {
  const settings = resolveSettings(options)
  const bin = findRedisServer()
  // A primary may be the old replica later, so both get the same settings. A diskless sync
  // normally waits 5 s for more replicas to join; there is only ever one.
  const serverArgs = [...settings.args, '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0']
  const servers: RedisServer[] = []
  const sentinels: SentinelProcess[] = []
  try {
    const primary = await startRedis({ args: serverArgs })
    servers.push(primary)
    servers.push(await startRedis({ args: [...serverArgs, '--replicaof', HOST, String(primary.port)] }))
    const results = await Promise.allSettled(
      Array.from({ length: SENTINELS }, () => startSentinel(bin, (port, dir) => sentinelConf(port, dir, primary.port, settings))),
    )
    for (const result of results) if (result.status === 'fulfilled') sentinels.push(result.value)
    const failed = results.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
  } catch (err) {
    await Promise.all([...sentinels.map((s) => s.stop()), ...servers.map((s) => s.stop())])
    throw err
  }
  const group = new ManagedSentinelGroup(settings, servers, sentinels)
  try {
    await group.settleWithin('startSentinelGroup', settings.readyTimeoutMs)
    return group
  } catch (err) {
    await group.stop()
    throw err
  }
}

function resolveSettings(options: StartSentinelOptions): Settings {
  const name = options.name ?? DEFAULTS.name
  // The name is written into sentinel.conf unquoted.
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`startSentinelGroup: name must match [A-Za-z0-9._-]+, got ${JSON.stringify(name)}`)
  const positive = (key: 'downAfterMs' | 'failoverTimeoutMs' | 'readyTimeoutMs'): number => {
    const value = options[key] ?? DEFAULTS[key]
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`startSentinelGroup: ${key} must be a positive integer, got ${value}`)
    return value
  }
  const args = [...(options.args ?? [])]
  for (const arg of args) {
    if (RESERVED_ARGS.includes(arg.toLowerCase())) {
      throw new Error(`startSentinelGroup: ${arg} is set by the harness and cannot be passed in options.args`)
    }
  }
  return {
    name,
    downAfterMs: positive('downAfterMs'),
    failoverTimeoutMs: positive('failoverTimeoutMs'),
    readyTimeoutMs: positive('readyTimeoutMs'),
    args,
  }
}

function sentinelConf(port: number, dir: string, primaryPort: number, s: Settings): string {
  return [
    `port ${port}`,
    `bind ${HOST}`,
    'protected-mode yes',
    'daemonize no',
    'logfile ""',
    `dir "${dir}"`,
    // Must precede `sentinel monitor`. Everything here is an IP; never wait on a resolver.
    'sentinel resolve-hostnames no',
    'sentinel announce-hostnames no',
    `sentinel monitor ${s.name} ${HOST} ${primaryPort} ${QUORUM}`,
    `sentinel down-after-milliseconds ${s.name} ${s.downAfterMs}`,
    `sentinel failover-timeout ${s.name} ${s.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${s.name} 1`,
    '',
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------
// The group handle

/** What one poll saw; `problems` empty means settled. */
interface Observation {
  readonly primaryPort: number | undefined
  readonly problems: string[]
}

class ManagedSentinelGroup implements SentinelGroup {
  readonly name: string
  readonly sentinels: readonly SentinelAddress[]
  readonly downAfterMs: number
  readonly failoverTimeoutMs: number
  private readonly clients = new Set<Redis>()
  private readonly inspectors = new Map<RedisServer, Redis>()
  private stopping: Promise<void> | undefined

  constructor(
    settings: Settings,
    readonly servers: readonly RedisServer[],
    private readonly procs: readonly SentinelProcess[],
  ) {
    this.name = settings.name
    this.downAfterMs = settings.downAfterMs
    this.failoverTimeoutMs = settings.failoverTimeoutMs
    this.sentinels = procs.map((p) => ({ host: HOST, port: p.port }))
  }

  pids(): number[] {
    return [...this.servers.map((s) => s.pid), ...this.procs.map((p) => p.pid)].filter((pid): pid is number => pid !== undefined)
  }

  async currentPrimaryPort(): Promise<number> {
    this.assertNotStopped('currentPrimaryPort')
    const errors: string[] = []
    for (const proc of this.procs) {
      try {
        return await this.askPrimaryPort(proc)
      } catch (err) {
        errors.push(`sentinel ${proc.port}: ${message(err)}`)
      }
    }
    throw new Error(`currentPrimaryPort: no sentinel answered:\n${errors.join('\n')}`)
  }

  async primary(): Promise<RedisServer> {
    return this.serverAt(await this.currentPrimaryPort())
  }

  async replica(): Promise<RedisServer> {
    const primary = await this.primary()
    return this.otherThan(primary)
  }

  async failover(): Promise<Failover> {
    this.assertNotStopped('failover')
    const from = await this.settleWithin('failover', SETTLE_TIMEOUT_MS)
    const to = this.otherThan(this.serverAt(from)).port
    const sentinel = this.procs[0]
    if (!sentinel) throw new Error('failover: the group has no sentinels')
    const t0 = performance.now()
    try {
      await sentinel.admin().call('SENTINEL', 'FAILOVER', this.name)
    } catch (err) {
      // -INPROG or -NOGOODSLAVE: say what the sentinels saw.
      throw new Error(`failover: SENTINEL FAILOVER ${this.name} on ${HOST}:${sentinel.port} failed: ${message(err)}\n${this.outputs()}`, {
        cause: err,
      })
    }
    // No election and no down detection: the sentinel acts at its next timer tick (~100 ms); the
    // rest is INFO polling of the promoted replica (1 s) and hellos to the others (<= 2 s).
    // Sentinel itself gives up on a promotion that takes longer than failover-timeout.
    await this.waitForPrimary('failover', to, this.failoverTimeoutMs + 5_000)
    return { from, to, ms: Math.round(performance.now() - t0) }
  }

  async killPrimary(): Promise<Failover> {
    this.assertNotStopped('killPrimary')
    const from = await this.settleWithin('killPrimary', SETTLE_TIMEOUT_MS)
    const primary = this.serverAt(from)
    const to = this.otherThan(primary).port
    const t0 = performance.now()
    await primary.kill()
    // down-after, then agreement on o_down and a leader election (each sentinel waits up to 1 s
    // at random before asking for votes); a split vote is retried after 2 * failover-timeout.
    await this.waitForPrimary('killPrimary', to, this.downAfterMs + 2 * this.failoverTimeoutMs + 5_000)
    return { from, to, ms: Math.round(performance.now() - t0) }
  }

  async settle(timeoutMs: number = SETTLE_TIMEOUT_MS): Promise<void> {
    this.assertNotStopped('settle')
    await this.settleWithin('settle', timeoutMs)
  }

  clientOptions(): SentinelClientOptions {
    return { sentinels: this.sentinels.map((s) => ({ ...s })), name: this.name }
  }

  client(options: RedisOptions = {}): Redis {
    this.assertNotStopped('client')
    if (options.host !== undefined || options.port !== undefined || options.path !== undefined) {
      throw new Error('client: host, port and path are not allowed; the client finds the primary through the sentinels')
    }
    const client = new Redis({
      retryStrategy: (times: number) => Math.min(times * 50, 500),
      sentinelRetryStrategy: (times: number) => Math.min(times * 50, 500),
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      disableClientInfo: true,
      ...options,
      ...this.clientOptions(),
    })
    client.on('error', () => {
      // Expected while a primary is down or being replaced; commands still reject with the error.
    })
    this.clients.add(client)
    return client
  }

  sentinelClient(index = 0): Redis {
    this.assertNotStopped('sentinelClient')
    const proc = this.procs[index]
    if (!proc) throw new RangeError(`sentinelClient: index must be 0..${this.procs.length - 1}, got ${index}`)
    return proc.admin()
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  /**
   * Polls until settled (see settle()) and returns the primary's port. Throws after `timeoutMs`
   * with the last observation and the sentinels' output.
   */
  async settleWithin(op: string, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.stopping) throw new Error(`${op}: the group was stopped`)
      // Waiting cannot help: nothing but the test restarts a killed server.
      const killed = this.servers.find((s) => !s.running)
      if (killed) {
        throw new Error(`${op}: server ${killed.port} is not running (killed); restart() it first, and the sentinels will make it a replica`)
      }
      const seen = await this.observe()
      if (seen.problems.length === 0 && seen.primaryPort !== undefined) return seen.primaryPort
      if (Date.now() > deadline) {
        throw new Error(`${op}: sentinel group not settled within ${timeoutMs} ms:\n${seen.problems.join('\n')}\n${this.outputs()}`)
      }
      await delay(POLL_MS)
    }
  }

  private async observe(): Promise<Observation> {
    const problems: string[] = []
    const views = await Promise.all(this.procs.map((proc) => this.sentinelView(proc)))
    const ports = new Set<number>()
    for (const view of views) {
      if (typeof view === 'string') problems.push(view)
      else ports.add(view.primaryPort)
    }
    if (ports.size !== 1) {
      if (ports.size > 1) problems.push(`sentinels disagree on the primary: ports ${[...ports].join(', ')}`)
      return { primaryPort: undefined, problems }
    }
    const [primaryPort] = ports
    if (primaryPort === undefined) return { primaryPort: undefined, problems }
    const primary = this.servers.find((s) => s.port === primaryPort)
    if (!primary) return { primaryPort, problems: [...problems, `sentinels report a primary on port ${primaryPort}, which is not a server of this group`] }
    const replica = this.otherThan(primary)
    for (const view of views) {
      if (typeof view === 'string') continue
      const entry = view.replicas.find((r) => Number(r.port) === replica.port)
      if (!entry) problems.push(`sentinel ${view.port}: does not know replica ${replica.port} yet`)
      else if (entry.flags !== 'slave') problems.push(`sentinel ${view.port}: replica ${replica.port} flags=${entry.flags}`)
    }
    const [primaryInfo, replicaInfo] = await Promise.all([this.replication(primary), this.replication(replica)])
    if (typeof primaryInfo === 'string') problems.push(`primary ${primary.port}: ${primaryInfo}`)
    else if (primaryInfo.role !== 'master') problems.push(`primary ${primary.port}: role:${primaryInfo.role}`)
    if (typeof replicaInfo === 'string') problems.push(`replica ${replica.port}: ${replicaInfo}`)
    else if (replicaInfo.role !== 'slave' || Number(replicaInfo.master_port) !== primary.port || replicaInfo.master_link_status !== 'up') {
      problems.push(
        `replica ${replica.port}: role:${replicaInfo.role} master_port:${replicaInfo.master_port ?? '-'} master_link_status:${replicaInfo.master_link_status ?? '-'}`,
      )
    }
    return { primaryPort, problems }
  }

  /** One sentinel's view of the master, or a description of what is not right yet. */
  private async sentinelView(
    proc: SentinelProcess,
  ): Promise<string | { port: number; primaryPort: number; replicas: Record<string, string>[] }> {
    if (proc.pid === undefined) return `sentinel ${proc.port}: not running`
    try {
      const admin = proc.admin()
      const [master, replicas] = await Promise.all([
        admin.call('SENTINEL', 'MASTER', this.name).then(pairs),
        admin.call('SENTINEL', 'REPLICAS', this.name).then((reply) => (Array.isArray(reply) ? reply.map(pairs) : [])),
      ])
      const what = `sentinel ${proc.port}: master ${master.ip}:${master.port} flags=${master.flags} num-slaves=${master['num-slaves']} num-other-sentinels=${master['num-other-sentinels']}`
      // Exactly 'master': no s_down, o_down or failover_in_progress.
      if (master.flags !== 'master' || Number(master['num-other-sentinels']) !== SENTINELS - 1 || master.ip !== HOST) return what
      return { port: proc.port, primaryPort: Number(master.port), replicas }
    } catch (err) {
      return `sentinel ${proc.port}: ${message(err)}`
    }
  }

  /** Polls until every sentinel gives `port` for the primary and that server reports role:master. */
  private async waitForPrimary(op: string, port: number, timeoutMs: number): Promise<void> {
    const server = this.serverAt(port)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const answers = await Promise.all(this.procs.map((proc) => this.askPrimaryPort(proc).catch((err: unknown) => message(err))))
      const info = answers.every((a) => a === port) ? await this.replication(server) : undefined
      if (info !== undefined && typeof info !== 'string' && info.role === 'master') return
      if (this.stopping) throw new Error(`${op}: the group was stopped`)
      if (Date.now() > deadline) {
        const sentinels = answers.map((a, i) => `sentinel ${this.procs[i]?.port}: ${typeof a === 'number' ? `primary port ${a}` : a}`)
        const role = info === undefined ? '' : `\nserver ${port}: ${typeof info === 'string' ? info : `role:${info.role}`}`
        throw new Error(
          `${op}: ${port} did not become the primary within ${timeoutMs} ms:\n${sentinels.join('\n')}${role}\n${this.outputs()}`,
        )
      }
      await delay(POLL_MS)
    }
  }

  private async askPrimaryPort(proc: SentinelProcess): Promise<number> {
    if (proc.pid === undefined) throw new Error('not running')
    const reply = await proc.admin().call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`GET-MASTER-ADDR-BY-NAME answered ${JSON.stringify(reply)}`)
    return Number(reply[1])
  }

  /** INFO replication of a server as fields, or why there is none. */
  private async replication(server: RedisServer): Promise<string | Record<string, string>> {
    if (!server.running) return 'not running'
    try {
      return infoFields(await this.inspector(server).info('replication'))
    } catch (err) {
      return message(err)
    }
  }

  private inspector(server: RedisServer): Redis {
    let client = this.inspectors.get(server)
    if (client === undefined) {
      // Bounded so a frozen server cannot hang a poll; server.stop() closes it.
      client = server.client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
      this.inspectors.set(server, client)
    }
    return client
  }

  private serverAt(port: number): RedisServer {
    const server = this.servers.find((s) => s.port === port)
    if (!server) throw new Error(`the sentinels report a primary on port ${port}, which is not a server of this group`)
    return server
  }

  private otherThan(server: RedisServer): RedisServer {
    const other = this.servers.find((s) => s !== server)
    if (!other) throw new Error('the group has only one server')
    return other
  }

  /** The tail of every sentinel's log, for error messages. */
  private outputs(): string {
    return this.procs.map((p) => `--- sentinel ${p.port} output (tail):\n${p.output().slice(-OUTPUT_IN_ERRORS)}`).join('\n')
  }

  private assertNotStopped(op: string): void {
    if (this.stopping) throw new Error(`${op}: the sentinel group has been stopped`)
  }

  private async doStop(): Promise<void> {
    for (const client of this.clients) client.disconnect()
    this.clients.clear()
    // Each server's stop() closes the inspectors it handed out.
    this.inspectors.clear()
    // Sentinels first, so none of them starts a failover while the servers go down.
    await Promise.all(this.procs.map((p) => p.stop()))
    await Promise.all(this.servers.map((s) => s.stop()))
  }
}

// ---------------------------------------------------------------------------------------------
// Sentinel processes

class SentinelProcess {
  private adminClient: Redis | undefined
  private stopping: Promise<void> | undefined

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly proc: ManagedProcess,
  ) {}

  get pid(): number | undefined {
    return this.proc.exited ? undefined : this.proc.pid
  }

  output(): string {
    return this.proc.output.text()
  }

  admin(): Redis {
    if (this.adminClient === undefined) {
      this.adminClient = new Redis({
        host: HOST,
        port: this.port,
        // Flat RESP2 arrays for SENTINEL replies, whatever ioredis' default protocol.
        protocol: 2,
        disableClientInfo: true,
        retryStrategy: (times: number) => Math.min(times * 50, 500),
        maxRetriesPerRequest: 1,
        connectTimeout: 1_000,
        commandTimeout: 2_000,
      })
      this.adminClient.on('error', () => {
        // Commands reject with the error; polls report it.
      })
    }
    return this.adminClient
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.adminClient?.disconnect()
      await this.proc.kill()
      await removeTempDir(this.dir)
    })()
    return this.stopping
  }
}

/** One sentinel on a free port with its own temp dir (its config file lives there). */
async function startSentinel(bin: string, conf: (port: number, dir: string) => string): Promise<SentinelProcess> {
  const dir = await tempDir('corral-sentinel-')
  try {
    const file = path.join(dir, 'sentinel.conf')
    return await onFreePort('startSentinelGroup', async (port) => {
      await writeFile(file, conf(port, dir))
      // The config file must be the first argument: that is how redis-server knows which file to rewrite.
      const proc = await startProcess({ label: 'sentinel', bin, args: [file, '--sentinel'], port, dir })
      return new SentinelProcess(port, dir, proc)
    })
  } catch (err) {
    await removeTempDir(dir)
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** `[k1, v1, k2, v2, ...]` (a SENTINEL reply) → { k1: v1, ... } */
function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  return out
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
