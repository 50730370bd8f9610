/**
 * The store contract (`CacheStore` in stores/types.ts), written once and run against every store:
 * Corral's own (test/stores: memory, redis, tiered, cluster) and yours — `runStoreSuite(name,
 * factory, traits)` in a vitest file.
 *
 * Entries are built with the real constructors (`createResponseEntry`, `createVaryEntry`) under
 * real keys (`makePrimaryKey`, `makeVariantKey`), exactly as the cache builds them. "get" may
 * answer synchronously or with a promise; every call is awaited. Every test ends by checking that
 * the store reported no error and refused no entry: a store that swallows a failure cannot pass.
 *
 * Where the stores legitimately differ, the difference is a trait of the factory (see
 * `StoreTraits`) and the test asserts what that store does, so the difference stays documented and
 * checked instead of skipped.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import type { CorralError } from '../model/errors.js'
import { ageOf, createResponseEntry, createVaryEntry, storableHeaders, type Entry, type ResponseEntry, type VaryEntry } from '../model/entry.js'
import { normalizeSelectors, type InvalidateSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { makePrimaryKey, makeVariantKey } from '../model/key.js'
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

const DEFAULT_MAX_ENTRY = 16 * 1024 * 1024
/** The tolerance on times a store reconstructs from Redis' PTTL on the reader's clock. */
const CLOCK_SLACK_MS = 1000
const POLL_LIMIT_MS = 5000

let nsCounter = 0
/** A namespace no other test (or worker) uses; cache namespaces are `[\w.-]{1,64}`. */
export function uniqueNamespace(): string {
  nsCounter++
  return `st-${process.pid}-${nsCounter}-${randomBytes(4).toString('hex')}`
}

export function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function'
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
    { exclude: [] },
    undefined,
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

function sel(s: InvalidateSelectors): NormalizedSelectors {
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
function expectSameAge(got: Entry | undefined, want: ResponseEntry): void {
  const at = Date.now()
  const age = ageOf(got as ResponseEntry, at)
  const expected = ageOf(want, at)
  expect(Math.abs(age - expected)).toBeLessThanOrEqual(1)
}

/**
 * Runs the store contract against `factory`. Each test gets a fresh store on a fresh namespace
 * and cleans up after itself, so tests never see each other's entries.
 */
export function runStoreSuite(name: string, factory: StoreFactory, traits: StoreTraits): void {
  describe(`store contract: ${name}`, () => {
    async function open(maxEntryBytes = DEFAULT_MAX_ENTRY): Promise<StoreUnderTest> {
      return factory({ namespace: uniqueNamespace(), maxEntryBytes })
    }

    /** Opens a store, runs `body`, checks that nothing was reported or refused, cleans up. */
    function test(title: string, body: (s: StoreUnderTest) => Promise<void>, maxEntryBytes?: number): void {
      it(title, async () => {
        const s = await open(maxEntryBytes)
        try {
          await body(s)
          expect(s.host.reports.map((e) => `${e.message}: ${String(e.cause)}`)).toEqual([])
          expect(s.host.rejectedCount).toBe(0)
        } finally {
          await s.cleanup()
        }
      })
    }

    // ---- reads and writes ------------------------------------------------------------------

    test('a key never set is a miss', async ({ store, host }) => {
      const { key } = response(host.namespace, { url: '/never' })
      expect(await store.get(key)).toBeUndefined()
    })

    test('set then get returns the same status, headers, binary body, tags, routing fields, etag, age and expiry', async (s) => {
      const { store, host } = s
      const now = Date.now()
      const body = Buffer.concat([Buffer.from([0x00, 0xff, 0x00, 0xfe]), binary(4096), Buffer.from([0xff, 0x00])])
      const built = response(
        host.namespace,
        {
          url: '/products/42?b=2&a=1',
          status: 203,
          headers: {
            'content-type': 'application/octet-stream',
            etag: '"v42"',
            'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
            'cache-control': 'public, max-age=60',
            link: ['</a.css>; rel=preload', '</b.js>; rel=preload'],
            'x-multi': ['one', 'two', 'three'],
            'x-latin1': 'caf\u00e9',
          },
          body,
          tags: ['product:42', 'catalog'],
          lifetimeMs: 60_000,
          storedAgoMs: 5_500,
          initialAge: 7,
        },
        now,
      )
      // The constructor did what the cache relies on; checked so the comparison below means something.
      expect(built.entry.etag).toBe('"v42"')
      expect(built.entry.url).toBe('/products/42?a=1&b=2')
      expect(built.entry.headers['content-length']).toBe(String(body.length))
      // 7 s from the origin plus 5.5 s in the cache, in whole seconds.
      expect(ageOf(built.entry, now)).toBe(12)
      expect(await store.set(built.key, built.entry)).toBe(true)

      const got = await store.get(built.key)
      expectSameResponse(got, built.entry)
      expectSameAge(got, built.entry)

      // A second instance over the same data (for Tiered: through Redis, not its own L1).
      await s.settle()
      const peer = await s.sibling(host.namespace)
      const viaPeer = await peer.store.get(built.key)
      expectSameResponse(viaPeer, built.entry)
      expectSameAge(viaPeer, built.entry)
      expect(peer.host.reports).toEqual([])
      expect(peer.host.rejectedCount).toBe(0)
    })

    test('a 204 without a body round trips with an empty body and no Content-Length', async (s) => {
      const built = response(s.host.namespace, { url: '/empty', status: 204, body: Buffer.alloc(0), headers: {} })
      expect(built.entry.headers['content-length']).toBeUndefined()
      await put(s.store, built)
      expectSameResponse(await s.store.get(built.key), built.entry)
      await s.settle()
      const peer = await s.sibling(s.host.namespace)
      expectSameResponse(await peer.store.get(built.key), built.entry)
    })

    test('a vary marker and its variants round trip', async (s) => {
      const { store, host } = s
      const v = varied(host.namespace, { url: '/greeting', tags: ['greeting'] }, ['accept-language', 'accept-encoding'], [
        { 'accept-language': 'en', 'accept-encoding': 'gzip' },
        { 'accept-language': 'fr' },
      ])
      await put(store, v)
      await s.settle()
      const peer = await s.sibling(host.namespace)
      for (const reader of [store, peer.store]) {
        const marker = await reader.get(v.primary)
        expect(marker?.kind).toBe('vary')
        if (marker?.kind !== 'vary') return
        expect([...marker.names]).toEqual(['accept-language', 'accept-encoding'])
        expect([...marker.tags]).toEqual(['greeting'])
        expect(marker.path).toBe('/greeting')
        expect(marker.url).toBe('/greeting')
        expect(marker.size).toBe(v.marker.size)
        expect(marker.expiresAt).toBeGreaterThanOrEqual(v.marker.expiresAt - 5)
        expect(marker.expiresAt).toBeLessThanOrEqual(v.marker.expiresAt + CLOCK_SLACK_MS)
        for (const variant of v.variants) {
          // The key a later request derives from the marker's names finds the variant.
          const key = makeVariantKey(v.primary, marker.names, variant.request)
          expect(key).toBe(variant.key)
          expectSameResponse(await reader.get(key), variant.entry)
        }
        expect(await reader.get(makeVariantKey(v.primary, marker.names, { 'accept-language': 'de' }))).toBeUndefined()
      }
    })

    test('an entry whose expiresAt is already past is not answered as fresh', async ({ store, host }) => {
      const now = Date.now()
      const built = response(host.namespace, { url: '/stale', lifetimeMs: 1_000, storedAgoMs: 5_000 }, now)
      expect(built.entry.expiresAt).toBeLessThan(now)
      expect(await store.set(built.key, built.entry)).toBe(traits.setsExpiredEntry)
      const got = await store.get(built.key)
      // The contract lets a store return an expired entry; the cache checks expiresAt.
      if (got !== undefined) expect(got.expiresAt).toBeLessThanOrEqual(Date.now())
    })

    test('a short-lived entry stops being fresh once its lifetime has passed in real time', async ({ store, host }) => {
      const built = response(host.namespace, { url: '/short', lifetimeMs: 1_000 })
      await put(store, built)
      expect(await fresh(store, built.key)).toBeDefined()
      // Past expiresAt with room to spare for Redis' own expiry.
      await sleep(built.entry.expiresAt - Date.now() + 300)
      const got = await store.get(built.key)
      if (got !== undefined) expect(got.expiresAt).toBeLessThanOrEqual(Date.now())
    })

    test('delete removes the entry, also one set just before (nothing brings it back later); deleting a missing key is fine', async (s) => {
      const { store, host } = s
      const a = response(host.namespace, { url: '/del/a' })
      const b = response(host.namespace, { url: '/del/b' })
      await put(store, a, b)
      // No pause between set and delete: a write the store put off must not outlive the delete.
      await store.delete(a.key)
      expect(await store.get(a.key)).toBeUndefined()
      expectSameResponse(await store.get(b.key), b.entry)
      await s.settle()
      expect(await store.get(a.key)).toBeUndefined()
      const peer = await s.sibling(host.namespace)
      expect(await peer.store.get(a.key)).toBeUndefined()
      expectSameResponse(await peer.store.get(b.key), b.entry)

      await store.delete(response(host.namespace, { url: '/del/never' }).key)
      await store.delete(a.key)
      expectSameResponse(await store.get(b.key), b.entry)
    })

    test('an entry set again under the same key replaces the first one', async (s) => {
      const first = response(s.host.namespace, { url: '/replace', body: Buffer.from('first'), tags: ['old'] })
      const second = response(s.host.namespace, { url: '/replace', body: Buffer.from('second one'), tags: ['new'] })
      expect(second.key).toBe(first.key)
      await put(s.store, first, second)
      expectSameResponse(await s.store.get(first.key), second.entry)
      await s.settle()
      const peer = await s.sibling(s.host.namespace)
      expectSameResponse(await peer.store.get(first.key), second.entry)
    })

    test("invalidating by a tag only the key's earlier entry carried (store-specific, see StoreTraits.staleTagAfterOverwrite)", async (s) => {
      const { store, host } = s
      const want = traits.staleTagAfterOverwrite
      const first = response(host.namespace, { url: '/retag', tags: ['old'] })
      const second = response(host.namespace, { url: '/retag', body: Buffer.from('new'), tags: ['new'] })
      // Written one after the other, as two fills some time apart would be.
      await put(store, first)
      await s.settle()
      await put(store, second)
      await s.settle()
      expect(await store.invalidate(sel({ tags: ['old'] }), host.namespace)).toBe(want.removed)
      expect(await present(store, [first.key])).toEqual(want.stillServed ? [first.key] : [])
      expect(await store.invalidate(sel({ tags: ['new'] }), host.namespace)).toBe(want.removedByNewTag)
      expect(await present(store, [first.key])).toEqual([])
    })

    // ---- invalidation ----------------------------------------------------------------------

    test('invalidate by path removes every query, host and variant of that path, and only that path; answers the count', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const doomed = [
        response(ns, { url: '/p/1' }),
        response(ns, { url: '/p/1?a=1' }),
        response(ns, { url: '/p/1?a=2' }),
        response(ns, { url: '/p/1', host: 'other.test' }),
        varied(ns, { url: '/p/1?view=full' }, ['accept-language'], [{ 'accept-language': 'en' }, { 'accept-language': 'fr' }]),
      ]
      const kept = [
        response(ns, { url: '/p/10' }),
        response(ns, { url: '/p/1/x' }),
        response(ns, { url: '/p' }),
        response(ns, { url: '/q/p/1' }),
        response(ns, { url: '/p/1x?a=1' }),
      ]
      await put(store, ...doomed, ...kept)
      await s.settle()
      const doomedKeys = keysOf(...doomed)
      expect(doomedKeys).toHaveLength(7)
      expect(await present(store, doomedKeys)).toEqual(doomedKeys)

      // Every store counts entries removed; for Redis that is keys unlinked, one key per entry.
      expect(await store.invalidate(sel({ keys: ['/p/1'] }), ns)).toBe(7)
      expect(await present(store, doomedKeys)).toEqual([])
      expect(await present(store, keysOf(...kept))).toEqual(keysOf(...kept))
      await s.settle()
      const peer = await s.sibling(ns)
      expect(await present(peer.store, doomedKeys)).toEqual([])
      expect(await present(peer.store, keysOf(...kept))).toEqual(keysOf(...kept))
      // Nothing left to remove.
      expect(await store.invalidate(sel({ keys: ['/p/1'] }), ns)).toBe(0)
    })

    test('invalidate by URL removes only that canonical query (every host and variant of it)', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const doomed = [
        response(ns, { url: '/p?x=1' }),
        response(ns, { url: '/p?x=1', host: 'other.test' }),
        varied(ns, { url: '/p?x=1', host: 'third.test' }, ['accept'], [{ accept: 'text/html' }]),
      ]
      const kept = [
        response(ns, { url: '/p' }),
        response(ns, { url: '/p?x=2' }),
        response(ns, { url: '/p?x=10' }),
        response(ns, { url: '/p?y=2&x=1' }),
        response(ns, { url: '/p?x=1&x=2' }),
        response(ns, { url: '/p/x?x=1' }),
      ]
      await put(store, ...doomed, ...kept)
      await s.settle()
      expect(await store.invalidate(sel({ keys: ['/p?x=1'] }), ns)).toBe(4)
      expect(await present(store, keysOf(...doomed))).toEqual([])
      expect(await present(store, keysOf(...kept))).toEqual(keysOf(...kept))
      // The selector is canonicalised like a request: parameter order does not matter.
      expect(await store.invalidate(sel({ keys: ['/p?x=1&y=2'] }), ns)).toBe(1)
      expect(await present(store, [keysOf(...kept)[3] as string])).toEqual([])
    })

    test('invalidate by tag removes the entries carrying it', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const a = response(ns, { url: '/t/1', tags: ['a'] })
      const ab = response(ns, { url: '/t/2', tags: ['b', 'a'] })
      const b = response(ns, { url: '/t/3', tags: ['b'] })
      const none = response(ns, { url: '/t/4' })
      const aa = response(ns, { url: '/t/5', tags: ['aa'] })
      await put(store, a, ab, b, none, aa)
      // Invalidated right after being set (for Tiered: before the L2 writes went out).
      expect(await store.invalidate(sel({ tags: ['a'] }), ns)).toBe(2)
      expect(await present(store, keysOf(a, ab, b, none, aa))).toEqual(keysOf(b, none, aa))
      await s.settle()
      const peer = await s.sibling(ns)
      expect(await present(peer.store, keysOf(a, ab, b, none, aa))).toEqual(keysOf(b, none, aa))
    })

    test('invalidate by several tags removes each matching entry once and counts it once', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const a = response(ns, { url: '/t/1', tags: ['a'] })
      const ab = response(ns, { url: '/t/2', tags: ['a', 'b'] })
      const b = response(ns, { url: '/t/3', tags: ['b'] })
      const c = response(ns, { url: '/t/4', tags: ['c'] })
      const d = response(ns, { url: '/t/5', tags: ['d'] })
      await put(store, a, ab, b, c, d)
      // Invalidated right after being set (for Tiered: before the L2 writes went out).
      expect(await store.invalidate(sel({ tags: ['a', 'b', 'c', 'missing'] }), ns)).toBe(4)
      expect(await present(store, keysOf(a, ab, b, c, d))).toEqual(keysOf(d))
      await s.settle()
      const peer = await s.sibling(ns)
      expect(await present(peer.store, keysOf(a, ab, b, c, d))).toEqual(keysOf(d))
    })

    test('invalidate by prefix: "/a/" removes /a/b and /a/b/c, not /a or /ab; "/a" removes /ab too', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const all = () => ({
        a: response(ns, { url: '/a' }),
        ab: response(ns, { url: '/ab' }),
        b: response(ns, { url: '/a/b' }),
        bq: response(ns, { url: '/a/b?q=1' }),
        c: response(ns, { url: '/a/b/c' }),
        other: response(ns, { url: '/b/a' }),
      })
      const e = all()
      await put(store, ...Object.values(e))
      await s.settle()
      expect(await store.invalidate(sel({ prefixes: ['/a/'] }), ns)).toBe(3)
      expect(await present(store, keysOf(...Object.values(e)))).toEqual(keysOf(e.a, e.ab, e.other))

      await put(store, e.b, e.bq, e.c)
      await s.settle()
      expect(await store.invalidate(sel({ prefixes: ['/a'] }), ns)).toBe(5)
      expect(await present(store, keysOf(...Object.values(e)))).toEqual(keysOf(e.other))
    })

    test('invalidate by a prefix deeper than 8 segments', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const deep = '/1/2/3/4/5/6/7/8/9'
      const x = response(ns, { url: `${deep}/10/leaf` })
      const y = response(ns, { url: `${deep}/11/a/b/c/leaf?q=1` })
      const near = response(ns, { url: '/1/2/3/4/5/6/7/8/90/leaf' })
      const shallow = response(ns, { url: '/1/2/3/4/5/6/7/8' })
      await put(store, x, y, near, shallow)
      await s.settle()
      expect(await store.invalidate(sel({ prefixes: [`${deep}/`] }), ns)).toBe(2)
      expect(await present(store, keysOf(x, y, near, shallow))).toEqual(keysOf(near, shallow))
      expect(await store.invalidate(sel({ prefixes: [deep] }), ns)).toBe(1)
      expect(await present(store, keysOf(near, shallow))).toEqual(keysOf(shallow))
    })

    test('invalidate by the root prefix "/" removes the whole namespace and nothing of another', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const other = await s.sibling(uniqueNamespace())
      const mine = [response(ns, { url: '/' }), response(ns, { url: '/x' }), response(ns, { url: '/x/y/z?q=1' })]
      const theirs = [response(other.host.namespace, { url: '/' }), response(other.host.namespace, { url: '/x' })]
      await put(store, ...mine)
      await put(other.store, ...theirs)
      await s.settle()
      await other.settle()
      expect(await store.invalidate(sel({ prefixes: ['/'] }), ns)).toBe(3)
      expect(await present(store, keysOf(...mine))).toEqual([])
      expect(await present(other.store, keysOf(...theirs))).toEqual(keysOf(...theirs))
    })

    test('invalidation in one namespace leaves the same paths, URLs and tags of another namespace', async (s) => {
      const { store, host } = s
      const other = await s.sibling(uniqueNamespace())
      const specs: EntrySpec[] = [
        { url: '/n/1', tags: ['shared'] },
        { url: '/n/2?x=1', tags: ['shared', 'two'] },
        { url: '/n/deep/3' },
      ]
      const mine = specs.map((spec) => response(host.namespace, spec))
      const theirs = specs.map((spec) => response(other.host.namespace, spec))
      expect(keysOf(...mine)).not.toEqual(keysOf(...theirs))
      await put(store, ...mine)
      await put(other.store, ...theirs)
      await s.settle()
      await other.settle()
      const everything = sel({ keys: ['/n/1', '/n/2?x=1'], tags: ['shared', 'two'], prefixes: ['/n/'] })
      expect(await store.invalidate(everything, host.namespace)).toBe(3)
      expect(await present(store, keysOf(...mine))).toEqual([])
      expect(await present(other.store, keysOf(...theirs))).toEqual(keysOf(...theirs))
      expect(other.host.reports).toEqual([])
    })

    test('1,000 entries under one tag (many SSCAN steps) are all removed', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const many = Array.from({ length: 1000 }, (_, i) => response(ns, { url: `/bulk/${i}`, tags: ['bulk', `item:${i}`] }))
      const bystander = response(ns, { url: '/bulk-not', tags: ['bulky'] })
      await Promise.all([...many, bystander].map(async (b) => expect(await store.set(b.key, b.entry)).toBe(true)))
      await s.settle()
      expect(await store.invalidate(sel({ tags: ['bulk'] }), ns)).toBe(1000)
      expect(await present(store, keysOf(...many))).toEqual([])
      expect(await present(store, keysOf(bystander))).toEqual(keysOf(bystander))
      const peer = await s.sibling(ns)
      expect(await present(peer.store, keysOf(...many))).toEqual([])
    })

    test('an entry with a tag and a path longer than 200 characters is stored and invalidated by tag, path and prefix', async (s) => {
      const { store, host } = s
      const ns = host.namespace
      const longSegment = 'x'.repeat(250)
      const longTag = `tag:${'t'.repeat(300)}`
      const url = `/long/${longSegment}/leaf`
      const entry = response(ns, { url, tags: [longTag] })
      const sibling = response(ns, { url: `/long/${longSegment.slice(1)}/leaf`, tags: [`${longTag.slice(0, -1)}`] })
      await put(store, entry, sibling)
      await s.settle()
      expectSameResponse(await store.get(entry.key), entry.entry)

      expect(await store.invalidate(sel({ tags: [longTag] }), ns)).toBe(1)
      expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))

      await put(store, entry)
      await s.settle()
      expect(await store.invalidate(sel({ keys: [url] }), ns)).toBe(1)
      expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))

      await put(store, entry)
      await s.settle()
      expect(await store.invalidate(sel({ prefixes: [`/long/${longSegment}/`] }), ns)).toBe(1)
      expect(await present(store, keysOf(entry, sibling))).toEqual(keysOf(sibling))
    })

    // ---- clear, limits, load ---------------------------------------------------------------

    test(`clear removes every entry of the namespace (${traits.clearScope === 'namespace' ? 'and no other namespace' : 'and of every other namespace in the store'})`, async (s) => {
      const { store, host } = s
      const other = await s.sibling(uniqueNamespace())
      const mine = [response(host.namespace, { url: '/c/1', tags: ['c'] }), response(host.namespace, { url: '/c/2' })]
      const theirs = [response(other.host.namespace, { url: '/c/1', tags: ['c'] })]
      await put(other.store, ...theirs)
      await other.settle()
      // No pause between set and clear: a write the store put off must not outlive the clear.
      await put(store, ...mine)
      await store.clear()
      expect(await present(store, keysOf(...mine))).toEqual([])
      expect(await present(other.store, keysOf(...theirs))).toEqual(traits.clearScope === 'namespace' ? keysOf(...theirs) : [])
      // Put-off writes must not bring anything back, and the indexes went with the entries.
      await s.settle()
      const peer = await s.sibling(host.namespace)
      expect(await present(peer.store, keysOf(...mine))).toEqual([])
      expect(await store.invalidate(sel({ tags: ['c'] }), host.namespace)).toBe(0)
    })

    test(
      "set answers 'too-large' for an entry larger than maxEntryBytes, and the entry is not returned",
      async (s) => {
        const { store, host } = s
        const small = response(host.namespace, { url: '/size/small', body: binary(512) })
        const large = response(host.namespace, { url: '/size/large', body: binary(8192) })
        expect(await store.set(small.key, small.entry)).toBe(true)
        expect(await store.set(large.key, large.entry)).toBe('too-large')
        expect(await store.get(large.key)).toBeUndefined()
        expectSameResponse(await store.get(small.key), small.entry)
        await s.settle()
        const peer = await s.sibling(host.namespace)
        expect(await peer.store.get(large.key)).toBeUndefined()
      },
      4096,
    )

    test('200 parallel sets, then 200 parallel gets, of different keys: all readable', async (s) => {
      const { store, host } = s
      const items = Array.from({ length: 200 }, (_, i) => response(host.namespace, { url: `/par/${i}`, body: binary(256 + i, i), tags: [`p${i % 7}`] }))
      const results = await Promise.all(items.map((b) => store.set(b.key, b.entry)))
      expect(results.every((r) => r === true)).toBe(true)
      const got = await Promise.all(items.map((b) => store.get(b.key)))
      got.forEach((e, i) => expectSameResponse(e, (items[i] as Built).entry))
      await s.settle()
      const peer = await s.sibling(host.namespace)
      const viaPeer = await Promise.all(items.map((b) => peer.store.get(b.key)))
      viaPeer.forEach((e, i) => expectSameResponse(e, (items[i] as Built).entry))
    })

    test('a 5 MB binary body round trips byte-identical', async (s) => {
      const { store, host } = s
      const body = randomBytes(5 * 1024 * 1024)
      body[0] = 0x00
      body[body.length - 1] = 0xff
      const big = response(host.namespace, { url: '/big.bin', body, headers: { 'content-type': 'application/octet-stream' } })
      expect(await store.set(big.key, big.entry)).toBe(true)
      expectSameResponse(await store.get(big.key), big.entry)
      await s.settle()
      const peer = await s.sibling(host.namespace)
      expectSameResponse(await peer.store.get(big.key), big.entry)
    })
  })
}
