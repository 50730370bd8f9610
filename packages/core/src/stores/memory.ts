import { LRUCache } from 'lru-cache'
import { expiredAt, type Entry } from '../model/entry.js'
import { ConfigError } from '../model/errors.js'
import { matchesSelectors, type NormalizedSelectors } from '../model/invalidation.js'
import { positiveInt } from '../model/options.js'
import type { LocalStore, SetResult, StoreHealth, StoreHost } from './types.js'

export interface MemoryStoreOptions {
  /**
   * Byte budget for all entries (bodies, headers and bookkeeping); least recently used entries
   * are evicted past it.
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
 */
export class MemoryStore implements LocalStore {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  private readonly lru: LRUCache<string, Entry>
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
    this.lru = new LRUCache<string, Entry>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      sizeCalculation: (e) => e.size,
      dispose: (e, key) => this.unindex(key, e),
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
    this.lru.set(key, entry)
    // lru-cache refuses entries it cannot hold without storing them; index only what it kept.
    if (this.lru.peek(key) !== entry) return false
    add(this.byPath, entry.path, key)
    for (const t of entry.tags) add(this.byTag, t, key)
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
  }

  private unindex(key: string, e: Entry): void {
    remove(this.byPath, e.path, key)
    for (const t of e.tags) remove(this.byTag, t, key)
  }
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
