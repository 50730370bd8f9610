import { REFRESH_HEADER, type Refreshes, type Replay } from './fill/refresh.js'
import { describeValue } from './model/duration.js'
import { ConfigError } from './model/errors.js'
import { withDeadline } from './model/maybe-promise.js'

/** A URL to warm: a path (`/products?page=1`), an absolute `http(s)` URL (its host is sent), or a request. */
export type WarmTarget = string | { readonly url: string; readonly headers?: Readonly<Record<string, string>> }

export interface WarmOptions {
  /**
   * Requests run through the app at once.
   * @default 4
   */
  concurrency?: number
  /**
   * Headers every warming request carries, before its own: those the key depends on, as clients
   * send them (`host`, and `x-forwarded-proto` behind a proxy), else the entries are keyed for
   * another host than the one clients ask for.
   * @default {}
   */
  headers?: Readonly<Record<string, string>>
}

/** What `warm()` did with each URL. Never rejects for one bad URL. */
export interface WarmReport {
  /** Stored (or found stored by another request meanwhile). */
  readonly stored: string[]
  /** Answered, not stored: why (a NotStoredReason, or `not-cached` when the request did not reach the cache). */
  readonly notStored: { readonly url: string; readonly reason: string; readonly status?: number }[]
  /** Could not be run: a bad URL, or the app failed. */
  readonly failed: { readonly url: string; readonly error: string }[]
}

const MAX_CONCURRENCY = 64

export function warmOptions(options: WarmOptions | undefined): { concurrency: number; headers: Readonly<Record<string, string>> } {
  if (options === undefined) return { concurrency: 4, headers: {} }
  if (typeof options !== 'object' || options === null) throw new ConfigError(`expected warm options to be an object, got ${describeValue(options)}`)
  const c = options.concurrency ?? 4
  if (!Number.isInteger(c) || c < 1 || c > MAX_CONCURRENCY) throw new ConfigError(`expected options.concurrency to be an integer from 1 to ${MAX_CONCURRENCY}, got ${describeValue(c)}`)
  const headers = options.headers ?? {}
  if (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string')) {
    throw new ConfigError(`expected options.headers to be an object of strings, got ${describeValue(headers)}`)
  }
  return { concurrency: c, headers }
}

/** `target` as a path and its headers, or the reason it cannot be requested. */
function requestOf(target: unknown, base: Readonly<Record<string, string>>): { url: string; headers: Record<string, string> } | string {
  const spec = typeof target === 'string' ? { url: target, headers: undefined } : target
  if (typeof spec !== 'object' || spec === null || typeof (spec as { url?: unknown }).url !== 'string') return `expected a URL or { url, headers }, got ${describeValue(target)}`
  const { url, headers } = spec as { url: string; headers?: unknown }
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string'))) {
    return `expected headers to be an object of strings, got ${describeValue(headers)}`
  }
  // The options' headers, then an absolute URL's host, then the target's own headers.
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) out[k.toLowerCase()] = v
  let path = url
  if (!url.startsWith('/')) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return `not a path or an absolute URL: ${url.slice(0, 200)}`
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `not an http(s) URL: ${url.slice(0, 200)}`
    out.host = parsed.host
    path = parsed.pathname + parsed.search
  }
  for (const [k, v] of Object.entries((headers as Record<string, string> | undefined) ?? {})) out[k.toLowerCase()] = v
  return { url: path, headers: out }
}

/**
 * Fills entries by running each target through the app (`replay`), `concurrency` at a time, as
 * replays marked like background refreshes: an entry already stored is fetched again. Resolves to
 * what became of each; one bad URL, failing handler or handler that does not answer within
 * `timeoutMs` is reported in it, never thrown.
 */
export async function warm(
  refreshes: Refreshes,
  replay: Replay,
  targets: Iterable<WarmTarget>,
  options: { concurrency: number; headers: Readonly<Record<string, string>> },
  now: () => number,
  timeoutMs: number,
  counted: () => void,
): Promise<WarmReport> {
  const report: WarmReport = { stored: [], notStored: [], failed: [] }
  const queue: unknown[] = typeof targets === 'string' ? [targets] : [...targets]
  let next = 0
  const one = async (target: unknown): Promise<void> => {
    let label: string
    let request: ReturnType<typeof requestOf>
    try {
      label = typeof target === 'string' ? target : typeof (target as { url?: unknown } | null)?.url === 'string' ? (target as { url: string }).url : describeValue(target)
      request = requestOf(target, options.headers)
    } catch (err) {
      report.failed.push({ url: describeValue(target), error: err instanceof Error ? err.message : String(err) })
      return
    }
    if (typeof request === 'string') {
      report.failed.push({ url: label, error: request })
      return
    }
    const ticket = refreshes.issue(undefined, now(), false) as NonNullable<ReturnType<Refreshes['issue']>>
    try {
      const replayed = Promise.resolve().then(() =>
        replay({ method: 'GET', url: request.url, headers: { ...request.headers, [REFRESH_HEADER]: refreshes.mark(ticket) } }),
      )
      const res = await withDeadline(replayed, timeoutMs, ' (lockTimeout)')
      const status = statusOf(res)
      if (ticket.stored === true) {
        report.stored.push(label)
        counted()
      } else report.notStored.push({ url: label, reason: ticket.reason ?? 'not-cached', ...(status === undefined ? {} : { status }) })
    } catch (err) {
      // Given up (or failed): whatever the app still writes is not stored.
      ticket.fill?.abandon('aborted')
      report.failed.push({ url: label, error: err instanceof Error ? err.message : String(err) })
    } finally {
      refreshes.close(ticket)
    }
  }
  const worker = async (): Promise<void> => {
    while (next < queue.length) await one(queue[next++])
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency, queue.length) }, worker))
  return report
}

function statusOf(res: unknown): number | undefined {
  const code = typeof res === 'object' && res !== null ? (res as { statusCode?: unknown }).statusCode : undefined
  return typeof code === 'number' ? code : undefined
}
