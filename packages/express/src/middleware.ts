import type { IncomingMessage, ServerResponse } from 'node:http'
import { Cache, ConfigError, type RouteOptions } from '@corral/core'
import { ResponseTap, tapServerResponse, writeHit, type Decision, type Fill, type RequestView, type ResolvedRoute } from '@corral/core/adapter'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

/** What the first Corral middleware a request passes through left for the next one. */
interface RequestState {
  readonly tap: ResponseTap
  /** The fill the response feeds; a route's own middleware may take it over. */
  fill: Fill | null
}

const STATE = Symbol('corral.state')
type WithState = IncomingMessage & { [STATE]?: RequestState; route?: unknown; originalUrl?: string }

/** Route options for Express: callbacks receive the Express request (with `params` at route level). */
export type CorralExpressOptions = RouteOptions<Request>

export function assertCache(cache: unknown, fn: string): asserts cache is Cache {
  if (!Cache.isCache(cache)) throw new ConfigError(`expected the first argument of ${fn}() to be a cache from createCache()`)
}

/**
 * Response caching middleware. As `app.use(corral(cache, defaults?))` it applies to every route
 * below it; as `app.get(path, corral(cache, options), handler)` it applies `options` to that route
 * (over the app-wide defaults given to `createCache`). Both can be combined: entries stored under
 * route options are only ever answered by that route's middleware.
 */
export function corral(cache: Cache, options?: CorralExpressOptions): RequestHandler {
  assertCache(cache, 'corral')
  // Compile once, so bad options throw at start-up. The same middleware may be mounted app-wide
  // or on a route; which one applies is known per request (Express sets req.route in a route).
  const asRoute: ResolvedRoute<Request> = cache.route(options, 'options.', undefined, true)
  const asApp: ResolvedRoute<Request> = cache.route(options, 'options.', undefined, false)

  return function corralMiddleware(req: Request, res: Response, next: NextFunction): void {
    const r = req as unknown as WithState
    const routeLevel = r.route !== undefined
    const state = r[STATE]
    if (state !== undefined && !routeLevel) return next()
    const view: RequestView = { method: req.method, url: req.originalUrl ?? req.url, headers: req.headers }
    // handle() never throws or rejects: whatever fails is reported and answered with a bypass.
    const d = cache.handle(view, routeLevel ? asRoute : asApp, req, state?.fill ?? null)
    if (d instanceof Promise) void d.then((d) => apply(cache, d, r, res, next))
    else apply(cache, d, r, res, next)
  }
}

/** Acts on a decision: write a hit, or tap the response (once per request) and go on to the origin. */
function apply(cache: Cache, d: Decision, req: WithState, res: Response, next: NextFunction): void {
  const state = req[STATE]
  if (d.type === 'hit') {
    // An app-wide lookup tapped this response; the route's hit now says what happened.
    if (state !== undefined) {
      state.tap.retarget(null, null)
      state.fill = null
    }
    writeHit(res as unknown as ServerResponse, d, cache.cacheStatusHeader)
    return
  }
  // 'defer': the route's own middleware will answer and say what it did.
  if (d.type === 'defer') {
    if (state === undefined) start(cache, req, res, null, null)
    return next()
  }
  const fill = d.type === 'miss' ? d.fill : null
  const status = d.type === 'miss' ? 'MISS' : 'BYPASS'
  if (state === undefined) start(cache, req, res, fill, status)
  else {
    state.tap.retarget(fill, status)
    state.fill = fill
  }
  next()
}

function start(cache: Cache, req: WithState, res: Response, fill: Fill | null, status: 'MISS' | 'BYPASS' | null): void {
  const tap = new ResponseTap(cache, fill, status)
  tapServerResponse(res as unknown as ServerResponse, tap)
  req[STATE] = { tap, fill }
}
