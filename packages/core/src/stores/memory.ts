import { LRUCache } from 'lru-cache'
import { expiredAt, replaceBody, type Entry, type ResponseEntry } from '../model/entry.js'
import { ConfigError } from '../model/errors.js'
import { matchesSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { positiveInt } from '../model/options.js'
import { BodyArena, type BodyArenaStats } from './body-arena.js'
import type { LocalStore, SetResult, StoreHealth, StoreHost } from './types.js'

export interface MemoryStoreOptions {
  /**
   * Byte budget for all entries (bodies, headers and bookkeeping); least recently used entries
   * are evicted past it. The body arena's dead bytes are not counted: its compaction bounds them
   * (see the core README, L1 memory).
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
  /**
   * Largest single entry kept, in bytes, so that one response cannot flush the cache.
   * @default maxBytes / 16
   */
  maxEntryBytes?: number
}

/**
 * L1: an in-process LRU (lru-cache) bounded by bytes. Entries hold the body as a Buffer and
 * headers ready to write, so a hit neither parses nor copies. Keeps path and tag indexes so that
 * invalidation touches only matching entries.
 *
 * Bodies live in a body arena (see body-arena.ts): `set` copies an entry's body into it once and
 * points the entry at the copy (the same entry object: LRU order, TTL and identity unchanged); an
 * entry whose body is already a live body of this arena (a soft purge's or a 304's entry, which
 * share the body of the entry they replace) takes it over without a copy, so it is counted once.
 * A body leaves the arena when lru-cache disposes of its entry. `maxBytes` counts entries (bodies
 * included); the arena's dead bytes are bounded by its compaction (see README: L1 memory).
 */
export class MemoryStore implements LocalStore {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  private readonly lru: LRUCache<string, Entry>
  private readonly arena: BodyArena<ResponseEntry>
  // Most paths and many tags name one entry: a lone key is kept as a string, a Set only for more
  // (a one-element Set costs ~250 bytes).
  private readonly byPath: Index = new Map()
  private readonly byTag: Index = new Map()
  /** The cache's clock (for soft purges), once attached. */
  private now: () => number = Date.now

  /** `prefix` names the options in error messages (`'options.'` when built by createCache). */
  constructor(options: MemoryStoreOptions = {}, prefix = '') {
    this.maxBytes = options.maxBytes === undefined ? 64 * 1024 * 1024 : positiveInt(options.maxBytes, `${prefix}maxBytes`)
    this.maxEntryBytes =
      options.maxEntryBytes === undefined
        ? Math.max(1, Math.floor(this.maxBytes / 16))
        : positiveInt(options.maxEntryBytes, `${prefix}maxEntryBytes`)
    if (this.maxEntryBytes > this.maxBytes) {
      throw new ConfigError(
        `expected ${prefix}maxEntryBytes (${this.maxEntryBytes}) to be at most ${prefix}maxBytes (${this.maxBytes})`,
      )
    }
    this.arena = new BodyArena<ResponseEntry>({ slabBytes: slabBytesFor(this.maxBytes), moved: (e, view) => replaceBody(e, view) })
    this.lru = new LRUCache<string, Entry>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      sizeCalculation: (e) => e.size,
      dispose: (e, key) => {
        this.unindex(key, e)
        if (e.kind === 'response') this.arena.release(e.body, e)
      },
    })
  }

  attach(host: StoreHost): void {
    this.now = host.now
  }

  get(key: string): Entry | undefined {
    return this.lru.get(key)
  }

  set(key: string, entry: Entry): SetResult {
    if (entry.size > this.maxEntryBytes) return 'too-large'
    if (entry.kind === 'response') this.keepBody(key, entry)
    this.lru.set(key, entry)
    // lru-cache refuses entries it cannot hold without storing them; index only what it kept.
    if (this.lru.peek(key) !== entry) {
      if (entry.kind === 'response') this.arena.release(entry.body, entry)
      return false
    }
    add(this.byPath, entry.path, key)
    for (const t of entry.tags) add(this.byTag, t, key)
    // Evictions and replacements above may have left too many dead bytes: one step of compaction.
    this.arena.compact()
    return true
  }

  delete(key: string): void {
    this.lru.delete(key)
  }

  invalidate(sel: NormalizedSelectors, namespace: string): number {
    const own = `${namespace}:`
    if (sel.all === true) {
      let removed = 0
      for (const k of [...this.lru.keys()]) if (k.startsWith(own) && this.lru.delete(k)) removed++
      return removed
    }
    const candidates = new Set<string>()
    for (const p of sel.paths) addAll(candidates, this.byPath.get(p))
    for (const u of sel.urls) addAll(candidates, this.byPath.get(u.split('?', 1)[0] ?? u))
    for (const t of sel.tags) addAll(candidates, this.byTag.get(t))
    if (sel.prefixes.length > 0) {
      for (const [path, keys] of this.byPath) {
        if (sel.prefixes.some((p) => path.startsWith(p))) addAll(candidates, keys)
      }
    }
    let removed = 0
    const now = this.now()
    for (const k of candidates) {
      const e = k.startsWith(own) ? this.lru.peek(k) : undefined
      if (e === undefined || !matchesSelectors(sel, e)) continue
      removed++
      // A soft purge keeps the entry, its freshness ended: it is served stale within its windows.
      if (sel.soft === true) {
        const stale = expiredAt(e, now)
        if (stale !== e) this.set(k, stale)
      } else this.lru.delete(k)
    }
    return removed
  }

  size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize }
  }

  async health(): Promise<StoreHealth> {
    return { kind: 'memory', ok: true, ...this.size(), maxBytes: this.maxBytes }
  }

  clear(): void {
    this.lru.clear()
    this.arena.clear()
  }

  /** What the body arena holds (slab bytes, live and dead bytes, compaction so far). */
  arenaStats(): BodyArenaStats {
    return this.arena.stats()
  }

  /**
   * Makes `entry`'s body a body of this store's arena, about to be stored under `key`: taken over
   * when it is the live body of the entry it replaces there, kept when it is already `entry`'s,
   * copied otherwise (a body shared with an entry under another key gets a copy of its own, so
   * that each live body has one owner and is counted once).
   */
  private keepBody(key: string, entry: ResponseEntry): void {
    const body = entry.body
    const owner = this.arena.ownerOf(body)
    if (owner === entry) return
    if (owner !== undefined && owner === this.lru.peek(key)) {
      this.arena.transfer(body, owner, entry)
      return
    }
    const copy = this.arena.place(entry, body)
    // An entry not made by createResponseEntry keeps its body as it is (it cannot be repointed).
    if (copy !== body && !replaceBody(entry, copy)) this.arena.release(copy, entry)
  }

  private unindex(key: string, e: Entry): void {
    remove(this.byPath, e.path, key)
    for (const t of e.tags) remove(this.byTag, t, key)
  }
}

/**
 * Slab size for a cache of `maxBytes`: 256 KiB, smaller for small caches (down to 64 KiB) so that
 * a slab stays at most 1/16 of the budget. Not larger: a client that stalls while it receives a
 * hit keeps that body's whole slab alive (README: L1 memory). RSS after collection was the same
 * with 256 KiB and 1 MiB slabs (bench: memory).
 */
function slabBytesFor(maxBytes: number): number {
  let slab = 256 * 1024
  while (slab > 64 * 1024 && slab > maxBytes / 16) slab /= 2
  return slab
}

type Index = Map<string, string | Set<string>>

function add(index: Index, name: string, key: string): void {
  const keys = index.get(name)
  if (keys === undefined) index.set(name, key)
  else if (typeof keys === 'string') {
    if (keys !== key) index.set(name, new Set([keys, key]))
  } else keys.add(key)
}

function remove(index: Index, name: string, key: string): void {
  const keys = index.get(name)
  if (keys === undefined) return
  if (typeof keys === 'string') {
    if (keys === key) index.delete(name)
    return
  }
  keys.delete(key)
  if (keys.size === 1) index.set(name, keys.values().next().value as string)
  else if (keys.size === 0) index.delete(name)
}

function addAll(into: Set<string>, keys: string | Set<string> | undefined): void {
  if (keys === undefined) return
  if (typeof keys === 'string') into.add(keys)
  else for (const k of keys) into.add(k)
}
