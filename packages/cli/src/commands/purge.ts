import { RedisStore, StoreError } from '@corral/core'
import {
  busChannel,
  normalizeSelectors,
  pathIndexKey,
  prefixIndexKey,
  tagIndexKey,
  type CorralError,
  type FillLock,
  type NormalizedSelectors,
} from '@corral/core/store'
import { list, positiveInt, str, type Invocation } from '../args.js'
import type { Command, Context, Output } from '../command.js'
import { ask } from '../connection.js'
import { EXIT, messageOf, RedisError, UsageError } from '../errors.js'
import { count, table, ttl } from '../format.js'
import { describeKeys, pathOf, scanIndex } from '../read.js'

interface Plan {
  readonly selectors: NormalizedSelectors
  readonly given: { readonly tags: readonly string[]; readonly keys: readonly string[]; readonly prefixes: readonly string[] }
  readonly soft: boolean
  readonly dryRun: boolean
  readonly limit: number
}

export const DEFAULT_PURGE_LIMIT = 1000

/** One entry the selectors matched before the purge, and what became of it. */
export interface PurgedRow {
  readonly key: string
  readonly url: string
  /** `removed`, `softened` (still there, now stale), `matched` (dry run), or `still there` (a removal that did not take: rare). */
  readonly outcome: 'removed' | 'softened' | 'matched' | 'still there'
  readonly ttlMs: number
}

export const purge: Command<Plan> = {
  plan(inv: Invocation): Plan {
    if (inv.positionals[0] !== undefined) throw new UsageError(`unexpected argument '${inv.positionals[0]}': give what to purge with --tag, --key or --prefix`, 'purge')
    const tags = list(inv.values.tag)
    const prefixes = list(inv.values.prefix)
    const keys = list(inv.values.key).map(pathOfKeyOption)
    if (tags.length + keys.length + prefixes.length === 0) throw new UsageError('purge needs at least one --tag, --key or --prefix', 'purge')
    for (const t of tags) if (t === '') throw new UsageError('expected --tag to be a tag, got an empty string', 'purge')
    for (const p of prefixes) if (!p.startsWith('/')) throw new UsageError(`expected --prefix to be a path prefix starting with '/', got '${p}'`, 'purge')
    const soft = inv.values.soft === true
    let selectors: NormalizedSelectors
    try {
      selectors = normalizeSelectors({ tags, keys, prefixes, soft })
    } catch (err) {
      throw new UsageError(messageOf(err), 'purge')
    }
    const limit = inv.values.limit === undefined ? DEFAULT_PURGE_LIMIT : positiveInt(str(inv.values.limit), '--limit', 'entries listed', 1_000_000, 'purge')
    return { selectors, given: { tags, keys, prefixes }, soft, dryRun: inv.values['dry-run'] === true, limit }
  },

  async run(plan: Plan, ctx: Context): Promise<Output> {
    const { client, conn } = ctx
    const ns = conn.namespace
    const { rows: matched, complete } = await preview(ctx, plan.selectors, plan.limit)
    const channel = busChannel(ns)
    const numsub = (await ask('counting listeners (PUBSUB NUMSUB)', client.call('PUBSUB', 'NUMSUB', channel) as Promise<unknown[]>)) ?? []
    const listeners = Number(numsub[1] ?? 0)
    let removed: number | undefined
    let rows: PurgedRow[] = matched.map((m) => ({ ...m, outcome: 'matched' as const }))
    if (!plan.dryRun) {
      removed = await invalidate(ctx, plan.selectors)
      const after = await describeKeys(client, ns, matched.map((m) => m.key))
      rows = matched.map((m, i) => {
        const gone = (after[i]?.pttl ?? -2) === -2
        return { ...m, ttlMs: after[i]?.pttl ?? -2, outcome: gone ? 'removed' : plan.soft ? 'softened' : 'still there' }
      })
    }
    const json = { namespace: ns, selectors: plan.given, soft: plan.soft, dryRun: plan.dryRun, removed, listeners: { channel, count: listeners }, complete, entries: rows }
    return { json, text: purgeText(plan, rows, removed, complete, listeners, channel), exitCode: EXIT.ok }
  },
}

/** `--key` takes a path (`/products/42`, `/products?page=2`) or an absolute URL, whose host is dropped: keys select by path on every host. */
function pathOfKeyOption(v: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(v)
  if (m === null) return v
  const rest = (m[1] ?? '').replace(/#.*$/, '')
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest
}

/**
 * Through the Redis store, as an app's `cache.invalidate()` runs it: logged, swept from the index
 * sets (softened with `soft`), waited for on the replicas, then published on the bus so that every
 * instance drops (or marks stale) its L1 copies. Resolves to what the store counts as removed.
 */
async function invalidate(ctx: Context, selectors: NormalizedSelectors): Promise<number> {
  const { client, conn } = ctx
  const errors: CorralError[] = []
  // The store's own deadlines: reads `timeout`, invalidation steps four times that, so each step of
  // the purge gets --timeout.
  const store = new RedisStore({ redis: client, timeout: Math.max(1, Math.floor(conn.timeoutMs / 4)) })
  // A purge takes no fill locks: with `locks` set, attach() creates none, and no connection
  // subscribes to the namespace's channels (this process must not count as an instance).
  store.locks = NO_LOCKS
  store.attach({
    namespace: conn.namespace,
    now: Date.now,
    report: (e) => void errors.push(e),
    rejected: () => undefined,
    remoteInvalidation: () => undefined,
  })
  try {
    // Reads the replicas (INFO) before relying on them: the invalidation waits for them (WAIT).
    const health = await store.health()
    if (!health.roundTrip.ok) throw new RedisError(`Redis failed the store's round trip before the purge: ${health.roundTrip.error ?? 'no answer'}`)
    return await store.invalidate(selectors)
  } catch (err) {
    if (err instanceof RedisError) throw err
    const cause = err instanceof StoreError && err.cause !== undefined ? `: ${messageOf(err.cause)}` : ''
    throw new RedisError(`${messageOf(err)}${cause} (the purge may have been applied in part; run it again)`, err)
  } finally {
    await store.close()
  }
}

const NO_LOCKS: FillLock = {
  acquire: async () => ({ state: 'unavailable' }),
  release: () => undefined,
  wait: async () => 'retry',
}

/** What the selectors reach now, read from the same index sets the sweep will walk. */
async function preview(ctx: Context, sel: NormalizedSelectors, limit: number): Promise<{ rows: Omit<PurgedRow, 'outcome'>[]; complete: boolean }> {
  const { client, conn } = ctx
  const ns = conn.namespace
  const jobs: { index: string; select: (url: string) => boolean }[] = []
  for (const path of sel.paths) jobs.push({ index: pathIndexKey(ns, path), select: () => true })
  for (const url of sel.urls) jobs.push({ index: pathIndexKey(ns, pathOf(url)), select: (u) => u === url })
  for (const tag of sel.tags) jobs.push({ index: tagIndexKey(ns, tag), select: () => true })
  for (const prefix of sel.prefixes) jobs.push({ index: prefixIndexKey(ns, prefix), select: (u) => pathOf(u).startsWith(prefix) })
  const found = new Map<string, string>()
  let complete = true
  for (const job of jobs) {
    const walk = await scanIndex(client, job.index, Number.MAX_SAFE_INTEGER, async (members) => {
      for (const m of members) {
        if (!job.select(m.url) || found.has(m.key)) continue
        if (found.size >= limit) return false
        found.set(m.key, m.url)
      }
    })
    if (!walk.complete) complete = false
  }
  const infos = await describeKeys(client, ns, [...found.keys()])
  const rows = infos.filter((i) => i.pttl !== -2).map((i) => ({ key: i.key, url: i.claims?.url ?? found.get(i.key) ?? '?', ttlMs: i.pttl }))
  rows.sort((a, b) => a.url.localeCompare(b.url) || a.key.localeCompare(b.key))
  return { rows, complete }
}

function purgeText(plan: Plan, rows: readonly PurgedRow[], removed: number | undefined, complete: boolean, listeners: number, channel: string): string {
  const what = [
    ...plan.given.tags.map((t) => `tag ${t}`),
    ...plan.given.keys.map((k) => `key ${k}`),
    ...plan.given.prefixes.map((p) => `prefix ${p}`),
  ].join(', ')
  const lines: string[] = []
  if (plan.dryRun) lines.push(`dry run: ${count(rows.length, 'entry matches', 'entries match')} ${what}; nothing was purged`)
  else if (plan.soft) lines.push(`soft purge of ${what}: ${count(removed ?? 0, 'entry', 'entries')} marked stale (kept for their stale window; removed when they have none)`)
  else lines.push(`purged ${what}: ${count(removed ?? 0, 'entry', 'entries')} removed`)
  if (rows.length > 0) {
    lines.push(
      table(
        ['URL', plan.dryRun ? 'TTL' : 'OUTCOME', 'KEY'],
        rows.map((r) => [r.url, plan.dryRun ? ttl(r.ttlMs) : r.outcome === 'softened' ? `softened (ttl ${ttl(r.ttlMs)})` : r.outcome, r.key]),
      ),
    )
  }
  if (!complete) lines.push(`(list cut at --limit ${plan.limit}; the purge itself is not limited)`)
  if (!plan.dryRun) {
    const told = `told ${count(listeners, 'instance', 'instances')} listening on ${channel}`
    lines.push(`${told} to ${plan.soft ? 'mark their L1 copies stale' : 'drop their L1 copies'}`)
  }
  return lines.join('\n')
}
