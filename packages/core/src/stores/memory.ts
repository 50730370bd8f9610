import { LRUCache } from 'lru-cache'
import type { Entry } from '../entry.js'
import { ConfigError } from '../errors.js'
import { matchesSelectors, type NormalizedSelectors } from '../invalidation.js'
import { positiveInt } from '../options.js'
import type { CacheStore } from './types.js'

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
export class MemoryStore implements CacheStore {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  private readonly lru: LRUCache<string, Entry>
  private readonly byPath = new Map<string, Set<string>>()
  private readonly byTag = new Map<string, Set<string>>()

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

  get(key: string): Entry | undefined {
    return this.lru.get(key)
  }

  set(key: string, entry: Entry): boolean {
    this.lru.set(key, entry)
    // lru-cache refuses entries over maxEntrySize without storing them; index only what it kept.
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
    const candidates = new Set<string>()
    for (const p of sel.paths) for (const k of this.byPath.get(p) ?? []) candidates.add(k)
    for (const u of sel.urls) for (const k of this.byPath.get(u.split('?', 1)[0] ?? u) ?? []) candidates.add(k)
    for (const t of sel.tags) for (const k of this.byTag.get(t) ?? []) candidates.add(k)
    if (sel.prefixes.length > 0) {
      for (const [path, keys] of this.byPath) {
        if (sel.prefixes.some((p) => path.startsWith(p))) for (const k of keys) candidates.add(k)
      }
    }
    let removed = 0
    for (const k of candidates) {
      const e = k.startsWith(own) ? this.lru.peek(k) : undefined
      if (e !== undefined && matchesSelectors(sel, e)) {
        this.lru.delete(k)
        removed++
      }
    }
    return removed
  }

  size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize }
  }

  clear(): void {
    this.lru.clear()
  }

  private unindex(key: string, e: Entry): void {
    remove(this.byPath, e.path, key)
    for (const t of e.tags) remove(this.byTag, t, key)
  }
}

function add(index: Map<string, Set<string>>, name: string, key: string): void {
  let set = index.get(name)
  if (set === undefined) index.set(name, (set = new Set()))
  set.add(key)
}

function remove(index: Map<string, Set<string>>, name: string, key: string): void {
  const set = index.get(name)
  if (set === undefined) return
  set.delete(key)
  if (set.size === 0) index.delete(name)
}
