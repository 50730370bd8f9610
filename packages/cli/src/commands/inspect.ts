import { ageOf, decodeEntry, makePrimaryKey, makeVariantKey, pathIndexKey, peekEnvelopeHead, type Entry, type KeyParts } from '@corral/core/store'
import type { Redis } from 'ioredis'
import { list, positiveInt, str, type Invocation } from '../args.js'
import type { Command, Context, Output } from '../command.js'
import { askAll } from '../connection.js'
import { EXIT, UsageError } from '../errors.js'
import { bytes, cell, commaList, duration, pairs, ttl } from '../format.js'
import { scanIndex } from '../read.js'
import { queryRuleOf, targetOf, type Target } from '../target.js'

interface Plan {
  readonly target: Target
  readonly arg: string
  readonly query: ReturnType<typeof queryRuleOf>
  readonly limit: number
}

/** Whether the app would serve the value: `rejected` values are misses (and the app deletes them). */
export type Integrity = 'verified' | 'unverified' | 'rejected'

/** One stored value, decoded as the app decodes it. */
export interface EntryReport {
  readonly key: string
  readonly kind: 'response' | 'vary' | undefined
  readonly integrity: Integrity
  /** Why the app would refuse it: a decodeEntry failure, or `no-ttl` (Corral always sets one). */
  readonly rejected?: string
  /** Whether the envelope carries a MAC (undefined when it is not an envelope). */
  readonly signed: boolean | undefined
  /** PTTL: how long Redis keeps it, in ms. */
  readonly ttlMs: number
  /** Bytes of the value in Redis (the envelope: metadata and body). */
  readonly bytes: number
  readonly status?: number
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  readonly bodyBytes?: number
  readonly tags?: readonly string[]
  readonly url?: string
  /** `Age` a hit would carry now, in seconds. */
  readonly ageSeconds?: number
  readonly freshness?: Freshness
  /** A Vary marker's request headers. */
  readonly varyOn?: readonly string[]
}

export interface Freshness {
  readonly state: 'fresh' | 'stale' | 'expired'
  /** ms until it turns stale (negative: stale since). */
  readonly freshForMs: number
  readonly staleWhileRevalidateMs: number
  readonly staleIfErrorMs: number
  /** ms it may still be answered stale while a refresh runs (0 when the window is over or none). */
  readonly staleWhileRevalidateLeftMs: number
  readonly staleIfErrorLeftMs: number
}

export const inspect: Command<Plan> = {
  plan(inv: Invocation): Plan {
    const [arg, extra] = inv.positionals
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}': inspect takes one URL`, 'inspect')
    const query = queryRuleOf(list(inv.values['query-include']), list(inv.values['query-exclude']), inv.values['ignore-query'] === true)
    const target = targetOf(arg, str(inv.values.host), list(inv.values.headers))
    const limit = inv.values.limit === undefined ? 1000 : positiveInt(str(inv.values.limit), '--limit', 'index members', 1_000_000, 'inspect')
    return { target, arg: arg as string, query, limit }
  },

  async run(plan: Plan, ctx: Context): Promise<Output> {
    const { client, conn } = ctx
    const ns = conn.namespace
    const parts = makePrimaryKey(ns, plan.target.view, plan.query === undefined ? {} : { query: plan.query })
    const primary = await readEntry(ctx, parts.key)
    const base = { url: plan.arg, host: plan.target.host, path: parts.path, canonicalUrl: parts.url, namespace: ns, key: parts.key }
    const signing = conn.signingKeys.length > 0
    if (primary === undefined) {
      const others = await otherEntries(client, ns, parts, plan.limit)
      const json = { ...base, found: false, others }
      const hint =
        others.length === 0
          ? ''
          : `\nthe path index of ${parts.path} lists ${others.length} other ${others.length === 1 ? 'entry' : 'entries'} (another host, query, or a route with its own key rules):\n${others.map((o) => `  ${cell(o.url)}  ${o.key}`).join('\n')}`
      return { json, text: `nothing stored for ${plan.arg}\nkey  ${parts.key}${hint}`, exitCode: EXIT.notFound }
    }
    let variants: (EntryReport & { selected: boolean })[] | undefined
    let selectedKey: string | undefined
    if (primary.report.kind === 'vary' && primary.entry?.kind === 'vary') {
      selectedKey = makeVariantKey(parts.key, primary.entry.names, plan.target.view.headers)
      const keys = await variantKeys(client, ns, parts, plan.limit)
      if (!keys.includes(selectedKey)) keys.push(selectedKey)
      variants = []
      for (const k of keys) {
        const v = await readEntry(ctx, k)
        if (v !== undefined) variants.push({ ...v.report, selected: k === selectedKey })
      }
    }
    const json = { ...base, found: true, signingKeys: signing, entry: primary.report, ...(variants ? { selectedVariant: selectedKey, variants } : {}) }
    const blocks = [`${plan.arg}\n${describe(primary.report, signing)}`]
    if (variants !== undefined) {
      const selected = variants.some((v) => v.selected)
      blocks.push(
        `${variants.length} ${variants.length === 1 ? 'variant' : 'variants'} (from the path index)${selected ? '' : `; none stored for these request headers (${selectedKey})`}`,
      )
      variants.forEach((v, i) => blocks.push(`variant ${i + 1}${v.selected ? ' (selected by the request headers given)' : ''}\n${describe(v, signing)}`))
    }
    return { json, text: blocks.join('\n\n'), exitCode: EXIT.ok }
  },
}

/** Reads and decodes one key as the app would (never deleting what it refuses); undefined when nothing is there. */
async function readEntry(ctx: Context, key: string): Promise<{ report: EntryReport; entry: Entry | undefined } | undefined> {
  const replies = await askAll(`reading ${key}`, ctx.client.pipeline().getBuffer(key).pttl(key))
  const [getErr, value] = replies[0] ?? []
  const [, pttlReply] = replies[1] ?? []
  const pttl = typeof pttlReply === 'number' ? pttlReply : -2
  if (getErr) {
    // WRONGTYPE: something Corral did not write sits under its key.
    return { report: { key, kind: undefined, integrity: 'rejected', rejected: 'not-a-string', signed: undefined, ttlMs: pttl, bytes: 0 }, entry: undefined }
  }
  if (!Buffer.isBuffer(value)) return undefined
  const now = ctx.now()
  const signed = peekEnvelopeHead(value)?.signed
  const common = { key, signed, ttlMs: pttl, bytes: value.length }
  if (pttl <= 0) return { report: { ...common, kind: undefined, integrity: 'rejected', rejected: 'no-ttl' }, entry: undefined }
  const result = decodeEntry(key, value, pttl, now, ctx.conn.signingKeys)
  if (!result.ok) return { report: { ...common, kind: undefined, integrity: 'rejected', rejected: result.reason }, entry: undefined }
  const e = result.entry
  const integrity: Integrity = ctx.conn.signingKeys.length > 0 ? 'verified' : 'unverified'
  if (e.kind === 'vary') {
    return {
      report: { ...common, kind: 'vary', integrity, varyOn: e.names, tags: e.tags, url: e.url, freshness: freshnessOf(e.expiresAt, 0, 0, now) },
      entry: e,
    }
  }
  const report: EntryReport = {
    ...common,
    kind: 'response',
    integrity,
    status: e.status,
    headers: e.headers,
    bodyBytes: e.body.length,
    tags: e.tags,
    url: e.url,
    ageSeconds: ageOf(e, now),
    freshness: freshnessOf(e.expiresAt, e.staleWhileRevalidateMs, e.staleIfErrorMs, now),
  }
  return { report, entry: e }
}

function freshnessOf(expiresAt: number, swr: number, sie: number, now: number): Freshness {
  const freshForMs = Math.round(expiresAt - now)
  const over = Math.max(0, -freshForMs)
  const swrLeft = freshForMs > 0 ? swr : Math.max(0, swr - over)
  const sieLeft = freshForMs > 0 ? sie : Math.max(0, sie - over)
  const state = freshForMs > 0 ? 'fresh' : swrLeft > 0 || sieLeft > 0 ? 'stale' : 'expired'
  return { state, freshForMs, staleWhileRevalidateMs: swr, staleIfErrorMs: sie, staleWhileRevalidateLeftMs: swrLeft, staleIfErrorLeftMs: sieLeft }
}

/** Keys of the primary's variants, from its path's index set. */
async function variantKeys(client: Redis, ns: string, parts: KeyParts, limit: number): Promise<string[]> {
  const found = new Set<string>()
  const head = `${parts.key}:`
  await scanIndex(client, pathIndexKey(ns, parts.path), limit, async (members) => {
    for (const m of members) if (m.key.startsWith(head) && !m.key.endsWith(':lock')) found.add(m.key)
  })
  return [...found]
}

/** Live entries of the same path under other keys (another host, query, or route scope). */
async function otherEntries(client: Redis, ns: string, parts: KeyParts, limit: number): Promise<{ key: string; url: string }[]> {
  const members: { key: string; url: string }[] = []
  const seen = new Set<string>()
  await scanIndex(client, pathIndexKey(ns, parts.path), limit, async (batch) => {
    for (const m of batch) {
      if (seen.has(m.key) || m.key.startsWith(`${parts.key}:`)) continue
      seen.add(m.key)
      members.push(m)
    }
  })
  if (members.length === 0) return []
  const p = client.pipeline()
  for (const m of members) p.exists(m.key)
  const alive = await askAll('checking index members (EXISTS)', p)
  return members.filter((_, i) => alive[i]?.[1] === 1).slice(0, 20)
}

/** The text block of one stored value. */
function describe(r: EntryReport, signing: boolean): string {
  const rows: [string, string][] = [['key', r.key]]
  if (r.integrity === 'rejected') {
    rows.push(['integrity', `REJECTED: ${rejectionText(r.rejected)}`])
    rows.push(['served', 'never: the app treats it as a miss (and deletes it when it reads it)'])
    rows.push(['ttl', `${ttl(r.ttlMs)} in Redis (PTTL)`])
    rows.push(['size', `${bytes(r.bytes)} in Redis`])
    return pairs(rows)
  }
  rows.push(['integrity', integrityText(r, signing)])
  if (r.kind === 'vary') {
    rows.push(['stored', `Vary marker: the response varies on ${commaList(r.varyOn ?? [])}`])
  } else {
    rows.push(['stored', `status ${r.status}, body ${bytes(r.bodyBytes ?? 0)}, ${bytes(r.bytes)} in Redis`])
  }
  rows.push(['ttl', `${ttl(r.ttlMs)} in Redis (PTTL)`])
  if (r.freshness !== undefined) rows.push(['freshness', freshnessText(r.freshness, r.kind === 'vary')])
  if (r.ageSeconds !== undefined) rows.push(['age', `${r.ageSeconds}s`])
  rows.push(['tags', commaList(r.tags ?? [])])
  rows.push(['url', r.url ?? '-'])
  let text = pairs(rows)
  if (r.headers !== undefined) {
    const names = Object.keys(r.headers)
    const headerRows = names.map((n): [string, string] => {
      const v = r.headers?.[n] ?? ''
      return [n, typeof v === 'string' ? v : v.join(' | ')]
    })
    text += `\nheaders\n${pairs(headerRows, '  ')}`
  }
  return text
}

function integrityText(r: EntryReport, signing: boolean): string {
  if (r.integrity === 'verified') return 'verified (HMAC-SHA256 with CORRAL_SIGNING_KEYS)'
  return r.signed === true
    ? 'not verified: signed, but CORRAL_SIGNING_KEYS is not set (structure checked only)'
    : `not verified: unsigned${signing ? '' : ' and CORRAL_SIGNING_KEYS is not set'} (structure checked only)`
}

function rejectionText(reason: string | undefined): string {
  switch (reason) {
    case 'signature':
      return 'its HMAC matches none of CORRAL_SIGNING_KEYS (tampered with, copied from another key, or signed with a key not given)'
    case 'unsigned':
      return 'unsigned, and signing keys are set'
    case 'malformed':
      return 'not an envelope Corral wrote, or truncated'
    case 'version':
      return 'an envelope version this build does not read'
    case 'no-ttl':
      return 'no TTL: Corral always writes one'
    case 'not-a-string':
      return 'not a string value'
    default:
      return reason ?? 'unknown'
  }
}

function freshnessText(f: Freshness, marker: boolean): string {
  const windows = marker ? '' : `; stale-while-revalidate ${f.staleWhileRevalidateMs > 0 ? duration(f.staleWhileRevalidateMs) : '-'}, stale-if-error ${f.staleIfErrorMs > 0 ? duration(f.staleIfErrorMs) : '-'}`
  if (f.state === 'fresh') return `fresh for ${duration(f.freshForMs)}${windows}`
  const since = `stale for ${duration(-f.freshForMs)}`
  if (f.state === 'expired') return `${since}, past its stale windows${windows}`
  const left: string[] = []
  if (f.staleWhileRevalidateLeftMs > 0) left.push(`answered stale while revalidating for ${duration(f.staleWhileRevalidateLeftMs)} more`)
  if (f.staleIfErrorLeftMs > 0) left.push(`answers origin errors for ${duration(f.staleIfErrorLeftMs)} more`)
  return `${since}: ${left.join(', ')}${windows}`
}
