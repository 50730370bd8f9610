import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { StoreError, StoreUnavailableError } from '../model/errors.js'
import {
  ALL,
  chunkSelectors,
  mergeSelectors,
  matchesSelectors,
  selectorCount,
  selectorsToJson,
  type NormalizedSelectors,
} from '../model/invalidation.js'

/** What the invalidator needs of the Redis store that owns it. */
export interface RedisAccess {
  readonly client: Redis | Cluster
  readonly writeTimeoutMs: number
  namespace(): string
  /** Connected and the circuit lets a call through. */
  canSend(): boolean
  /** Runs `op` under a deadline of `ms`, feeding the outcome to the circuit breaker. */
  call<T>(op: () => Promise<T>, ms: number): Promise<T>
  /** Tells every other instance (over pub/sub), resolving once Redis has taken the message. */
  broadcast(json: string): Promise<void>
  /**
   * Resolves once every replica the primary is known to have holds this connection's writes
   * (Redis WAIT), so that a failover cannot undo them; rejects when one does not in time.
   */
  replicated(): Promise<void>
  /** Reports a key of ours that holds something Corral did not write. */
  foreignValue(detail: string): void
}

/**
 * A soft purge of one entry key: its freshness ends now. The envelope's metadata (read without
 * verifying its MAC: shortening a TTL is safe whoever wrote the value) gives the stale window the
 * entry is kept for past its freshness (`swr`/`sie`, or a marker's `retain`; none before v3):
 * the TTL becomes that window (if shorter), or the key goes when it has none. Whatever cannot be
 * softened (not a string, not an envelope, metadata Redis's JSON cannot read, no TTL) is removed,
 * as a removal would: coarser, never skipped. Answers 1 when the key was there, 0 when it was not.
 */
const SOFTEN_SCRIPT = `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
local function remove() redis.call('UNLINK', KEYS[1]) return 1 end
if kind ~= 'string' then return remove() end
local head = redis.call('GETRANGE', KEYS[1], 0, 41)
if #head < 10 or string.sub(head, 1, 4) ~= 'CRL\\0' then return remove() end
local version = string.byte(head, 5)
local at = 7
if string.byte(head, 6) % 2 == 1 then at = 39 end
if #head < at + 3 then return remove() end
local b1, b2, b3, b4 = string.byte(head, at, at + 3)
local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
if len < 2 or len > 262144 then return remove() end
local ok, meta = pcall(cjson.decode, redis.call('GETRANGE', KEYS[1], at + 3, at + 2 + len))
if not ok or type(meta) ~= 'table' then return remove() end
local retain = 0
if version == 3 then
  if meta.kind == 'vary' then retain = tonumber(meta.retain) or 0
  else retain = math.max(tonumber(meta.swr) or 0, tonumber(meta.sie) or 0) end
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 or retain < 1 then return remove() end
if retain < pttl then redis.call('PEXPIRE', KEYS[1], math.floor(retain)) end
return 1
`

/**
 * Names merged into one batch: the invalidations waiting are run in batches of about this many
 * names, one after the other; a failed batch kept to run again degrades to a namespace-wide flush
 * past it (coarser, never lost, and bounded).
 */
export const MAX_BATCH_NAMES = 10_000
/**
 * Names waiting (not yet in a batch) before they are merged into one flush of the namespace: an
 * overload that Redis cannot keep up with makes the invalidation coarser, never lost, and keeps
 * the memory the queue holds bounded. A burst of unsafe requests (each an invalidation of one or
 * two URLs) up to this size flushes nothing.
 */
export const MAX_QUEUED_NAMES = 100_000
/** Largest JSON of one log entry and one message between instances (a batch is split to fit). */
const MAX_PIECE_CHARS = 4 * 1024
/** Invalidations kept in the log (`XADD … MAXLEN ~`). */
const LOG_LENGTH = 1000
/** Members read per SSCAN step, keys per SCAN step: each step is one short command. */
const SCAN_COUNT = 100
/** Index sets swept side by side (their commands share the connection, like a pipeline). */
const SWEEP_CONCURRENCY = 32
/** Directory levels indexed for prefix invalidation ('/', '/a/', '/a/b/', ...). */
const MAX_DIR_DEPTH = 8
/** Index keys longer than this are named by a hash of the tag or path. */
const MAX_INDEX_NAME = 200

interface Waiter {
  readonly sel: NormalizedSelectors
  readonly resolve: (removed: number) => void
  readonly reject: (err: unknown) => void
}

/** What one run removed, to tell each caller of a merged batch how many of its entries went. */
class Removed {
  readonly urls = new Map<string, string>()
  readonly byTag = new Map<string, Set<string>>()
  all = 0

  add(key: string, url: string, tag: string | undefined): void {
    this.urls.set(key, url)
    if (tag === undefined) return
    let keys = this.byTag.get(tag)
    if (keys === undefined) this.byTag.set(tag, (keys = new Set()))
    keys.add(key)
  }

  countFor(sel: NormalizedSelectors): number {
    if (sel.all === true) return this.all + this.urls.size
    const mine = new Set<string>()
    for (const t of sel.tags) for (const k of this.byTag.get(t) ?? []) mine.add(k)
    if (sel.paths.size + sel.urls.size + sel.prefixes.length > 0) {
      const byUrl: NormalizedSelectors = { ...sel, tags: NO_TAGS }
      for (const [key, url] of this.urls) {
        if (!mine.has(key) && matchesSelectors(byUrl, { path: pathOf(url), url, tags: [] })) mine.add(key)
      }
    }
    return mine.size + this.all
  }
}

const NO_TAGS: ReadonlySet<string> = new Set()

/**
 * Invalidation in Redis. Concurrent invalidations are merged into one batch, so a burst costs a
 * few round trips, not one sweep each; past `MAX_BATCH_NAMES` a batch becomes a flush of the whole
 * namespace. Each batch is logged (so fills that began before it are not stored after it), swept
 * from the index sets, then announced to every instance. A caller's promise resolves once all
 * three happened, or rejects; a batch that failed is kept, merged, and run again as soon as Redis
 * answers.
 */
export class RedisInvalidator {
  private next: Waiter[] = []
  /** Names the selectors in `next` hold. */
  private queued = 0
  private running = false
  /** Selectors of batches that failed, to run again when Redis answers; never more than ALL. */
  private retry: NormalizedSelectors | undefined

  constructor(private readonly redis: RedisAccess) {}

  /** Invalidations waiting for Redis to come back (0, or 1 merged batch). */
  get pending(): number {
    return this.retry === undefined ? 0 : 1
  }

  /** Removes matching entries everywhere; resolves to how many this call's selectors removed. */
  submit(sel: NormalizedSelectors): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.next.push({ sel, resolve, reject })
      this.queued += selectorCount(sel)
      if (!this.running) void this.drain()
    })
  }

  /**
   * The waiting invalidations of the next batch: in order, up to about MAX_BATCH_NAMES names (at
   * least one invalidation), soft purges apart from removals; all of them, merged into a flush,
   * once more than MAX_QUEUED_NAMES wait.
   */
  private take(): Waiter[] {
    if (this.queued > MAX_QUEUED_NAMES) {
      const all = this.next
      this.next = []
      this.queued = 0
      return all
    }
    // Soft purges and removals go in batches of their own, so that neither changes the other.
    const soft = this.next[0]?.sel.soft === true
    let names = 0
    let n = 0
    for (const w of this.next) {
      const c = selectorCount(w.sel)
      if (n > 0 && ((w.sel.soft === true) !== soft || names + c > MAX_BATCH_NAMES)) break
      names += c
      n++
    }
    this.queued -= names
    return this.next.splice(0, n)
  }

  /** Redis answered again: run what failed before. */
  recovered(): void {
    if (this.retry !== undefined && !this.running && this.redis.canSend()) void this.drain()
  }

  private async drain(): Promise<void> {
    this.running = true
    try {
      while (this.next.length > 0 || (this.retry !== undefined && this.redis.canSend())) {
        const waiters = this.take()
        const retry = this.retry
        this.retry = undefined
        const list = waiters.map((w) => w.sel)
        if (retry !== undefined) list.push(retry)
        const sel = mergeSelectors(list, MAX_BATCH_NAMES)
        try {
          const removed = await this.run(sel)
          for (const w of waiters) w.resolve(removed.countFor(w.sel))
        } catch (err) {
          this.retry = mergeSelectors(this.retry === undefined ? [sel] : [this.retry, sel], MAX_BATCH_NAMES)
          const error =
            err instanceof StoreError ? err : new StoreError('invalidating entries in Redis failed; it runs again when Redis answers', err)
          for (const w of waiters) w.reject(error)
          // Nothing to gain from trying again at once: wait for the next call that succeeds.
          if (this.next.length === 0) break
        }
      }
    } finally {
      this.running = false
    }
  }

  private async run(sel: NormalizedSelectors): Promise<Removed> {
    if (!this.redis.canSend()) throw new StoreUnavailableError('invalidating entries in Redis failed: Redis is unavailable; it runs again when Redis answers')
    const removed = new Removed()
    let foreign = false
    for (const piece of chunkSelectors(sel, MAX_PIECE_CHARS)) {
      const json = selectorsToJson(piece)
      // Logged first: a fill that began before this point and writes after it finds the log
      // entry (RedisStore.set), and one that wrote before it is found by the sweep.
      await this.log(json)
      if (piece.all === true) removed.all += await this.flush()
      else foreign = (await this.sweep(piece, removed)) || foreign
      // On the replicas before anyone is told: a primary that is being replaced keeps answering
      // for a second or so, and whatever only it holds is gone once it resyncs.
      await this.redis.replicated()
      await this.redis.broadcast(json)
    }
    if (foreign) {
      // An index held something Corral did not write: entries it indexed may be unreachable, so
      // the only invalidation that is sure to reach them is the whole namespace.
      const json = selectorsToJson(ALL)
      await this.log(json)
      removed.all += await this.flush()
      await this.redis.replicated()
      await this.redis.broadcast(json)
    }
    return removed
  }

  /**
   * Appends to the invalidation log. A log key holding something else (Corral writes only a
   * stream there) is counted as foreign and replaced: stream ids are times, so fills fenced on
   * the old log still find what is logged after.
   */
  private async log(json: string): Promise<void> {
    const { client, writeTimeoutMs } = this.redis
    const key = logKey(this.ns)
    const append = () => this.redis.call(() => client.xadd(key, 'MAXLEN', '~', LOG_LENGTH, '*', 's', json), writeTimeoutMs)
    try {
      await append()
    } catch (err) {
      if (!isWrongType(err)) throw err
      this.redis.foreignValue(`${key} is not a stream`)
      await this.redis.call(() => client.unlink(key), writeTimeoutMs)
      await append()
    }
  }

  private get ns(): string {
    return this.redis.namespace()
  }

  /** Sweeps every index set `sel` names; answers whether one of them was not a set. */
  private async sweep(sel: NormalizedSelectors, removed: Removed): Promise<boolean> {
    const ns = this.ns
    const jobs: { index: string; select: (url: string) => boolean; tag?: string }[] = []
    for (const path of sel.paths) jobs.push({ index: indexKey(ns, 'p', path), select: () => true })
    for (const url of sel.urls) jobs.push({ index: indexKey(ns, 'p', pathOf(url)), select: (u) => u === url })
    for (const tag of sel.tags) jobs.push({ index: indexKey(ns, 't', tag), select: () => true, tag })
    for (const prefix of sel.prefixes) {
      const dirs = dirsOf(prefix.endsWith('/') ? `${prefix}x` : prefix)
      const dir = dirs[dirs.length - 1] ?? '/'
      jobs.push({ index: indexKey(ns, 'd', dir), select: (url) => pathOf(url).startsWith(prefix) })
    }
    const unlinked = new Map<string, Promise<number>>()
    let foreign = false
    let at = 0
    const worker = async (): Promise<void> => {
      while (at < jobs.length) {
        const job = jobs[at++] as (typeof jobs)[number]
        if (!(await this.sweepIndex(job.index, job.select, job.tag, removed, unlinked, sel.soft === true))) foreign = true
      }
    }
    await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, jobs.length) }, worker))
    return foreign
  }

  /**
   * Walks one index set in SSCAN steps, unlinking the entries `select` picks and dropping their
   * members. Answers false when the key is not a set (it is deleted; the caller widens the sweep).
   */
  private async sweepIndex(
    index: string,
    select: (url: string) => boolean,
    tag: string | undefined,
    removed: Removed,
    unlinked: Map<string, Promise<number>>,
    soft: boolean,
  ): Promise<boolean> {
    const { client, writeTimeoutMs } = this.redis
    // The index's own namespace (`<ns>:v1:i:<kind>:<name>`): a member naming a key outside it, or
    // a key that is not an entry, was planted; it is dropped from the index, never unlinked.
    const ns = index.slice(0, index.indexOf(':v1:i:'))
    let cursor = '0'
    do {
      let step: [string, string[]]
      try {
        step = await this.redis.call(() => client.sscan(index, cursor, 'COUNT', SCAN_COUNT), writeTimeoutMs)
      } catch (err) {
        if (!isWrongType(err)) throw err
        this.redis.foreignValue(`${index} is not a set`)
        await this.redis.call(() => client.unlink(index), writeTimeoutMs)
        return false
      }
      const [next, members] = step
      cursor = next
      const chosen: string[] = []
      const waits: Promise<void>[] = []
      for (const m of members) {
        const space = m.indexOf(' ')
        if (space <= 0) continue
        const key = m.slice(0, space)
        const url = m.slice(space + 1)
        if (!key.startsWith(`${ns}:v1:`) || !isEntryKey(ns, key)) {
          this.redis.foreignValue(`${index} names ${key.slice(0, 200)}, not an entry of its namespace`)
          chosen.push(m)
          continue
        }
        if (!select(url)) continue
        chosen.push(m)
        // Each entry is unlinked (or, for a soft purge, made stale) once per run, whichever index finds it first.
        let gone = unlinked.get(key)
        if (gone === undefined) {
          gone = this.redis.call(() => (soft ? (client.eval(SOFTEN_SCRIPT, 1, key) as Promise<number>) : client.unlink(key)), writeTimeoutMs)
          unlinked.set(key, gone)
        }
        waits.push(gone.then((n) => (n > 0 ? removed.add(key, url, tag) : undefined)))
      }
      await Promise.all(waits)
      // A softened entry stays, and stays indexed: a removal later still finds it.
      if (chosen.length > 0 && !soft) await this.redis.call(() => client.srem(index, ...chosen), writeTimeoutMs)
    } while (cursor !== '0')
    return true
  }

  /**
   * Removes every key of the namespace but the invalidation log, SCANning in bounded steps (every
   * master of a Cluster). Answers how many entries went (index sets and locks are not counted).
   */
  async flush(): Promise<number> {
    const { client, writeTimeoutMs } = this.redis
    const ns = this.ns
    const options = client.options as { keyPrefix?: string } | undefined
    const keyPrefix = options !== undefined && 'keyPrefix' in options ? String(options.keyPrefix ?? '') : ''
    const log = logKey(ns)
    const nodes: Redis[] = isCluster(client) ? client.nodes('master') : [client]
    let entries = 0
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await this.redis.call(() => node.scan(cursor, 'MATCH', `${keyPrefix}${ns}:v1:*`, 'COUNT', SCAN_COUNT * 5), writeTimeoutMs)
        cursor = next
        const own = keys.map((k) => k.slice(keyPrefix.length)).filter((k) => k !== log)
        if (own.length === 0) continue
        const counts = await this.redis.call(() => Promise.all(own.map((k) => client.unlink(k))), writeTimeoutMs)
        own.forEach((k, i) => {
          if ((counts[i] ?? 0) > 0 && isEntryKey(ns, k)) entries++
        })
      } while (cursor !== '0')
    }
    return entries
  }
}

/** The log of invalidations: one stream per namespace. */
export function logKey(ns: string): string {
  return `${ns}:v1:log`
}

/** The index sets an entry is listed in, for invalidation by path, prefix and tag. */
export function indexKeysOf(ns: string, path: string, tags: readonly string[]): string[] {
  const keys = [indexKey(ns, 'p', path), ...dirsOf(path).map((d) => indexKey(ns, 'd', d))]
  for (const t of tags) keys.push(indexKey(ns, 't', t))
  return keys
}

/** `/a/b/c` → `['/', '/a/', '/a/b/']`: the directories a prefix invalidation looks in. */
export function dirsOf(path: string): string[] {
  const dirs: string[] = []
  for (let i = path.indexOf('/'); i !== -1 && dirs.length < MAX_DIR_DEPTH; i = path.indexOf('/', i + 1)) {
    dirs.push(path.slice(0, i + 1))
  }
  return dirs
}

function indexKey(ns: string, kind: 't' | 'p' | 'd', name: string): string {
  const n = name.length > MAX_INDEX_NAME ? `#${createHash('sha256').update(name).digest('base64url')}` : name
  return `${ns}:v1:i:${kind}:${n}`
}

/** Entries are `<ns>:v1:<hash>` and variants `<ns>:v1:<hash>:<hash>`; not indexes, locks, the log or health keys. */
function isEntryKey(ns: string, key: string): boolean {
  const rest = key.slice(ns.length + 4)
  return !rest.startsWith('i:') && !rest.startsWith('h:') && !rest.endsWith(':lock') && rest !== 'log'
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function isCluster(c: Redis | Cluster): c is Cluster {
  return (c as { isCluster?: boolean }).isCluster === true
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE')
}
