/**
 * The store contract's fixtures: the handle a factory returns (`StoreUnderTest`), the traits where
 * stores legitimately differ, a recording `TestHost`, and builders for real entries under real keys.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { expect } from 'vitest'
import type { CorralError } from '../model/errors.js'
import { ageOf, createResponseEntry, createVaryEntry, storableHeaders, type Entry, type ResponseEntry, type VaryEntry } from '../model/entry.js'
import { normalizeSelectors, type InvalidateSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { makePrimaryKey, makeVariantKey } from '../model/key.js'
export { isPromise } from '../model/maybe-promise.js'
import type { CacheStore, StoreHost } from '../stores/types.js'

/** A StoreHost that records what the store tells the cache. */
export class TestHost implements StoreHost {
  readonly reports: CorralError[] = []
  readonly remote: NormalizedSelectors[] = []
  rejectedCount = 0

  constructor(
    readonly namespace: string,
    readonly now: () => number = Date.now,
  ) {}

  readonly report = (error: CorralError): void => {
    this.reports.push(error)
  }

  readonly rejected = (): void => {
    this.rejectedCount++
  }

  readonly remoteInvalidation = (selectors: NormalizedSelectors): void => {
    this.remote.push(selectors)
  }
}

/** A store under test, attached to its own TestHost. */
export interface StoreUnderTest {
  readonly store: CacheStore
  readonly host: TestHost
  /**
   * Another store over the SAME data under `namespace` (the same namespace gives a second
   * instance: for Redis and Tiered a new store with its own connection and L1; for Memory, whose
   * data is the store object itself, the same store behind a second host).
   */
  sibling(namespace: string): Promise<StoreUnderTest>
  /**
   * Resolves once the writes and deletions the store has put off (TieredStore writes L2 on a
   * later turn of the event loop) have reached the shared data, so a sibling sees them.
   */
  settle(): Promise<void>
  /** Closes what this handle (and its siblings) opened. */
  cleanup(): Promise<void>
}

export interface FactoryOptions {
  /** A namespace no other test uses. */
  readonly namespace: string
  /** The store's largest entry, in bytes (for Tiered: both tiers). */
  readonly maxEntryBytes: number
}

export type StoreFactory = (options: FactoryOptions) => Promise<StoreUnderTest>

/** Where the stores' contracts legitimately differ. */
export interface StoreTraits {
  /**
   * What `clear()` removes: only the host namespace's entries (Redis SCANs `<ns>:v1:*`; Tiered
   * clears its own L1 and that), or everything the store object holds (Memory: `lru.clear()`).
   */
  readonly clearScope: 'namespace' | 'store'
  /**
   * What `set` answers for an entry whose `expiresAt` is already past: Memory keeps it (the cache
   * checks `expiresAt` on a hit), Redis declines it (no TTL to give it), Tiered keeps it in L1.
   */
  readonly setsExpiredEntry: boolean
  /**
   * What invalidating by a tag that a key's EARLIER entry carried does to the entry that replaced
   * it: Memory re-indexes on overwrite (nothing removed); Redis index members leave only with an
   * invalidation or expiry, so the stale member still selects the key (removed); Tiered removes
   * the L2 copy but its own L1, re-indexed, keeps serving the new entry.
   */
  readonly staleTagAfterOverwrite: {
    /** What `invalidate({ tags: [old] })` answers. */
    readonly removed: number
    /** Whether the store still answers the new entry afterwards. */
    readonly stillServed: boolean
    /** What `invalidate({ tags: [new] })` then answers. */
    readonly removedByNewTag: number
  }
}

export const DEFAULT_MAX_ENTRY = 16 * 1024 * 1024
/** The tolerance on times a store reconstructs from Redis' PTTL on the reader's clock. */
export const CLOCK_SLACK_MS = 1000
const POLL_LIMIT_MS = 5000

let nsCounter = 0
/** A namespace no other test (or worker) uses; cache namespaces are `[\w.-]{1,64}`. */
export function uniqueNamespace(): string {
  nsCounter++
  return `st-${process.pid}-${nsCounter}-${randomBytes(4).toString('hex')}`
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Calls `probe` every 20 ms until `done` accepts its answer; fails after 5 s with `what`. For
 * effects another connection makes visible (pub/sub, background writes): bounded, never a fixed
 * sleep.
 */
export async function eventually<T>(what: string, probe: () => T | Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + POLL_LIMIT_MS
  for (;;) {
    const v = await probe()
    if (done(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${POLL_LIMIT_MS} ms waiting for ${what}; last value: ${String(v)}`)
    await sleep(20)
  }
}

/** Bytes 0x00..0xff repeated in a scrambled order, so any text re-encoding shows. */
export function binary(length: number, seed = 0): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * 7 + 3 + seed) % 256
  return b
}

export interface EntrySpec {
  /** Request path and query, as received (`/p/1?b=2&a=1`). */
  readonly url: string
  readonly host?: string
  readonly status?: number
  readonly headers?: Readonly<Record<string, string | string[]>>
  readonly body?: Buffer
  readonly tags?: readonly string[]
  /** Freshness lifetime from storedAt. */
  readonly lifetimeMs?: number
  /** How long before now the entry was stored (time it already spent in the cache). */
  readonly storedAgoMs?: number
  readonly initialAge?: number
  /** Request headers (for variants). */
  readonly request?: IncomingHttpHeaders
}

export interface Built {
  readonly key: string
  readonly entry: ResponseEntry
}

/** A response entry under its real primary key, built the way the cache builds it. */
export function response(namespace: string, spec: EntrySpec, now = Date.now()): Built {
  const parts = makePrimaryKey(
    namespace,
    { method: 'GET', url: spec.url, headers: { host: spec.host ?? 'example.test', ...spec.request } },
  )
  const entry = createResponseEntry({
    status: spec.status ?? 200,
    headers: storableHeaders({ 'content-type': 'text/plain', ...spec.headers }, new Set()),
    body: spec.body ?? Buffer.from(`body of ${spec.url} on ${spec.host ?? 'example.test'}`),
    storedAt: now - (spec.storedAgoMs ?? 0),
    lifetimeMs: spec.lifetimeMs ?? 60_000,
    initialAge: spec.initialAge ?? 0,
    tags: spec.tags ?? [],
    path: parts.path,
    url: parts.url,
  })
  return { key: parts.key, entry }
}

export interface VaryBuilt {
  readonly primary: string
  readonly marker: VaryEntry
  readonly variants: readonly { readonly key: string; readonly entry: ResponseEntry; readonly request: IncomingHttpHeaders }[]
}

/** A vary marker under the primary key and one variant per request header set, as the cache stores them. */
export function varied(
  namespace: string,
  spec: EntrySpec,
  names: readonly string[],
  requests: readonly IncomingHttpHeaders[],
): VaryBuilt {
  const { key: primary } = response(namespace, spec)
  let marker: VaryEntry | undefined
  const variants = requests.map((request, i) => {
    const { entry } = response(namespace, { ...spec, body: Buffer.from(`variant ${i} ${JSON.stringify(request)}`), headers: { vary: names.join(', ') } })
    marker = createVaryEntry(names, entry, marker)
    return { key: makeVariantKey(primary, names, request), entry, request }
  })
  if (marker === undefined) throw new Error('varied: at least one request is needed')
  return { primary, marker, variants }
}

export async function put(store: CacheStore, ...items: (Built | VaryBuilt)[]): Promise<void> {
  for (const item of items) {
    if ('primary' in item) {
      expect(await store.set(item.primary, item.marker)).toBe(true)
      for (const v of item.variants) expect(await store.set(v.key, v.entry)).toBe(true)
    } else {
      expect(await store.set(item.key, item.entry)).toBe(true)
    }
  }
}

export function keysOf(...items: (Built | VaryBuilt)[]): string[] {
  return items.flatMap((item) => ('primary' in item ? [item.primary, ...item.variants.map((v) => v.key)] : [item.key]))
}

/** The entry under `key` if the store answers it as fresh; undefined otherwise. */
export async function fresh(store: CacheStore, key: string, now = Date.now()): Promise<Entry | undefined> {
  const e = await store.get(key)
  return e !== undefined && e.expiresAt > now ? e : undefined
}

/** Keys among `keys` the store still answers as fresh. */
export async function present(store: CacheStore, keys: readonly string[]): Promise<string[]> {
  const found = await Promise.all(keys.map(async (k) => ((await fresh(store, k)) === undefined ? undefined : k)))
  return found.filter((k): k is string => k !== undefined)
}

export function sel(s: InvalidateSelectors): NormalizedSelectors {
  return normalizeSelectors(s)
}

/** Headers as a plain object (stores hand back prototype-less records). */
function plain(h: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return { ...h }
}

/** Checks everything a hit is served from, allowing for times reconstructed on the reader's clock. */
export function expectSameResponse(got: Entry | undefined, want: ResponseEntry): void {
  expect(got).toBeDefined()
  if (got === undefined || got.kind !== 'response') throw new Error(`expected a response entry, got ${got?.kind}`)
  expect(got.status).toBe(want.status)
  expect(plain(got.headers)).toEqual(plain(want.headers))
  expect(plain(got.notModifiedHeaders)).toEqual(plain(want.notModifiedHeaders))
  expect(Buffer.isBuffer(got.body)).toBe(true)
  expect(got.body.length).toBe(want.body.length)
  expect(got.body.equals(want.body)).toBe(true)
  expect([...got.tags]).toEqual([...want.tags])
  expect(got.path).toBe(want.path)
  expect(got.url).toBe(want.url)
  expect(got.etag).toBe(want.etag)
  expect(got.lastModified).toBe(want.lastModified)
  expect(got.initialAge).toBe(want.initialAge)
  expect(got.size).toBe(want.size)
  // Redis stores the time left, rounded down, and the reader adds its PTTL to its own clock when
  // the reply arrives: never meaningfully earlier, later by at most the read's delay.
  expect(got.expiresAt).toBeGreaterThanOrEqual(want.expiresAt - 5)
  expect(got.expiresAt).toBeLessThanOrEqual(want.expiresAt + CLOCK_SLACK_MS)
  expect(Math.abs(got.storedAt - want.storedAt)).toBeLessThanOrEqual(CLOCK_SLACK_MS)
}

/**
 * `Age` of a hit from the stored entry matches the original's: the origin's age (7 s in the
 * round-trip test) plus the time spent in the cache, which a store rebuilding `storedAt` from
 * Redis' PTTL knows to within milliseconds (so at most one second apart at a boundary).
 */
export function expectSameAge(got: Entry | undefined, want: ResponseEntry): void {
  const at = Date.now()
  const age = ageOf(got as ResponseEntry, at)
  const expected = ageOf(want, at)
  expect(Math.abs(age - expected)).toBeLessThanOrEqual(1)
}

/** The suite's `test`: a fresh store on a fresh namespace per test, checked for reports and refusals. */
export type ContractTest = (title: string, body: (s: StoreUnderTest) => Promise<void>, maxEntryBytes?: number) => void
