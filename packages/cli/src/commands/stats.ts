import { busChannel, classifyKey, evictionFromInfo, logKey, type EvictionPolicy, type RedisKeyKind } from '@corral/core/store'
import { positiveInt, str, type Invocation } from '../args.js'
import type { Command, Context, Output } from '../command.js'
import { ask, redactUrl } from '../connection.js'
import { EXIT, UsageError } from '../errors.js'
import { bytes, count, pairs } from '../format.js'
import { describeKeys, namespacePattern, scanKeys } from '../read.js'

interface Plan {
  readonly limit: number
}

export const DEFAULT_STATS_LIMIT = 100_000

/** What `corral stats` reports (its --json document). */
export interface StatsReport {
  readonly namespace: string
  readonly redis: { readonly url: string; readonly version: string | undefined }
  readonly scan: { readonly visited: number; readonly limit: number; readonly complete: boolean }
  /** Responses (variants included) and Vary markers; `unreadable`: values under entry keys that are not envelopes. */
  readonly entries: { readonly responses: number; readonly varyMarkers: number; readonly unreadable: number }
  /** Sum of STRLEN over the entries and markers visited. */
  readonly bytes: { readonly total: number; readonly measure: 'STRLEN' }
  readonly tagsIndexed: number
  readonly indexSets: { readonly tag: number; readonly path: number; readonly dir: number }
  readonly locks: number
  readonly invalidationLog: number
  readonly otherKeys: number
  readonly memory: {
    readonly usedBytes: number | undefined
    readonly maxBytes: number | undefined
    readonly policy: string
    /** Whether Corral keeps entries in Redis under this policy (see the core README, Eviction policy). */
    readonly safe: boolean
    readonly note: string | undefined
  }
  /** Connections subscribed to the namespace's invalidation bus: one per running app instance. */
  readonly listeners: { readonly channel: string; readonly count: number }
}

export const stats: Command<Plan> = {
  plan(inv: Invocation): Plan {
    if (inv.positionals[0] !== undefined) throw new UsageError(`unexpected argument '${inv.positionals[0]}': stats takes none`, 'stats')
    const limit = inv.values.limit === undefined ? DEFAULT_STATS_LIMIT : positiveInt(str(inv.values.limit), '--limit', 'keys', 100_000_000, 'stats')
    return { limit }
  },

  async run(plan: Plan, ctx: Context): Promise<Output> {
    const { client, conn } = ctx
    const ns = conn.namespace
    const kinds = new Map<RedisKeyKind | 'none', number>()
    let responses = 0
    let markers = 0
    let unreadable = 0
    let total = 0
    const walk = await scanKeys(client, namespacePattern(ns), plan.limit, async (keys) => {
      const entryKeys: string[] = []
      for (const k of keys) {
        const kind = classifyOf(ns, k)
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
        if (kind === 'entry' || kind === 'variant') entryKeys.push(k)
      }
      for (const info of await describeKeys(client, ns, entryKeys)) {
        if (info.pttl === -2) continue // expired since the SCAN
        total += info.bytes ?? 0
        if (info.claims === undefined) unreadable++
        else if (info.claims.kind === 'vary') markers++
        else responses++
      }
    })
    const channel = busChannel(ns)
    const [memoryInfo, serverInfo, numsub, logLength] = await Promise.all([
      ask('reading INFO memory', client.info('memory')),
      ask('reading INFO server', client.info('server')),
      ask('counting listeners (PUBSUB NUMSUB)', client.call('PUBSUB', 'NUMSUB', channel) as Promise<unknown[]>),
      ask('reading the invalidation log length (XLEN)', client.type(logKey(ns)).then((t) => (t === 'stream' ? client.xlen(logKey(ns)) : 0))),
    ])
    const eviction: EvictionPolicy = evictionFromInfo(memoryInfo)
    const used = infoNumber(memoryInfo, 'used_memory')
    const n = (k: RedisKeyKind): number => kinds.get(k) ?? 0
    const report: StatsReport = {
      namespace: ns,
      redis: { url: redactUrl(conn.redisUrl), version: infoField(serverInfo, 'redis_version') },
      scan: { visited: walk.visited, limit: plan.limit, complete: walk.complete },
      entries: { responses, varyMarkers: markers, unreadable },
      bytes: { total, measure: 'STRLEN' },
      tagsIndexed: n('tag-index'),
      indexSets: { tag: n('tag-index'), path: n('path-index'), dir: n('dir-index') },
      locks: n('lock'),
      invalidationLog: logLength,
      otherKeys: n('other'),
      memory: { usedBytes: used, maxBytes: eviction.maxmemory, policy: eviction.policy, safe: eviction.safe, note: eviction.note },
      listeners: { channel, count: Number(numsub[1] ?? 0) },
    }
    return { json: report, text: statsText(report), exitCode: EXIT.ok }
  },
}

/** The SCAN pattern only returns keys under `<ns>:v1:`; 'none' is for completeness. */
function classifyOf(ns: string, key: string): RedisKeyKind | 'none' {
  return classifyKey(ns, key) ?? 'none'
}

function statsText(r: StatsReport): string {
  const partial = r.scan.complete ? 'the whole namespace' : `PARTIAL: stopped at --limit ${r.scan.limit}; counts below cover only these keys`
  const max = r.memory.maxBytes === undefined ? 'maxmemory unknown' : r.memory.maxBytes === 0 ? 'no maxmemory' : `maxmemory ${bytes(r.memory.maxBytes)}`
  const safe = r.memory.safe ? 'Corral keeps entries in Redis' : `UNSAFE: the apps keep entries in L1 only (${r.memory.note ?? ''})`
  return pairs([
    ['namespace', `${r.namespace} on ${r.redis.url}${r.redis.version ? ` (Redis ${r.redis.version})` : ''}`],
    ['keys visited', `${r.scan.visited} (${partial})`],
    ['entries', `${count(r.entries.responses, 'response', 'responses')}, ${count(r.entries.varyMarkers, 'Vary marker', 'Vary markers')}${r.entries.unreadable > 0 ? `, ${r.entries.unreadable} unreadable` : ''}`],
    ['bytes', `${bytes(r.bytes.total)} (sum of STRLEN over entries and markers)`],
    ['tags indexed', String(r.tagsIndexed)],
    ['index sets', `${r.indexSets.tag} tag, ${r.indexSets.path} path, ${r.indexSets.dir} directory`],
    ['fill locks', String(r.locks)],
    ['invalidation log', count(r.invalidationLog, 'entry', 'entries')],
    ...(r.otherKeys > 0 ? ([['other keys', `${r.otherKeys} (not written by Corral)`]] as [string, string][]) : []),
    ['memory', `${r.memory.usedBytes === undefined ? '?' : bytes(r.memory.usedBytes)} used, ${max}, policy ${r.memory.policy}: ${safe}`],
    ['listeners', `${count(r.listeners.count, 'instance', 'instances')} on ${r.listeners.channel}`],
  ])
}

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim()
}

function infoNumber(info: string, name: string): number | undefined {
  const v = infoField(info, name)
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined
}
