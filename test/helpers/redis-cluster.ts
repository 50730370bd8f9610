/**
 * A private Redis Cluster for tests: N masters, no replicas, on 127.0.0.1 only.
 *
 * Every node is a server of test/helpers/redis-server.ts (`startRedis`), so it inherits that
 * module's guarantees: a kernel-assigned port that is never 6379, a temp dir of its own, no
 * persistence, `--protected-mode yes`, and SIGKILL plus temp-dir removal on exit, on
 * SIGTERM/SIGINT/SIGHUP and, through a detached watchdog, when the test process is SIGKILLed.
 * The cluster bus port comes from the same `freePort()` (test/helpers/processes.ts, never 16379
 * either) and is passed as `--cluster-port`, so it is never `port + 10000`, which can be above
 * 65535 or taken. Nodes' cluster config (`nodes.conf`) lives in each node's own temp dir. The
 * slots are assigned with `redis-cli --cluster create`, and `startCluster` resolves once every
 * node reports `cluster_state:ok`, knows every other node and sees all 16384 slots assigned.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Cluster, type ClusterOptions } from 'ioredis'
import { HOST, findExecutable, freePort, infoFields } from './processes.js'
import { startRedis, type Redis, type RedisServer } from './redis-server.js'

export type { Cluster, ClusterOptions }

const CREATE_TIMEOUT_MS = 20_000
const READY_DEADLINE_MS = 10_000
const START_ATTEMPTS = 5
const SLOTS = 16384

export interface ClusterNodeAddress {
  readonly host: '127.0.0.1'
  readonly port: number
}

/** A cluster started by {@link startCluster}. */
export interface RedisCluster {
  /** Client addresses of the masters, in start order. */
  readonly nodes: readonly ClusterNodeAddress[]
  /** The node processes (kill, pause, a standalone `client()` for CLUSTER INFO, DBSIZE, SCAN...). */
  readonly servers: readonly RedisServer[]
  /**
   * A new ioredis `Cluster` client over every node; closed by `stop()`. Defaults, overridable by
   * `options`: reads from masters, a command fails after one retry, cluster reconnects every
   * 100–1000 ms, an `error` listener so a stopped cluster does not log noise, and no
   * `CLIENT SETINFO` on connect (`disableClientInfo`): Redis 7.0 does not know it, and its two
   * error replies per connection would drown real errors in `INFO errorstats`. No `natMap`: the
   * nodes announce 127.0.0.1, which is where the client runs.
   */
  client(options?: ClusterOptions): Cluster
  /**
   * A standalone client per master (in `nodes` order), for inspecting what each node holds; the
   * same clients on every call, closed by `stop()`. They send no `CLIENT SETINFO` either.
   */
  masters(): Redis[]
  /** Closes every client made by `client()`, kills the nodes and removes their temp dirs. Idempotent. */
  stop(): Promise<void>
}

export interface StartClusterOptions {
  /** Number of masters (each owns an equal share of the slots). At least 3 for `redis-cli --cluster create`. @default 3 */
  readonly masters?: number
  /** Extra redis-server args for every node, e.g. `['--rename-command', 'KEYS', '']`. */
  readonly args?: readonly string[]
}

/**
 * Starts `masters` cluster-enabled redis-servers, joins them into one cluster and resolves once it
 * serves every slot. Throws (after stopping whatever it started) if redis-server or redis-cli is
 * missing, or with redis-cli's output if the cluster cannot be created.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  if (!Number.isInteger(masters) || masters < 3) {
    throw new RangeError(`startCluster: masters must be an integer >= 3 (redis-cli --cluster create needs 3), got ${masters}`)
  }
  const cli = findExecutable('redis-cli', 'It comes with redis-server (Debian: redis-tools).')
  const servers: RedisServer[] = []
  try {
    for (let i = 0; i < masters; i++) servers.push(await startNode(options.args ?? []))
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()))
    throw err
  }
  const cluster = new ManagedCluster(servers)
  try {
    await run(cli, ['--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'])
    await cluster.waitUntilServing()
    return cluster
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

class ManagedCluster implements RedisCluster {
  readonly nodes: readonly ClusterNodeAddress[]
  private readonly clients = new Set<Cluster>()
  private readonly inspectors = new Map<RedisServer, Redis>()
  private stopping: Promise<void> | undefined

  constructor(readonly servers: readonly RedisServer[]) {
    this.nodes = servers.map((s) => ({ host: HOST, port: s.port }))
  }

  client(options: ClusterOptions = {}): Cluster {
    if (this.stopping) throw new Error('client: the cluster has been stopped')
    const client = new Cluster(
      this.servers.map((s) => ({ host: HOST, port: s.port })),
      {
        scaleReads: 'master',
        clusterRetryStrategy: (times: number) => Math.min(times * 100, 1000),
        ...options,
        redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000, disableClientInfo: true, ...options.redisOptions },
      },
    )
    client.on('error', () => {
      // Expected while nodes are down; commands still reject with the error.
    })
    this.clients.add(client)
    return client
  }

  masters(): Redis[] {
    return this.servers.map((s) => this.inspector(s))
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  /** Polls CLUSTER INFO on every node until each one serves all slots and knows every node. */
  async waitUntilServing(): Promise<void> {
    const deadline = Date.now() + READY_DEADLINE_MS
    let last = ''
    for (;;) {
      const infos = await Promise.all(
        this.servers.map((s) => this.inspector(s).cluster('INFO').then(String, (err: unknown) => `error: ${String(err)}`)),
      )
      const ok = infos.every((info) => {
        const f = infoFields(info)
        return f.cluster_state === 'ok' && Number(f.cluster_known_nodes) === this.servers.length && Number(f.cluster_slots_ok) === SLOTS
      })
      if (ok) return
      last = infos.map((info, i) => `node ${this.servers[i]?.port}: ${summary(info)}`).join('\n')
      if (Date.now() > deadline) throw new Error(`startCluster: cluster not serving within ${READY_DEADLINE_MS} ms:\n${last}`)
      await delay(50)
    }
  }

  private inspector(server: RedisServer): Redis {
    let c = this.inspectors.get(server)
    if (c === undefined) {
      c = server.client({ disableClientInfo: true })
      this.inspectors.set(server, c)
    }
    return c
  }

  private async doStop(): Promise<void> {
    for (const c of this.clients) c.disconnect()
    this.clients.clear()
    // Each server's stop() closes the inspectors it handed out.
    this.inspectors.clear()
    await Promise.all(this.servers.map((s) => s.stop()))
  }
}

/** One cluster-enabled node; a bus port lost to a race is retried with another one. */
async function startNode(extra: readonly string[]): Promise<RedisServer> {
  let lastError: unknown
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const busPort = await freePort()
    try {
      return await startRedis({
        args: [
          '--cluster-enabled', 'yes',
          // Relative to the node's own --dir (a temp dir per server).
          '--cluster-config-file', 'nodes.conf',
          '--cluster-port', String(busPort),
          '--cluster-node-timeout', '2000',
          ...extra,
        ],
      })
    } catch (err) {
      lastError = err
      if (!/address already in use/i.test(String(err))) throw err
    }
  }
  throw new Error(`startCluster: no free bus port after ${START_ATTEMPTS} attempts`, { cause: lastError })
}

function run(bin: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: CREATE_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`, { cause: err }))
      else resolve(stdout)
    })
  })
}

function summary(info: string): string {
  const f = infoFields(info)
  if (f.cluster_state === undefined) return info
  return `state=${f.cluster_state} known_nodes=${f.cluster_known_nodes} slots_ok=${f.cluster_slots_ok}`
}
