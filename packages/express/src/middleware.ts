import type { IncomingMessage, ServerResponse } from 'node:http'
import { Cache, ConfigError, type RouteOptions } from '@corral/core'
import { isPromise, ResponseTap, tapServerResponse, writeHit, type Decision, type Fill, type RequestView, type ResolvedRoute } from '@corral/core/adapter'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { replayFor } from './replay.js'

/** What the first Corral middleware a request passes through left for the next one. */
interface RequestState {
  readonly tap: ResponseTap
  /** The fill the response feeds; a route's own middleware may take it over. */
  fill: Fill | null
}

const STATE = Symbol('corral.state')
type WithState = IncomingMessage & { [STATE]?: RequestState; route?: { path?: unknown }; originalUrl?: string; baseUrl?: string }

/** Route options for Express: callbacks receive the Express request (with `params` at route level). */
export type CorralExpressOptions = RouteOptions<Request>

export function assertCache(cache: unknown, fn: string): asserts cache is Cache {
  if (!Cache.isCache(cache)) throw new ConfigError(`expected the first argument of ${fn}() to be a cache from createCache()`)
}

/**
 * Response caching middleware. As `app.use(corral(cache, defaults?))` it applies to every route
 * below it; as `app.get(path, corral(cache, options), handler)` it applies `options` to that route
 * (over the app-wide defaults given to `createCache`). Both can be combined: a route whose options
 * change which requests may share an entry (its own `bypass` or `key`, query rule, credential
 * rules) keeps its entries apart (their key has the route's scope), so the app-wide middleware
 * never answers with them.
 */
export function corral(cache: Cache, options?: CorralExpressOptions | false): RequestHandler {
  assertCache(cache, 'corral')
  if (options === false) return optOut
  // Compile once, so bad options throw at start-up.
  const route: ResolvedRoute<Request> = cache.route(options, 'options.')

  return function corralMiddleware(req: Request, res: Response, next: NextFunction): void {
    const r = req as unknown as WithState
    const state = r[STATE]
    // One lookup app-wide; a route's own middleware (Express sets req.route there) looks again.
    if (state !== undefined && r.route === undefined) return next()
    // A route's own middleware knows its pattern: the route's name in events when it has none.
    const view: RequestView = r.route === undefined
      ? { method: req.method, url: req.originalUrl ?? req.url, headers: req.headers }
      : { method: req.method, url: req.originalUrl ?? req.url, headers: req.headers, route: `${r.baseUrl ?? ''}${String(r.route.path)}` }
    // handle() never throws or rejects: whatever fails is reported and answered with a bypass.
    const d = cache.handle(view, route, req, state === undefined ? undefined : state.fill, replayFor(req as unknown as Parameters<typeof replayFor>[0]))
    if (isPromise(d)) void d.then((d) => apply(cache, d, r, res, next))
    else apply(cache, d, r, res, next)
  }
}

/**
 * `corral(cache, false)` on a route: the cache stays out of it. What an app-wide lookup started
 * for the request is dropped (nothing is stored), and no status header is sent.
 */
function optOut(req: Request, _res: Response, next: NextFunction): void {
  const state = (req as unknown as WithState)[STATE]
  if (state !== undefined) {
    state.tap.retarget(null)
    state.fill = null
  }
  next()
}

/** Acts on a decision: write a hit, or tap the response (once per request) and go on to the origin. */
function apply(cache: Cache, d: Decision, req: WithState, res: Response, next: NextFunction): void {
  const state = req[STATE]
  if (d.type === 'hit') {
    // An app-wide lookup tapped this response; the route's hit now says what happened.
    if (state !== undefined) {
      state.tap.retarget(null)
      state.fill = null
    }
    writeHit(res as unknown as ServerResponse, d, cache.cacheStatusHeader)
    return
  }
  const fill = d.type === 'miss' ? d.fill : null
  if (state === undefined) {
    const tap = new ResponseTap(cache, d)
    tapServerResponse(res as unknown as ServerResponse, tap)
    req[STATE] = { tap, fill }
  } else {
    state.tap.retarget(d)
    state.fill = fill
  }
  next()
}
