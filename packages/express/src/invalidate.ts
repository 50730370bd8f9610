import type { ServerResponse } from 'node:http'
import type { Cache, InvalidateSpec } from '@corral/core'
import { invalidateBeforeEnd } from '@corral/core/adapter'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { assertCache } from './middleware.js'

export type { InvalidateSpec } from '@corral/core'

/**
 * Invalidation for mutation routes: after the handler's response is a 2xx, drops the selected
 * entries before the response completes, so a client that reads after its write sees fresh data
 * (with Redis: on every instance). A 4xx/5xx leaves the cache alone. Selectors are given as they
 * are (checked now) or by a function of the request, which may be async. Put it before the handler:
 * `app.put('/products/:id', invalidate(cache, (req) => ({ tags: [`product:${req.params.id}`] })), handler)`.
 * A selector function that fails, or an invalidation the store could not make, is reported
 * through the cache's `onError`; the response still goes out.
 */
export function invalidate(cache: Cache, spec: InvalidateSpec<Request>): RequestHandler {
  assertCache(cache, 'invalidate')
  const select = cache.mutation<Request>(spec, 'the second argument of invalidate()')
  return function corralInvalidate(req: Request, res: Response, next: NextFunction): void {
    invalidateBeforeEnd(res as unknown as ServerResponse, cache, select, req)
    next()
  }
}
