import type { Cache, InvalidateSelectors, InvalidateSpec, WarmOptions, WarmReport, WarmTarget } from '@corral/core'

/**
 * A framework-neutral description of an app, which each adapter factory turns into a real
 * Express or Fastify app listening on 127.0.0.1. The suite is written once against this shape
 * (the @fastify/etag `generic.js` / `@keyv/test-suite` pattern).
 */

/** What a handler sees of its request, the same in every framework. */
export interface OriginRequest {
  /** 1-based count of origin calls on this route (method and path), including this one. */
  readonly call: number
  readonly method: string
  /** Path and query as the client sent them. */
  readonly url: string
  /** The framework's idea of the host (follows X-Forwarded-Host when the app trusts proxies). */
  readonly hostname: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly params: Readonly<Record<string, unknown>>
  readonly query: URLSearchParams
  /** The query as the framework's own parser made it (Express 4: qs, `extended`). */
  readonly parsedQuery: unknown
  /** The request body as the app's JSON parser made it (see `AppSpec.parseJson`), else undefined. */
  readonly body: unknown
}

/**
 * A response body: a string, a Buffer, a JSON value, or chunks streamed one after the other
 * with `intervalMs` between them (Express: `res.write` per chunk; Fastify: a Readable).
 */
export type BodySpec =
  | string
  | Buffer
  | { readonly json: unknown }
  | StreamBody

/** Chunks written one after the other; with `failAtEnd` the origin errors instead of ending. */
export interface StreamBody {
  readonly stream: readonly (string | Buffer)[]
  readonly intervalMs?: number
  readonly failAtEnd?: boolean
  /** Awaited before each chunk after the first (and before the end): a test's signal to go on. */
  readonly before?: (index: number) => Promise<void> | void
}

export interface Reply {
  /** @default 200 */
  readonly status?: number
  readonly headers?: Readonly<Record<string, string | readonly string[]>>
  /** Omitted: an empty body. */
  readonly body?: BodySpec
  /**
   * Express: hand the headers straight to Node's `res.writeHead(status, headers)`, as an object or
   * as a flat `[name, value, ...]` array, instead of `res.set()`. Fastify has a single way to set
   * headers and ignores this.
   */
  readonly writeHead?: 'object' | 'flat'
  /** Sent first as a 103 Early Hints interim response (Node's `writeEarlyHints`), e.g. `{ link: '</a.css>; rel=preload' }`. */
  readonly earlyHints?: Readonly<Record<string, string | readonly string[]>>
}

/** May be async (to delay) and may throw (the framework's error handler answers 500). */
export type Handler = (req: OriginRequest) => Reply | Promise<Reply>

/**
 * Route cache options, handed to the adapter untouched: `corral(cache, options)` on an Express
 * route, `config.cache` on a Fastify route. Callbacks get the framework's request; scenarios use
 * only what both share (`req.params`, `req.headers`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RouteCacheOptions = Record<string, any>

export interface RouteSpec {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE'
  /** `:name` parameters; a trailing `*` is a wildcard (mapped to `*splat` for Express 5). */
  readonly path: string
  /** `false` turns caching off for the route (Fastify `config.cache: false`). */
  readonly cache?: RouteCacheOptions | false
  /** Route-level invalidation: Express `invalidate(cache, spec)`, Fastify `config.invalidate`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly invalidate?: InvalidateSpec<any>
  readonly handler: Handler
}

export interface AppSpec {
  readonly cache: Cache
  /** App-wide route defaults: `corral(cache, defaults)` / `register(plugin, { cache, ...defaults })`. */
  readonly defaults?: RouteCacheOptions
  /** Express `trust proxy`, Fastify `trustProxy`. */
  readonly trustProxy?: boolean
  /**
   * Parse JSON request bodies of every method, GET too, as apps with `express.json()` do (Fastify:
   * a JSON parser that also takes GET bodies).
   */
  readonly parseJson?: boolean
  readonly routes: readonly RouteSpec[]
}

export interface AppHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Origin (handler) calls: of one route (`'GET /p/:id'`), of a path (any method), or of every route. */
  calls(route?: string): number
  /** Fastify's `app.corral.invalidate`; undefined for adapters without an app-level helper. */
  readonly invalidate?: (selectors: InvalidateSelectors) => Promise<number>
  /** The adapter's warm(): Express `warm(app, cache, ...)`, Fastify `app.corral.warm(...)`, node `warm(handler, cache, ...)` per route. */
  warm(targets: readonly WarmTarget[], options?: WarmOptions): Promise<WarmReport>
  close(): Promise<void>
}

export interface AdapterFactory {
  /** e.g. `express4 (app.use + route)` */
  readonly name: string
  createApp(spec: AppSpec): Promise<AppHandle>
}

/** Counts origin calls per route (method and path). */
export class OriginCounter {
  private readonly byRoute = new Map<string, number>()
  private total = 0

  /** Counts a call of `METHOD path` and returns its 1-based number on that route. */
  next(method: string, path: string): number {
    this.total++
    const route = `${method} ${path}`
    const n = (this.byRoute.get(route) ?? 0) + 1
    this.byRoute.set(route, n)
    return n
  }

  /** Every call; the calls of one route (`'GET /p/:id'`); or of every method on a path (`'/p/:id'`). */
  calls(route?: string): number {
    if (route === undefined) return this.total
    if (route.includes(' ')) return this.byRoute.get(route) ?? 0
    let n = 0
    for (const [k, v] of this.byRoute) if (k.slice(k.indexOf(' ') + 1) === route) n += v
    return n
  }
}

export function isJsonBody(b: BodySpec): b is { readonly json: unknown } {
  return typeof b === 'object' && !Buffer.isBuffer(b) && 'json' in b
}

export function isStreamBody(b: BodySpec): b is StreamBody {
  return typeof b === 'object' && !Buffer.isBuffer(b) && 'stream' in b
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A promise a test resolves by hand: the explicit signal that orders two sides of a race. */
export interface Signal<T = void> {
  readonly promise: Promise<T>
  readonly resolve: (value: T) => void
  readonly done: boolean
}

export function signal<T = void>(): Signal<T> {
  let resolve!: (value: T) => void
  let done = false
  const promise = new Promise<T>((r) => (resolve = r))
  return {
    promise,
    resolve: (v) => {
      done = true
      resolve(v)
    },
    get done() {
      return done
    },
  }
}

const PENDING = Symbol('pending')

export interface UntilOptions {
  /** Pause between two attempts, in ms (longer for a check that costs something, such as a SCAN). @default 5 */
  readonly every?: number
}

/**
 * The one way tests wait for a state: calls `check` every few ms until it returns true, and
 * resolves with the ms that took. An attempt that throws, or is still pending at the deadline (a
 * command on a client that is reconnecting), counts as "not yet". After `within` ms (derive it from
 * a configured deadline) it fails, naming `what`, the time waited and how the last attempt ended.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  within: number,
  what: string,
  { every = 5 }: UntilOptions = {},
): Promise<number> {
  const started = performance.now()
  let last = 'none finished'
  for (;;) {
    const remaining = started + within - performance.now()
    if (remaining <= 0) throw new Error(`timed out after ${Math.round(performance.now() - started)} ms waiting for: ${what} (last attempt: ${last})`)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<typeof PENDING>((resolve) => {
      timer = setTimeout(() => resolve(PENDING), remaining)
    })
    try {
      const outcome = await Promise.race([Promise.resolve().then(check), late])
      if (outcome === PENDING) last = 'still pending at the deadline'
      else if (outcome) return performance.now() - started
      else last = 'returned false'
    } catch (err) {
      last = `threw ${err instanceof Error ? err.message : String(err)}`
    } finally {
      clearTimeout(timer)
    }
    await sleep(every)
  }
}

export function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?')
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
}
