import { CallbackError, ConfigError, type Cache, type InvalidateSelectors } from '@corral/core'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { assertCache } from './middleware.js'

/** What to invalidate after a successful mutation: selectors, or a function of the request. */
export type InvalidateSpec = InvalidateSelectors | ((req: Request) => InvalidateSelectors)

/**
 * Invalidation for mutation routes: after the handler's response is a 2xx, drops the selected
 * entries before the response completes, so a client that reads after its write sees fresh data.
 * A 4xx/5xx leaves the cache alone. Put it before the handler:
 * `app.put('/products/:id', invalidate(cache, (req) => ({ tags: [`product:${req.params.id}`] })), handler)`.
 */
export function invalidate(cache: Cache, spec: InvalidateSpec): RequestHandler {
  assertCache(cache, 'invalidate')
  if (typeof spec !== 'function' && (typeof spec !== 'object' || spec === null)) {
    throw new ConfigError('expected the second argument of invalidate() to be selectors or a function of the request')
  }
  return function corralInvalidate(req: Request, res: Response, next: NextFunction): void {
    const end = res.end as (this: Response, ...args: unknown[]) => Response
    res.end = function (this: Response, ...args: unknown[]) {
      res.end = end as Response['end']
      if (res.statusCode < 200 || res.statusCode > 299) return end.apply(this, args)
      let selectors: InvalidateSelectors
      try {
        selectors = typeof spec === 'function' ? spec(req) : spec
      } catch (err) {
        cache.report(new CallbackError('an invalidate() selector function threw; nothing was invalidated', err))
        return end.apply(this, args)
      }
      cache
        .invalidate(selectors)
        .catch((err: unknown) => cache.report(new CallbackError('invalidation failed', err)))
        .finally(() => end.apply(this, args))
      return this
    } as Response['end']
    next()
  }
}
