import type { IncomingHttpHeaders } from 'node:http'
import type { QueryRule, RequestView } from '@corral/core/store'
import { UsageError } from './errors.js'

/** The request `inspect` computes a key for: what the app would have received. */
export interface Target {
  readonly view: RequestView
  readonly host: string
  /** Path and query as they would be on the request line. */
  readonly url: string
}

const ABSOLUTE = /^[a-z][a-z0-9+.-]*:\/\//i
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i

/**
 * The GET request for `arg` (`http://host/path?query`, or `/path?query` with a host), with the
 * headers given as `Name: value` lines. The Host is `--host`, else a `Host:` line, else the URL's
 * authority, exactly as a client sends it (with its port). The path and query are sent as a
 * browser (or `new URL()`) sends them: `/café` as `/caf%C3%A9`, spaces as `%20`, dot segments
 * resolved; the key then normalises them the way the app does.
 */
export function targetOf(arg: string | undefined, hostOption: string | undefined, headerLines: readonly string[]): Target {
  if (arg === undefined) throw new UsageError("inspect needs a URL: 'corral inspect http://host/path' (or a path with --host)", 'inspect')
  const headers = headersOf(headerLines)
  let authority: string | undefined
  let url: string
  if (ABSOLUTE.test(arg)) {
    const rest = arg.slice(arg.indexOf('://') + 3)
    const end = rest.search(/[/?#]/)
    authority = end === -1 ? rest : rest.slice(0, end)
    authority = authority.slice(authority.lastIndexOf('@') + 1)
    url = end === -1 ? '/' : rest.slice(end)
  } else if (arg.startsWith('/')) {
    url = arg
  } else {
    throw new UsageError(`expected the URL to be absolute (http://host/path) or a path starting with '/' (with --host), got '${arg}'`, 'inspect')
  }
  const hash = url.indexOf('#')
  if (hash !== -1) url = url.slice(0, hash)
  if (url.startsWith('?') || url === '') url = `/${url}`
  url = asSent(url)
  const host = hostOption ?? (typeof headers.host === 'string' ? headers.host : undefined) ?? authority
  if (host === undefined || host === '') {
    throw new UsageError(`inspect of the path '${arg}' needs --host (the Host the app receives), or give an absolute URL`, 'inspect')
  }
  headers.host = host
  return { view: { method: 'GET', url, headers }, host, url }
}

/**
 * A path and query (starting with '/') as a client puts them on the request line: what
 * `new URL()` makes of them (UTF-8 percent-encoding of non-ASCII characters, spaces and the other
 * characters the URL standard encodes; dot segments resolved; `\` read as `/`). Escapes already
 * there are kept.
 */
export function asSent(pathAndQuery: string): string {
  try {
    // Behind an authority of its own, so that a path starting with '//' stays a path.
    const u = new URL(`http://h${pathAndQuery}`)
    return `${u.pathname}${u.search}`
  } catch {
    return pathAndQuery
  }
}

/**
 * A path prefix (`--prefix`) as `asSent` encodes paths. A '?' or '#' in it is kept as written (a
 * prefix matches paths, which hold neither), and so is a last segment of '.' or '..' (`/a/.`
 * selects `/a/.well-known`; a client would have resolved it as a whole path).
 */
export function prefixAsSent(prefix: string): string {
  if (/[?#]/.test(prefix)) return prefix
  // A letter after it: a trailing '.' or '..' segment is not a dot segment then.
  const sent = asSent(`${prefix}x`)
  return sent.endsWith('x') ? sent.slice(0, -1) : prefix
}

/** `Name: value` lines as Node's `req.headers`: names lower-cased, repeated lines joined with ', '. */
export function headersOf(lines: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = colon === -1 ? '' : line.slice(0, colon).trim()
    if (!TOKEN.test(name)) throw new UsageError(`expected --headers to be 'Name: value', got '${line}'`, 'inspect')
    const lower = name.toLowerCase()
    const value = line.slice(colon + 1).trim()
    // Node keeps the first Host line and joins other repeated fields.
    if (Object.hasOwn(out, lower)) {
      if (lower !== 'host') out[lower] = `${out[lower]}, ${value}`
    } else out[lower] = value
  }
  return out
}

/** The app's query rule, from --query-include / --query-exclude / --ignore-query (default: every parameter counts). */
export function queryRuleOf(include: readonly string[], exclude: readonly string[], ignore: boolean): QueryRule | undefined {
  const given = [include.length > 0, exclude.length > 0, ignore].filter(Boolean).length
  if (given > 1) throw new UsageError('give at most one of --query-include, --query-exclude and --ignore-query (the app has one query rule)', 'inspect')
  if (ignore) return false
  if (include.length > 0) return { include }
  if (exclude.length > 0) return { exclude }
  return undefined
}
