import { dirsOf, indexKeysOf, logKey } from './redis-invalidation.js'

/**
 * Names in the layout RedisStore writes (see redis.ts), for tools that read a namespace from
 * outside an app: the `corral` CLI. The layout is decided in redis.ts, redis-invalidation.ts and
 * redis-bus.ts; this file only names it, through their own helpers where they export one.
 */

/** The namespace `createCache` uses when none is given. */
export const DEFAULT_NAMESPACE = 'corral'
/** What `createCache` accepts as a namespace. */
export const NAMESPACE_PATTERN = /^[\w.-]{1,64}$/

/** What a key under `<ns>:v1:` holds, told by its name alone. */
export type RedisKeyKind =
  /** `<ns>:v1:<hash>`: a response, or a Vary marker that leads to variants. */
  | 'entry'
  /** `<ns>:v1:<hash>:<hash>`: one variant of a varied response. */
  | 'variant'
  | 'tag-index'
  | 'path-index'
  | 'dir-index'
  /** `<ns>:v1:<hash>:lock`: a fill in progress somewhere in the fleet. */
  | 'lock'
  /** `<ns>:v1:log`: the stream of recent invalidations. */
  | 'log'
  /** `<ns>:v1:h:<random>`: a health check's round trip, gone within 10 s. */
  | 'health'
  /** Under the namespace but none of the above (not written by Corral). */
  | 'other'

const HASH = /^[A-Za-z0-9_-]{43}$/

/** The kind of `key`, or undefined when it is not under `<ns>:v1:`. */
export function classifyKey(ns: string, key: string): RedisKeyKind | undefined {
  const head = `${ns}:v1:`
  if (!key.startsWith(head)) return undefined
  const rest = key.slice(head.length)
  if (rest === logKey(ns).slice(head.length)) return 'log'
  if (rest.startsWith('i:t:')) return 'tag-index'
  if (rest.startsWith('i:p:')) return 'path-index'
  if (rest.startsWith('i:d:')) return 'dir-index'
  if (rest.startsWith('h:')) return 'health'
  const parts = rest.split(':')
  if (parts.length === 1 && HASH.test(rest)) return 'entry'
  if (parts.length === 2 && HASH.test(parts[0] as string)) {
    if (parts[1] === 'lock') return 'lock'
    if (HASH.test(parts[1] as string)) return 'variant'
  }
  return 'other'
}

/** The index set of entries stored with `tag` (what `invalidate({ tags })` sweeps). */
export function tagIndexKey(ns: string, tag: string): string {
  return indexKeysOf(ns, '/', [tag]).at(-1) as string
}

/** The index set of the entries of one request path (`invalidate({ keys })` sweeps it). */
export function pathIndexKey(ns: string, path: string): string {
  return indexKeysOf(ns, path, [])[0] as string
}

/**
 * The index set `invalidate({ prefixes: [prefix] })` reads: that of the prefix's deepest directory
 * (`/products/4` reads `/products/`'s); its members are then kept when their path starts with the
 * prefix.
 */
export function prefixIndexKey(ns: string, prefix: string): string {
  const dirs = dirsOf(prefix.endsWith('/') ? `${prefix}x` : prefix)
  const dir = dirs[dirs.length - 1] ?? '/'
  // A directory's own index is the last of those its path is listed in.
  return indexKeysOf(ns, dir, []).at(-1) as string
}

/** Index set members are `<entry key> <url>`; undefined for a member of another shape. */
export function parseIndexMember(member: string): { key: string; url: string } | undefined {
  const space = member.indexOf(' ')
  if (space <= 0) return undefined
  return { key: member.slice(0, space), url: member.slice(space + 1) }
}

/** The pub/sub channel every instance of the namespace hears invalidations on (redis-bus.ts). */
export function busChannel(ns: string): string {
  return `${ns}:v1:bus`
}

export { logKey }
