import {
  classifyKey,
  ENVELOPE_HEAD_BYTES,
  parseIndexMember,
  peekEnvelopeClaims,
  peekEnvelopeHead,
  type EnvelopeClaims,
  type RedisKeyKind,
} from '@corral/core/store'
import type { Redis } from 'ioredis'
import { ask, askAll } from './connection.js'

/** Keys asked for per SCAN step: each step is one short command on the server. */
export const SCAN_COUNT = 1000
/** Members asked for per SSCAN step of an index set. */
export const SSCAN_COUNT = 500

/** What one key holds, read without decoding the value (the metadata's claims are unverified). */
export interface KeyInfo {
  readonly key: string
  readonly kind: RedisKeyKind | undefined
  /** PTTL: ms left, -1 without a TTL, -2 gone. */
  readonly pttl: number
  /** STRLEN of the value (undefined when it is not a string). */
  readonly bytes: number | undefined
  /** What the envelope's metadata claims; undefined when the value is not an envelope. */
  readonly claims: EnvelopeClaims | undefined
}

/** How a bounded walk ended. */
export interface Walk {
  /** Keys (or members) the walk returned. */
  readonly visited: number
  /** False when the walk stopped at its limit before the cursor came back to 0. */
  readonly complete: boolean
}

/**
 * SCANs keys matching `pattern`, handing them over in batches, until the cursor comes back to 0,
 * `limit` keys have been visited, or `onBatch` answers false.
 */
export async function scanKeys(
  client: Redis,
  pattern: string,
  limit: number,
  onBatch: (keys: string[]) => Promise<boolean | void>,
): Promise<Walk> {
  let cursor = '0'
  let visited = 0
  do {
    const [next, keys] = await ask('scanning keys (SCAN)', client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT))
    cursor = next
    const take = keys.slice(0, Math.max(0, limit - visited))
    visited += take.length
    if (take.length > 0 && (await onBatch(take)) === false) return { visited, complete: false }
    if (take.length < keys.length) return { visited, complete: false }
  } while (cursor !== '0' && visited < limit)
  return { visited, complete: cursor === '0' }
}

/** SSCANs an index set's `<key> <url>` members, like SCAN above. A key that is not a set has none. */
export async function scanIndex(
  client: Redis,
  index: string,
  limit: number,
  onBatch: (members: { key: string; url: string }[]) => Promise<boolean | void>,
): Promise<Walk> {
  const type = await ask(`reading the type of ${index}`, client.type(index))
  if (type !== 'set') return { visited: 0, complete: true }
  let cursor = '0'
  let visited = 0
  do {
    const [next, raw] = await ask(`reading the index set ${index} (SSCAN)`, client.sscan(index, cursor, 'COUNT', SSCAN_COUNT))
    cursor = next
    const take = raw.slice(0, Math.max(0, limit - visited))
    visited += take.length
    const members = take.map(parseIndexMember).filter((m): m is { key: string; url: string } => m !== undefined)
    if (members.length > 0 && (await onBatch(members)) === false) return { visited, complete: false }
    if (take.length < raw.length) return { visited, complete: false }
  } while (cursor !== '0' && visited < limit)
  return { visited, complete: cursor === '0' }
}

/** PTTL, STRLEN and the envelope's unverified metadata of each key: two pipelined round trips. */
export async function describeKeys(client: Redis, ns: string, keys: readonly string[]): Promise<KeyInfo[]> {
  if (keys.length === 0) return []
  const first = client.pipeline()
  for (const k of keys) first.pttl(k).strlen(k).getrangeBuffer(k, 0, ENVELOPE_HEAD_BYTES - 1)
  const replies = await askAll('reading keys (PTTL, STRLEN, GETRANGE)', first)
  const heads = keys.map((key, i) => {
    const [, pttl] = replies[i * 3] ?? []
    const [strlenErr, strlen] = replies[i * 3 + 1] ?? []
    const [, head] = replies[i * 3 + 2] ?? []
    return {
      key,
      pttl: typeof pttl === 'number' ? pttl : -2,
      bytes: strlenErr === null && typeof strlen === 'number' ? strlen : undefined,
      head: Buffer.isBuffer(head) ? peekEnvelopeHead(head) : undefined,
    }
  })
  const second = client.pipeline()
  const asked: number[] = []
  heads.forEach((h, i) => {
    if (h.head === undefined) return
    asked.push(i)
    second.getrangeBuffer(h.key, h.head.metaOffset, h.head.metaOffset + h.head.metaLength - 1)
  })
  const metas = asked.length === 0 ? [] : await askAll('reading entry metadata (GETRANGE)', second)
  const claims = new Map<number, EnvelopeClaims | undefined>()
  asked.forEach((at, j) => {
    const [, meta] = metas[j] ?? []
    claims.set(at, Buffer.isBuffer(meta) ? peekEnvelopeClaims(meta) : undefined)
  })
  return heads.map((h, i) => ({ key: h.key, kind: classifyKey(ns, h.key), pttl: h.pttl, bytes: h.bytes, claims: claims.get(i) }))
}

/** `pattern` for SCAN: every key of the namespace (its characters are never glob specials). */
export function namespacePattern(ns: string): string {
  return `${ns}:v1:*`
}

/** Splits a path and query from a member's URL. */
export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
