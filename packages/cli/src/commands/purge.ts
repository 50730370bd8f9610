import { RedisStore, StoreError } from '@corral/core'
import {
  busChannel,
  normalizeSelectors,
  pathIndexKey,
  prefixIndexKey,
  tagIndexKey,
  type FillLock,
  type NormalizedSelectors,
} from '@corral/core/store'
import { list, positiveInt, str, type Invocation } from '../args.js'
import type { Command, Context, Output } from '../command.js'
import { ask, askAll } from '../connection.js'
import { CliError, EXIT, messageOf, RedisError, UsageError } from '../errors.js'
import { cell, count, table, ttl } from '../format.js'
import { describeKeys, namespacePattern, pathOf, scanIndex, scanKeys } from '../read.js'
import { asSent, prefixAsSent } from '../target.js'

interface Plan {
  readonly selectors: NormalizedSelectors
  /** The selectors as given, encoded as requests are (`/café` → `/caf%C3%A9`). */
  readonly given: { readonly tags: readonly string[]; readonly keys: readonly string[]; readonly prefixes: readonly string[] }
  readonly soft: boolean
  readonly dryRun: boolean
  readonly limit: number
  readonly scanLimit: number
}

export const DEFAULT_PURGE_LIMIT = 1000
export const DEFAULT_PURGE_SCAN_LIMIT = 100_000

/**
 * Names (tags, keys, prefixes) the Redis store takes in one invalidation: past this many it widens
 * the invalidation to the whole namespace (core's MAX_BATCH_NAMES, redis-invalidation.ts). A purge
 * of more is run as several invalidations of at most this many, one after the other.
 */
export const MAX_NAMES_PER_INVALIDATION = 10_000

/** One entry the selectors matched before the purge, and what became of it. */
export interface PurgedRow {
  readonly key: string
  readonly url: string
  /** `removed`, `softened` (still there, now stale), `matched` (dry run), or `still there` (a removal that did not take: rare). */
  readonly outcome: 'removed' | 'softened' | 'matched' | 'still there'
  readonly ttlMs: number
}

/**
 * The purge reaches every entry of the namespace, not only those selected: an index key it sweeps
 * holds something other than a set, so RedisStore cannot trust the index and invalidates the whole
 * namespace (removing every key but the log, `--soft` or not), and every instance clears its L1.
 */
export interface Widening {
  readonly scope: 'namespace'
  /** The index keys that are not sets, with their type (empty when only the sweep found one). */
  readonly indexes: readonly { readonly key: string; readonly type: string }[]
  /** `preview`: read before the purge (TYPE); `sweep`: the store met it while purging. */
  readonly foundBy: 'preview' | 'sweep'
}

/** What the purge would reach, read before it from the same index sets (or keys) it walks. */
interface Preview {
  /** The first --limit entries found, sorted by URL. */
  readonly rows: Omit<PurgedRow, 'outcome'>[]
  /** Live entries found: what a purge now would remove (a lower bound when `complete` is false). */
  readonly matched: number
  /** False when the walk stopped at --scan-limit. */
  readonly complete: boolean
  readonly visited: number
  readonly unit: 'index members' | 'keys'
  readonly widened: Widening | undefined
}

export const purge: Command<Plan> = {
  plan(inv: Invocation): Plan {
    if (inv.positionals[0] !== undefined) throw new UsageError(`unexpected argument '${inv.positionals[0]}': give what to purge with --tag, --key or --prefix`, 'purge')
    const tags = list(inv.values.tag)
    const prefixes = list(inv.values.prefix)
    for (const p of prefixes) if (!p.startsWith('/')) throw new UsageError(`expected --prefix to be a path prefix starting with '/', got '${p}'`, 'purge')
    const keys = list(inv.values.key).map(pathOfKeyOption)
    if (tags.length + keys.length + prefixes.length === 0) throw new UsageError('purge needs at least one --tag, --key or --prefix', 'purge')
    for (const t of tags) if (t === '') throw new UsageError('expected --tag to be a tag, got an empty string', 'purge')
    const sentPrefixes = prefixes.map(prefixAsSent)
    const soft = inv.values.soft === true
    let selectors: NormalizedSelectors
    try {
      selectors = normalizeSelectors({ tags, keys, prefixes: sentPrefixes, soft })
    } catch (err) {
      throw new UsageError(messageOf(err), 'purge')
    }
    const limit = inv.values.limit === undefined ? DEFAULT_PURGE_LIMIT : positiveInt(str(inv.values.limit), '--limit', 'entries listed', 1_000_000, 'purge')
    const scanLimit =
      inv.values['scan-limit'] === undefined
        ? DEFAULT_PURGE_SCAN_LIMIT
        : positiveInt(str(inv.values['scan-limit']), '--scan-limit', 'index members', 100_000_000, 'purge')
    return { selectors, given: { tags, keys, prefixes: sentPrefixes }, soft, dryRun: inv.values['dry-run'] === true, limit, scanLimit }
  },

  async run(plan: Plan, ctx: Context): Promise<Output> {
    const { client, conn } = ctx
    const ns = conn.namespace
    const channel = busChannel(ns)
    let pre: Preview
    let listeners: number
    try {
      pre = await preview(ctx, plan.selectors, plan.limit, plan.scanLimit)
      const numsub = (await ask('counting listeners (PUBSUB NUMSUB)', client.call('PUBSUB', 'NUMSUB', channel) as Promise<unknown[]>)) ?? []
      listeners = Number(numsub[1] ?? 0)
    } catch (err) {
      throw plan.dryRun ? err : nothingPurged(err)
    }
    let removed: number | undefined
    let widened = pre.widened
    let rows: PurgedRow[] = pre.rows.map((m) => ({ ...m, outcome: 'matched' as const }))
    if (!plan.dryRun) {
      const done = await invalidate(ctx, plan.selectors)
      removed = done.removed
      if (widened === undefined && done.foreign > 0) widened = { scope: 'namespace', indexes: [], foundBy: 'sweep' }
      let after
      try {
        after = await describeKeys(client, ns, pre.rows.map((m) => m.key))
      } catch (err) {
        throw new RedisError(`the purge was applied (${count(removed, 'entry', 'entries')} removed, instances told), but reading what became of the entries listed failed: ${messageOf(err)}`, err)
      }
      rows = pre.rows.map((m, i) => {
        const gone = (after[i]?.pttl ?? -2) === -2
        return { ...m, ttlMs: after[i]?.pttl ?? -2, outcome: gone ? 'removed' : plan.soft && widened === undefined ? 'softened' : 'still there' }
      })
    }
    const json = {
      namespace: ns,
      selectors: plan.given,
      soft: plan.soft,
      dryRun: plan.dryRun,
      widened: widened ?? null,
      matched: pre.matched,
      complete: pre.complete,
      scanned: { unit: pre.unit, visited: pre.visited, limit: plan.scanLimit },
      removed,
      listeners: { channel, count: listeners },
      entries: rows,
    }
    return { json, text: purgeText(plan, ns, pre, widened, rows, removed, listeners, channel), exitCode: EXIT.ok }
  },
}

/** `--key` takes a path (`/products/42`, `/products?page=2`) or an absolute URL, whose host is dropped: keys select by path on every host. */
function pathOfKeyOption(v: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(v)
  if (m === null) return v.startsWith('/') ? asSent(v.replace(/#.*$/, '')) : v
  const rest = (m[1] ?? '').replace(/#.*$/, '')
  return asSent(rest === '' || rest.startsWith('?') ? `/${rest}` : rest)
}

/** A failure before the invalidation was sent: nothing changed. */
function nothingPurged(err: unknown): CliError {
  if (!(err instanceof CliError)) return new RedisError(`${messageOf(err)}; nothing was purged`, err)
  return new CliError(`${err.message}; nothing was purged`, err.exitCode, { cause: err })
}

/**
 * Through the Redis store, as an app's `cache.invalidate()` runs it: logged, swept from the index
 * sets (softened with `soft`), waited for on the replicas, then published on the bus so that every
 * instance drops (or marks stale) its L1 copies. Resolves to what the store counts as removed, and
 * how many index keys it found holding something other than a set (each widens the purge to the
 * whole namespace). A failure is final: this process exits, so nothing runs the purge again.
 */
async function invalidate(ctx: Context, selectors: NormalizedSelectors): Promise<{ removed: number; foreign: number }> {
  const { client, conn } = ctx
  let foreign = 0
  // The store's own deadlines: reads `timeout`, invalidation steps four times that, so each step of
  // the purge gets --timeout.
  const store = new RedisStore({ redis: client, timeout: Math.max(1, Math.floor(conn.timeoutMs / 4)) })
  // A purge takes no fill locks: with `locks` set, attach() creates none, and no connection
  // subscribes to the namespace's channels (this process must not count as an instance).
  store.locks = NO_LOCKS
  store.attach({
    namespace: conn.namespace,
    now: Date.now,
    report: () => undefined,
    // During an invalidation the store calls this only for an index key that is not a set.
    rejected: () => void foreign++,
    remoteInvalidation: () => undefined,
  })
  const parts = splitSelectors(selectors, MAX_NAMES_PER_INVALIDATION)
  let removed = 0
  let done = 0
  try {
    // Reads the replicas (INFO) before relying on them: the invalidation waits for them (WAIT).
    const health = await store.health()
    if (!health.roundTrip.ok) throw new RedisError(`the purge did not happen: Redis failed the store's round trip before it: ${health.roundTrip.error ?? 'no answer'}`)
    for (const part of parts) {
      removed += await store.invalidate(part)
      done++
    }
    return { removed, foreign }
  } catch (err) {
    if (err instanceof CliError) throw err
    const progress = done === 0 ? '' : ` (${done} of its ${parts.length} parts done: ${count(removed, 'entry', 'entries')} removed)`
    throw new RedisError(
      `the purge failed and may have been applied in part${progress}: entries removed, or running instances not yet told to drop their L1 copies. ` +
        `Nothing retries it: run it again (repeating a purge is safe). Cause: ${storeFailure(err)}`,
      err,
    )
  } finally {
    await store.close()
  }
}

/**
 * What went wrong, from the store's error and its cause, without the store's "runs again when
 * Redis answers": true of a running app, whose store keeps a failed invalidation to retry, not of
 * this command.
 */
function storeFailure(err: unknown): string {
  const own = messageOf(err).replace(/[;,]? *it runs again when Redis answers/i, '')
  const cause = err instanceof StoreError && err.cause !== undefined ? messageOf(err.cause) : undefined
  return cause === undefined || own.includes(cause) ? own : `${own}: ${cause}`
}

/** The selectors as invalidations of at most `max` names each (one, nearly always). */
function splitSelectors(sel: NormalizedSelectors, max: number): NormalizedSelectors[] {
  const names: ['paths' | 'urls' | 'tags' | 'prefixes', string][] = [
    ...[...sel.paths].map((n) => ['paths', n] as ['paths', string]),
    ...[...sel.urls].map((n) => ['urls', n] as ['urls', string]),
    ...[...sel.tags].map((n) => ['tags', n] as ['tags', string]),
    ...[...new Set(sel.prefixes)].map((n) => ['prefixes', n] as ['prefixes', string]),
  ]
  if (names.length <= max) return [sel]
  const out: NormalizedSelectors[] = []
  for (let i = 0; i < names.length; i += max) {
    const part = { paths: new Set<string>(), urls: new Set<string>(), tags: new Set<string>(), prefixes: [] as string[] }
    for (const [kind, name] of names.slice(i, i + max)) {
      if (kind === 'prefixes') part.prefixes.push(name)
      else part[kind].add(name)
    }
    out.push(sel.soft === true ? { ...part, soft: true } : part)
  }
  return out
}

const NO_LOCKS: FillLock = {
  acquire: async () => ({ state: 'unavailable' }),
  release: () => undefined,
  wait: async () => 'retry',
}

/** The index sets the store's sweep walks for `sel` (redis-invalidation.ts), and which members of each it takes. */
function indexJobs(ns: string, sel: NormalizedSelectors): { index: string; select: (url: string) => boolean }[] {
  const jobs: { index: string; select: (url: string) => boolean }[] = []
  for (const path of sel.paths) jobs.push({ index: pathIndexKey(ns, path), select: () => true })
  for (const url of sel.urls) jobs.push({ index: pathIndexKey(ns, pathOf(url)), select: (u) => u === url })
  for (const tag of sel.tags) jobs.push({ index: tagIndexKey(ns, tag), select: () => true })
  for (const prefix of sel.prefixes) jobs.push({ index: prefixIndexKey(ns, prefix), select: (u) => pathOf(u).startsWith(prefix) })
  return jobs
}

/**
 * What the purge would remove now. First the type of every index key the sweep walks: one that is
 * not a set widens the purge to the whole namespace, and the namespace's keys are counted instead.
 * Otherwise the index sets are read (SSCAN), every member whose entry is still there counted once
 * (index sets keep members of entries that expired), and the first `limit` listed. At most
 * `scanLimit` index members (or keys) are read: past that the count is a lower bound.
 */
async function preview(ctx: Context, sel: NormalizedSelectors, limit: number, scanLimit: number): Promise<Preview> {
  const { client, conn } = ctx
  const ns = conn.namespace
  const jobs = indexJobs(ns, sel)
  const indexes = [...new Set(jobs.map((j) => j.index))]
  const typing = client.pipeline()
  for (const index of indexes) typing.type(index)
  const types = await askAll('reading the types of the index keys (TYPE)', typing)
  const foreign = indexes.map((key, i) => ({ key, type: String(types[i]?.[1]) })).filter((t) => t.type !== 'set' && t.type !== 'none')
  if (foreign.length > 0) return { ...(await previewNamespace(ctx, limit, scanLimit)), widened: { scope: 'namespace', indexes: foreign, foundBy: 'preview' } }

  const seen = new Set<string>()
  const listed = new Map<string, string>()
  let matched = 0
  let visited = 0
  let complete = true
  for (const job of jobs) {
    if (visited >= scanLimit) {
      complete = false
      break
    }
    const walk = await scanIndex(client, job.index, scanLimit - visited, async (members) => {
      const fresh: { key: string; url: string }[] = []
      for (const m of members) {
        if (!job.select(m.url) || seen.has(m.key)) continue
        seen.add(m.key)
        fresh.push(m)
      }
      if (fresh.length === 0) return
      const exists = client.pipeline()
      for (const m of fresh) exists.exists(m.key)
      const alive = await askAll('checking index members (EXISTS)', exists)
      fresh.forEach((m, i) => {
        if (alive[i]?.[1] !== 1) return
        matched++
        if (listed.size < limit) listed.set(m.key, m.url)
      })
    })
    visited += walk.visited
    if (!walk.complete) complete = false
  }
  return { rows: await rowsOf(ctx, listed), matched, complete, visited, unit: 'index members', widened: undefined }
}

/** A widened purge: every key of the namespace the store's flush counts as an entry, by a bounded SCAN. */
async function previewNamespace(ctx: Context, limit: number, scanLimit: number): Promise<Omit<Preview, 'widened'>> {
  const ns = ctx.conn.namespace
  const listed = new Map<string, string>()
  let matched = 0
  const walk = await scanKeys(ctx.client, namespacePattern(ns), scanLimit, async (keys) => {
    for (const k of keys) {
      if (!flushCountsAsEntry(ns, k)) continue
      matched++
      if (listed.size < limit) listed.set(k, '?')
    }
  })
  return { rows: await rowsOf(ctx, listed), matched, complete: walk.complete, visited: walk.visited, unit: 'keys' }
}

/**
 * Keys the store's flush of a namespace counts as entries (RedisInvalidator.flush, isEntryKey):
 * every key under `<ns>:v1:` but index sets, health-check keys, fill locks and the log.
 */
function flushCountsAsEntry(ns: string, key: string): boolean {
  const rest = key.slice(`${ns}:v1:`.length)
  return !rest.startsWith('i:') && !rest.startsWith('h:') && !rest.endsWith(':lock') && rest !== 'log'
}

/** The listed keys with their TTL and the URL their metadata claims (else the index member's), sorted by URL. */
async function rowsOf(ctx: Context, listed: ReadonlyMap<string, string>): Promise<Omit<PurgedRow, 'outcome'>[]> {
  const infos = await describeKeys(ctx.client, ctx.conn.namespace, [...listed.keys()])
  const rows = infos.filter((i) => i.pttl !== -2).map((i) => ({ key: i.key, url: i.claims?.url ?? listed.get(i.key) ?? '?', ttlMs: i.pttl }))
  rows.sort((a, b) => a.url.localeCompare(b.url) || a.key.localeCompare(b.key))
  return rows
}

function purgeText(
  plan: Plan,
  ns: string,
  pre: Preview,
  widened: Widening | undefined,
  rows: readonly PurgedRow[],
  removed: number | undefined,
  listeners: number,
  channel: string,
): string {
  const what = [
    ...plan.given.tags.map((t) => `tag ${cell(t)}`),
    ...plan.given.keys.map((k) => `key ${cell(k)}`),
    ...plan.given.prefixes.map((p) => `prefix ${cell(p)}`),
  ].join(', ')
  const matched = pre.complete ? count(pre.matched, 'entry', 'entries') : `at least ${count(pre.matched, 'entry', 'entries')}`
  const lines: string[] = []
  if (widened !== undefined) {
    const whole = `the whole namespace ${ns}`
    if (plan.dryRun) lines.push(`dry run: the purge of ${what} WIDENS to ${whole}: ${matched} would be removed, and every instance's L1 cleared; nothing was purged`)
    else lines.push(`purged ${what}: WIDENED to ${whole}, ${count(removed ?? 0, 'entry', 'entries')} removed`)
    lines.push(`  why: ${wideningText(widened)}`)
    if (plan.soft) lines.push(`  --soft does not apply to it: every entry ${plan.dryRun ? 'is' : 'was'} removed, none marked stale`)
  } else if (plan.dryRun) {
    lines.push(`dry run: ${matched} ${pre.matched === 1 ? 'matches' : 'match'} ${what}; nothing was purged`)
  } else if (plan.soft) {
    lines.push(`soft purge of ${what}: ${count(removed ?? 0, 'entry', 'entries')} marked stale (kept for their stale window; removed when they have none)`)
  } else {
    lines.push(`purged ${what}: ${count(removed ?? 0, 'entry', 'entries')} removed`)
  }
  if (rows.length > 0) {
    lines.push(
      table(
        ['URL', plan.dryRun ? 'TTL' : 'OUTCOME', 'KEY'],
        rows.map((r) => [r.url, plan.dryRun ? ttl(r.ttlMs) : r.outcome === 'softened' ? `softened (ttl ${ttl(r.ttlMs)})` : r.outcome, r.key]),
        [],
        [undefined, undefined, Infinity],
      ),
    )
  }
  if (plan.dryRun) {
    if (pre.matched > rows.length) lines.push(`(${rows.length} of ${matched} listed: --limit ${plan.limit})`)
    if (!pre.complete) {
      lines.push(`PARTIAL: the count stopped after ${pre.visited} ${pre.unit} (--scan-limit ${plan.scanLimit}); more entries may match, and the purge would reach them all`)
    }
  } else {
    // What the purge removed is the store's count above; the list is what was read before it.
    const cut: string[] = []
    if (pre.matched > rows.length) cut.push(`--limit ${plan.limit}`)
    if (!pre.complete) cut.push(`read before the purge from ${pre.visited} ${pre.unit}, --scan-limit ${plan.scanLimit}`)
    if (cut.length > 0) lines.push(`(${rows.length} listed: ${cut.join('; ')}; the purge itself is not limited)`)
  }
  if (!plan.dryRun) {
    const told = `told ${count(listeners, 'instance', 'instances')} listening on ${channel}`
    if (widened !== undefined) lines.push(`${told} to clear every entry of the namespace from their L1`)
    else lines.push(`${told} to ${plan.soft ? 'mark their L1 copies stale' : 'drop their L1 copies'}`)
  }
  return lines.join('\n')
}

function wideningText(w: Widening): string {
  const reason =
    w.indexes.length === 0
      ? 'an index key the purge swept was not a set (it was one, or absent, when read just before)'
      : `${w.indexes.map((i) => `${cell(i.key)} is a ${i.type}, not a set`).join('; ')}`
  return (
    `${reason}. An index key holding something Corral did not write may have lost members, so the entries it indexed cannot be found through it: ` +
    'the store invalidates every entry of the namespace instead (as the apps do when they meet one)'
  )
}
