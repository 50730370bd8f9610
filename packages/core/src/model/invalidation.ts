import { CallbackError } from './errors.js'
import { canonicalQuery, serializeQuery, splitUrl } from './key.js'

/**
 * What to invalidate. `keys` are request paths: `/products/42` drops every entry for that path
 * (all hosts, query strings and variants); `/products?page=2` drops only that query. `prefixes`
 * match the start of the path. `tags` match the tags entries were stored with.
 */
export interface InvalidateSelectors {
  keys?: readonly string[]
  tags?: readonly string[]
  prefixes?: readonly string[]
  /**
   * Soft purge: mark the entries stale instead of removing them (on every instance and in Redis),
   * so that requests within their stale window are answered from them while one refreshes them
   * (`staleWhileRevalidate`), and an origin failure can still be answered (`staleIfError`). An
   * entry without a stale window is then simply expired (revalidated with its validator if it has
   * one). Under overload, or merged with removals, it may become a removal: coarser, never lost.
   * @default false
   */
  soft?: boolean
}

/** Selectors after validation and URL normalisation. */
export interface NormalizedSelectors {
  readonly paths: ReadonlySet<string>
  readonly urls: ReadonlySet<string>
  readonly tags: ReadonlySet<string>
  readonly prefixes: readonly string[]
  /** Every entry of the namespace (`clear()`, and what an overloaded invalidation degrades to). */
  readonly all?: true
  /** Mark stale instead of removing (never with `all`). */
  readonly soft?: true
}

const NONE: ReadonlySet<string> = new Set()
/** Selects every entry. */
export const ALL: NormalizedSelectors = Object.freeze({ paths: NONE, urls: NONE, tags: NONE, prefixes: [], all: true })

/** What an entry or an in-flight fill is identified by for invalidation. */
export interface Invalidatable {
  readonly path: string
  readonly url: string
  readonly tags: readonly string[]
}

function strings(v: unknown, name: string): readonly string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new CallbackError(`expected invalidate ${name} to be an array of strings`)
  }
  return v
}

/** Validates selectors; keys and prefixes are normalised like request URLs so they match keys. */
export function normalizeSelectors(sel: InvalidateSelectors): NormalizedSelectors {
  if (typeof sel !== 'object' || sel === null || typeof (sel as { then?: unknown }).then === 'function') {
    // A promise here is an async selector function: it would otherwise select nothing, silently.
    throw new CallbackError('expected invalidate selectors to be an object of { keys, tags, prefixes }, not a promise or a primitive')
  }
  for (const k of Object.keys(sel)) {
    if (k !== 'keys' && k !== 'tags' && k !== 'prefixes' && k !== 'soft') throw new CallbackError(`unknown invalidate selector ${k}`)
  }
  const paths = new Set<string>()
  const urls = new Set<string>()
  for (const k of strings(sel.keys, 'keys')) {
    if (!k.startsWith('/')) throw new CallbackError(`expected invalidate keys to be request paths starting with '/', got '${k}'`)
    const { path, query } = splitUrl(k)
    if (k.includes('?')) {
      const params = canonicalQuery(query)
      urls.add(params.length === 0 ? path : `${path}?${serializeQuery(params)}`)
    } else paths.add(path)
  }
  if (sel.soft !== undefined && typeof sel.soft !== 'boolean') throw new CallbackError('expected invalidate soft to be true or false')
  return {
    ...(sel.soft === true ? { soft: true as const } : {}),
    paths,
    urls,
    tags: new Set(strings(sel.tags, 'tags')),
    prefixes: strings(sel.prefixes, 'prefixes').map((p) => {
      if (!p.startsWith('/')) throw new CallbackError(`expected invalidate prefixes to be path prefixes starting with '/', got '${p}'`)
      return splitUrl(p).path
    }),
  }
}

export function matchesSelectors(sel: NormalizedSelectors, it: Invalidatable): boolean {
  if (sel.all === true || sel.paths.has(it.path) || sel.urls.has(it.url)) return true
  for (const t of it.tags) if (sel.tags.has(t)) return true
  for (const p of sel.prefixes) if (it.path.startsWith(p)) return true
  return false
}

export function isEmpty(sel: NormalizedSelectors): boolean {
  return sel.all !== true && sel.paths.size === 0 && sel.urls.size === 0 && sel.tags.size === 0 && sel.prefixes.length === 0
}

/** Selectors as JSON, for messages between instances and the invalidation log in Redis. */
export function selectorsToJson(sel: NormalizedSelectors, extra: Record<string, string> = {}): string {
  if (sel.all === true) return JSON.stringify({ ...extra, all: true, paths: [], urls: [], tags: [], prefixes: [] })
  return JSON.stringify({ ...extra, ...(sel.soft === true ? { soft: true } : {}), paths: [...sel.paths], urls: [...sel.urls], tags: [...sel.tags], prefixes: [...sel.prefixes] })
}

/** How many names selectors hold (paths, urls, tags and prefixes). */
export function selectorCount(sel: NormalizedSelectors): number {
  return sel.paths.size + sel.urls.size + sel.tags.size + sel.prefixes.length
}

/**
 * Selectors that select what any of `list` selects. Past `maxNames` names the union is `ALL`:
 * the coarser invalidation an overload degrades to, which keeps no more than it can hold and
 * drops nothing.
 */
export function mergeSelectors(list: readonly NormalizedSelectors[], maxNames: number): NormalizedSelectors {
  if (list.length === 1) return selectorCount(list[0] as NormalizedSelectors) > maxNames ? ALL : (list[0] as NormalizedSelectors)
  const paths = new Set<string>()
  const urls = new Set<string>()
  const tags = new Set<string>()
  const prefixes = new Set<string>()
  for (const sel of list) {
    if (sel.all === true) return ALL
    for (const p of sel.paths) paths.add(p)
    for (const u of sel.urls) urls.add(u)
    for (const t of sel.tags) tags.add(t)
    for (const p of sel.prefixes) prefixes.add(p)
    if (paths.size + urls.size + tags.size + prefixes.size > maxNames) return ALL
  }
  // Soft only if every one is: a removal merged with a soft purge is a removal (coarser).
  return { ...(list.every((s) => s.soft === true) ? { soft: true as const } : {}), paths, urls, tags, prefixes: [...prefixes] }
}

/**
 * Splits selectors into pieces whose JSON stays near `maxChars`, so that each fits one message
 * between instances and one entry of the invalidation log. A single name longer than that is a
 * piece of its own.
 */
export function chunkSelectors(sel: NormalizedSelectors, maxChars: number): NormalizedSelectors[] {
  if (sel.all === true) return [ALL]
  const out: NormalizedSelectors[] = []
  const soft = sel.soft === true ? { soft: true as const } : {}
  let cur = { ...soft, paths: new Set<string>(), urls: new Set<string>(), tags: new Set<string>(), prefixes: [] as string[] }
  let chars = 0
  const push = (kind: 'paths' | 'urls' | 'tags' | 'prefixes', name: string): void => {
    const cost = JSON.stringify(name).length + 1
    if (chars > 0 && chars + cost > maxChars) {
      out.push(cur)
      cur = { ...soft, paths: new Set(), urls: new Set(), tags: new Set(), prefixes: [] }
      chars = 0
    }
    if (kind === 'prefixes') cur.prefixes.push(name)
    else cur[kind].add(name)
    chars += cost
  }
  for (const p of sel.paths) push('paths', p)
  for (const u of sel.urls) push('urls', u)
  for (const t of sel.tags) push('tags', t)
  for (const p of sel.prefixes) push('prefixes', p)
  if (chars > 0) out.push(cur)
  return out
}

/**
 * Reads selectors written by `selectorsToJson` from untrusted bytes: undefined for anything
 * malformed. `extra` receives the other string fields (such as a sender id).
 */
export function selectorsFromJson(text: string, extra?: Record<string, unknown>): NormalizedSelectors | undefined {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return undefined
  const o = m as Record<string, unknown>
  const lists = [o.paths, o.urls, o.tags, o.prefixes]
  if (!lists.every((l) => Array.isArray(l) && l.every((s) => typeof s === 'string'))) return undefined
  if (extra !== undefined) for (const k of Object.keys(o)) if (typeof o[k] === 'string') extra[k] = o[k]
  if (o.all !== undefined && o.all !== true) return undefined
  if (o.all === true) return ALL
  if (o.soft !== undefined && o.soft !== true) return undefined
  const [paths, urls, tags, prefixes] = lists as string[][]
  return { ...(o.soft === true ? { soft: true as const } : {}), paths: new Set(paths), urls: new Set(urls), tags: new Set(tags), prefixes: prefixes ?? [] }
}
