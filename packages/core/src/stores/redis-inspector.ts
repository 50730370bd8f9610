import type { Redis } from 'ioredis'
import { StoreError } from '../model/errors.js'
import { evictionFromInfo, leastSafe, UNCHECKED, type EvictionPolicy } from './eviction.js'
import { messageOf, type RedisGateway } from './redis-gateway.js'

/** How often the eviction policy and the replicas are read again while connected. */
const CHECK_MS = 60_000
/** How long a primary must have fewer replicas before invalidations stop waiting for the missing one. */
const REPLICA_GRACE_MS = 60_000

/**
 * What Corral must know of each Redis primary before relying on it: whether it may evict keys
 * (then entries stay out of Redis, see eviction.ts) and how many replicas it has (invalidations
 * wait for them, so that a failover cannot undo them). Read on every connection, every minute and
 * in `health()`.
 */
export class RedisInspector {
  private policy: EvictionPolicy = UNCHECKED
  /**
   * Replicas each primary (`host:port`) had when last read. Raised at once; lowered on a new
   * connection, or once fewer have been seen for a minute, so that the moments in which a failover
   * cuts a primary off its replica do not lower it.
   */
  private readonly replicas = new Map<string, { expected: number; fewerSince: number | undefined }>()
  private fresh = true
  /** The reading of the latest connection: an invalidation waits for it before it counts replicas. */
  private reading: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly gateway: RedisGateway,
    private readonly assumeNoEviction: boolean,
    /** Called once a new connection has been read (what waited for Redis may run now). */
    private readonly onChecked: () => void,
  ) {
    gateway.client.on('ready', this.onReady)
    if (gateway.client.status === 'ready') this.onReady()
  }

  get eviction(): EvictionPolicy {
    return this.policy
  }

  /** Replicas every invalidation waits for, over every primary. */
  get expectedReplicas(): number {
    let n = 0
    for (const r of this.replicas.values()) n += r.expected
    return n
  }

  /** Resolves once every replica the primaries are known to have holds this connection's writes (WAIT). */
  async replicated(): Promise<void> {
    const { gateway } = this
    // Right after a (re)connection the replicas are not known yet: skipping WAIT then could let a
    // failover undo the invalidation. The reading has a write deadline of its own.
    await this.reading
    const waits: Promise<void>[] = []
    for (const node of gateway.nodes()) {
      const expected = this.replicas.get(nodeName(node))?.expected ?? 0
      if (expected === 0) continue
      // WAIT answers after writeTimeout at the latest; the call's own deadline leaves it room.
      const acked = gateway.call(() => node.wait(expected, gateway.writeTimeoutMs), 2 * gateway.writeTimeoutMs)
      waits.push(
        acked.then(
          (n) => {
            if (n < expected) throw new StoreError(`the invalidation reached ${n} of the ${expected} replicas of ${nodeName(node)} in time; it runs again`)
          },
          (err: unknown) => {
            throw gateway.storeError(err, 'waiting for the replicas to take an invalidation failed')
          },
        ),
      )
    }
    await Promise.all(waits)
  }

  /** Reads each primary's eviction policy and replicas (`INFO memory`, `INFO replication`). */
  async inspect(): Promise<void> {
    const { gateway } = this
    if (gateway.isClosed || gateway.client.status !== 'ready') return
    const nodes = gateway.nodes()
    const fresh = this.fresh
    this.fresh = false
    let found: EvictionPolicy
    try {
      const infos = await gateway.call(() => Promise.all(nodes.map((n) => Promise.all([n.info('memory'), n.info('replication')]))), gateway.writeTimeoutMs)
      found = leastSafe(infos.map(([memory]) => evictionFromInfo(memory)))
      infos.forEach(([, replication], i) => this.countReplicas(nodeName(nodes[i] as Redis), replicasFromInfo(replication), fresh))
    } catch (err) {
      found = { policy: 'unknown', maxmemory: undefined, safe: false, note: `INFO failed: ${messageOf(err)}` }
    }
    if (this.assumeNoEviction && !found.safe) found = { ...found, safe: true, note: `assumed safe (assumeNoEviction); ${found.note ?? ''}`.trim() }
    const was = this.policy
    this.policy = found
    if (!found.safe && (was.safe || was === UNCHECKED)) {
      gateway.report(new StoreError(`Redis may evict Corral's keys (${found.note ?? found.policy}); entries are kept in L1 only until it cannot`))
    }
  }

  close(): void {
    clearInterval(this.timer)
    this.gateway.client.off('ready', this.onReady)
  }

  /** A (re)connection, perhaps to another primary: read it before relying on it, then every minute. */
  private readonly onReady = (): void => {
    this.fresh = true
    const read = this.inspect()
    this.reading = read.catch(() => undefined)
    void read.then(this.onChecked)
    if (this.timer === undefined && !this.gateway.isClosed) {
      this.timer = setInterval(() => void this.inspect(), CHECK_MS)
      this.timer.unref()
    }
  }

  private countReplicas(node: string, seen: number, fresh: boolean): void {
    const known = this.replicas.get(node)
    const now = Date.now()
    if (fresh || known === undefined || seen >= known.expected) this.replicas.set(node, { expected: seen, fewerSince: undefined })
    else if (known.fewerSince === undefined) this.replicas.set(node, { expected: known.expected, fewerSince: now })
    else if (now - known.fewerSince >= REPLICA_GRACE_MS) this.replicas.set(node, { expected: seen, fewerSince: undefined })
  }
}

/** `host:port` of a node, for the replicas it is known to have. */
function nodeName(node: Redis): string {
  const o = node.options as { host?: string; port?: number } | undefined
  return `${o?.host ?? ''}:${o?.port ?? ''}`
}

/** Replicas a primary has (`connected_slaves` of `INFO replication`); 0 for anything else. */
function replicasFromInfo(info: string): number {
  if (!/^role:master\s*$/m.test(info)) return 0
  const m = /^connected_slaves:(\d+)\s*$/m.exec(info)
  return m === null ? 0 : Number(m[1])
}
