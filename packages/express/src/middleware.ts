import type { IncomingMessage, ServerResponse } from 'node:http'
import { Cache, ConfigError, type Decision, type RequestView, type ResolvedRoute, type RouteOptions } from '@corral/core'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { hookResponse, type RequestState } from './capture.js'

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

/** Acts on a decision: serve a hit, or hook the response (once per request) and go on to the origin. */
function apply(cache: Cache, d: Decision, req: WithState, res: Response, next: NextFunction): void {
  let state = req[STATE]
  if (d.type === 'hit') {
    if (state !== undefined) {
      // An app-wide pass hooked this response; the route's hit now says what happened.
      state.fill = null
      state.status = null
    }
    serve(res, d, cache.cacheStatusHeader)
    return
  }
  if (state === undefined) {
    state = req[STATE] = { fill: null, status: null }
    hookResponse(res as unknown as ServerResponse, cache, state)
  }
  state.fill = d.type === 'miss' ? d.fill : null
  // 'defer': the route's own middleware will answer and say what it did.
  state.status = d.type === 'miss' ? 'MISS' : d.type === 'bypass' ? 'BYPASS' : state.status
  next()
}

function serve(res: Response, d: Extract<Decision, { type: 'hit' }>, status: string): void {
  res.setHeader(status, 'HIT')
  res.setHeader('age', d.age)
  // writeHead merges these into the headers already set (CORS and security headers of earlier
  // middleware stay); stored values win.
  res.writeHead(d.status, d.headers as Record<string, string | string[]>)
  res.end(d.body)
}
