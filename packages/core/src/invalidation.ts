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
}

/** Selectors after validation and URL normalisation. */
export interface NormalizedSelectors {
  readonly paths: ReadonlySet<string>
  readonly urls: ReadonlySet<string>
  readonly tags: ReadonlySet<string>
  readonly prefixes: readonly string[]
}

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
    if (k !== 'keys' && k !== 'tags' && k !== 'prefixes') throw new CallbackError(`unknown invalidate selector ${k}`)
  }
  const paths = new Set<string>()
  const urls = new Set<string>()
  for (const k of strings(sel.keys, 'keys')) {
    const { path, query } = splitUrl(k)
    if (k.includes('?')) {
      const params = canonicalQuery(query)
      urls.add(params.length === 0 ? path : `${path}?${serializeQuery(params)}`)
    } else paths.add(path)
  }
  return {
    paths,
    urls,
    tags: new Set(strings(sel.tags, 'tags')),
    prefixes: strings(sel.prefixes, 'prefixes').map((p) => splitUrl(p).path),
  }
}

export function matchesSelectors(sel: NormalizedSelectors, it: Invalidatable): boolean {
  if (sel.paths.has(it.path) || sel.urls.has(it.url)) return true
  for (const t of it.tags) if (sel.tags.has(t)) return true
  for (const p of sel.prefixes) if (it.path.startsWith(p)) return true
  return false
}

export function isEmpty(sel: NormalizedSelectors): boolean {
  return sel.paths.size === 0 && sel.urls.size === 0 && sel.tags.size === 0 && sel.prefixes.length === 0
}

/** Selectors as JSON, for messages between instances and the invalidation log in Redis. */
export function selectorsToJson(sel: NormalizedSelectors, extra: Record<string, string> = {}): string {
  return JSON.stringify({ ...extra, paths: [...sel.paths], urls: [...sel.urls], tags: [...sel.tags], prefixes: [...sel.prefixes] })
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
  const [paths, urls, tags, prefixes] = lists as string[][]
  return { paths: new Set(paths), urls: new Set(urls), tags: new Set(tags), prefixes: prefixes ?? [] }
}
