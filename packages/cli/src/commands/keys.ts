import { classifyKey, normalizeSelectors, prefixIndexKey } from '@corral/core/store'
import { list, positiveInt, str, type Invocation } from '../args.js'
import type { Command, Context, Output } from '../command.js'
import { EXIT, UsageError } from '../errors.js'
import { bytes, table, ttl } from '../format.js'
import { prefixAsSent } from '../target.js'
import { describeKeys, namespacePattern, pathOf, scanIndex, scanKeys, type KeyInfo, type Walk } from '../read.js'

interface Plan {
  readonly prefixes: readonly string[]
  readonly limit: number
}

export const DEFAULT_KEYS_LIMIT = 100

/** One listed key (the --json rows). URL, kind, status and tags are the metadata's claims, not verified: `corral inspect` verifies. */
export interface KeyRow {
  readonly url: string | undefined
  readonly key: string
  readonly kind: 'response' | 'vary' | 'unreadable'
  readonly status: number | undefined
  readonly ttlMs: number
  readonly bytes: number | undefined
  readonly tags: readonly string[]
}

export const keys: Command<Plan> = {
  plan(inv: Invocation): Plan {
    if (inv.positionals[0] !== undefined) throw new UsageError(`unexpected argument '${inv.positionals[0]}': keys takes none (a prefix goes in --prefix)`, 'keys')
    const given = list(inv.values.prefix)
    for (const p of given) {
      if (!p.startsWith('/')) throw new UsageError(`expected --prefix to be a path prefix starting with '/', got '${p}'`, 'keys')
    }
    // Encoded as requests are and normalised as purge --prefix normalises them, like the paths
    // the index sets hold: /café → /caf%C3%A9.
    const prefixes = normalizeSelectors({ prefixes: given.map(prefixAsSent) }).prefixes
    const limit = inv.values.limit === undefined ? DEFAULT_KEYS_LIMIT : positiveInt(str(inv.values.limit), '--limit', 'keys', 1_000_000, 'keys')
    return { prefixes, limit }
  },

  async run(plan: Plan, ctx: Context): Promise<Output> {
    const { rows, walk, source } = plan.prefixes.length === 0 ? await scanAll(ctx, plan.limit) : await fromIndexes(ctx, plan.prefixes, plan.limit)
    rows.sort((a, b) => (a.url ?? '').localeCompare(b.url ?? '') || a.key.localeCompare(b.key))
    const json = { namespace: ctx.conn.namespace, prefixes: plan.prefixes, source, limit: plan.limit, complete: walk.complete, visited: walk.visited, keys: rows }
    const body =
      rows.length === 0
        ? 'no entries'
        : table(
            ['URL', 'KIND', 'TTL', 'SIZE', 'TAGS', 'KEY'],
            rows.map((r) => [r.url ?? '?', r.kind === 'response' ? String(r.status ?? '?') : r.kind, ttl(r.ttlMs), r.bytes === undefined ? '?' : bytes(r.bytes), r.tags.join(',') || '-', r.key]),
            ['left', 'left', 'right', 'right'],
            // Cells are cut at MAX_CELL (with an ellipsis; --json keeps them whole), keys never.
            [undefined, undefined, undefined, undefined, undefined, Infinity],
          )
    const foot = walk.complete
      ? `${rows.length} listed (${source === 'scan' ? 'SCAN of the whole namespace' : 'index sets of the prefixes'})`
      : `${rows.length} listed: PARTIAL, stopped at --limit ${plan.limit} (${walk.visited} ${source === 'scan' ? 'keys' : 'index members'} visited)`
    return { json, text: `${body}\n${foot}`, exitCode: EXIT.ok }
  },
}

function rowOf(info: KeyInfo, url?: string): KeyRow {
  const c = info.claims
  return {
    url: c?.url ?? url,
    key: info.key,
    kind: c === undefined ? 'unreadable' : c.kind,
    status: c?.status,
    ttlMs: info.pttl,
    bytes: info.bytes,
    tags: c?.tags ?? [],
  }
}

/** Every entry, variant and marker of the namespace, by a bounded SCAN. */
async function scanAll(ctx: Context, limit: number): Promise<{ rows: KeyRow[]; walk: Walk; source: 'scan' }> {
  const ns = ctx.conn.namespace
  const rows: KeyRow[] = []
  const walk = await scanKeys(ctx.client, namespacePattern(ns), Number.MAX_SAFE_INTEGER, async (batch) => {
    const entries = batch.filter((k) => {
      const kind = classifyKey(ns, k)
      return kind === 'entry' || kind === 'variant'
    })
    for (const info of await describeKeys(ctx.client, ns, entries)) {
      if (info.pttl === -2) continue
      if (rows.length >= limit) return false
      rows.push(rowOf(info))
    }
  })
  return { rows, walk, source: 'scan' }
}

/**
 * The entries `purge --prefix` would reach: the members of each prefix's directory index whose
 * path starts with the prefix and whose key is still there (index sets outlive some entries).
 */
async function fromIndexes(ctx: Context, prefixes: readonly string[], limit: number): Promise<{ rows: KeyRow[]; walk: Walk; source: 'index' }> {
  const ns = ctx.conn.namespace
  const rows: KeyRow[] = []
  const seen = new Set<string>()
  let visited = 0
  let complete = true
  for (const prefix of prefixes) {
    if (rows.length >= limit) {
      complete = false
      break
    }
    const walk = await scanIndex(ctx.client, prefixIndexKey(ns, prefix), Number.MAX_SAFE_INTEGER, async (members) => {
      const mine = members.filter((m) => pathOf(m.url).startsWith(prefix) && !seen.has(m.key))
      for (const m of mine) seen.add(m.key)
      const urls = new Map(mine.map((m) => [m.key, m.url]))
      for (const info of await describeKeys(ctx.client, ns, [...urls.keys()])) {
        if (info.pttl === -2) continue
        if (rows.length >= limit) return false
        rows.push(rowOf(info, urls.get(info.key)))
      }
    })
    visited += walk.visited
    if (!walk.complete) complete = false
  }
  return { rows, walk: { visited, complete }, source: 'index' }
}
