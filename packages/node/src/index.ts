import type { IncomingMessage, ServerResponse } from 'node:http'
import { Cache, ConfigError, type InvalidateSpec, type RouteOptions, type WarmOptions, type WarmReport, type WarmTarget } from '@corral/core'
import { isPromise, ResponseTap, invalidateBeforeEnd, serverListener, tapServerResponse, writeHit, type Replay } from '@corral/core/adapter'
import { inject } from 'light-my-request'

/** A plain `node:http` request handler. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => unknown

function assertCache(cache: unknown, fn: string): asserts cache is Cache {
  if (!Cache.isCache(cache)) throw new ConfigError(`expected the first argument of ${fn}() to be a cache from createCache()`)
}

/**
 * Caches what `handler` answers to GET and HEAD requests, under `options` (over the defaults
 * given to `createCache`): `http.createServer(cached(cache, handler, { ttl: '1m' }))`. A hit is
 * written without calling the handler; a miss calls it and stores its response. Route callbacks
 * (`tags`, `key`, `bypass`) receive the `IncomingMessage`.
 */
export function cached(cache: Cache, handler: Handler, options?: RouteOptions<IncomingMessage>): Handler {
  assertCache(cache, 'cached')
  if (typeof handler !== 'function') throw new ConfigError('expected the second argument of cached() to be a request handler')
  const route = cache.route<IncomingMessage>(options, 'options.')
  // Warming runs a request through this handler; a background refresh through the handler of the
  // server that received the request (routing included), with light-my-request.
  const replay = replayThrough(corralCached)
  replays.set(corralCached, replay)
  return corralCached
  function corralCached(req: IncomingMessage, res: ServerResponse): unknown {
    // handle() never throws or rejects: whatever fails is reported and answered with a bypass.
    const d = cache.handle({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, route, req, undefined, serverReplay(req) ?? replay)
    const act = (decision: Awaited<typeof d>): unknown => {
      if (decision.type === 'hit') return writeHit(res, decision, cache.cacheStatusHeader)
      tapServerResponse(res, new ResponseTap(cache, decision))
      return handler(req, res)
    }
    return isPromise(d) ? d.then(act) : act(d)
  }
}

const replays = new WeakMap<Handler, Replay>()
const throughs = new WeakMap<Handler, Replay>()

function replayThrough(handler: Handler): Replay {
  let replay = throughs.get(handler)
  if (replay === undefined) {
    replay = (request) => inject(handler, { method: request.method, url: request.url, headers: request.headers })
    throughs.set(handler, replay)
  }
  return replay
}

/** The handler of the server that received `req`, as a replay; undefined for a request from no server. */
function serverReplay(req: IncomingMessage): Replay | undefined {
  const listener = serverListener(req)
  return listener === undefined ? undefined : replayThrough(listener)
}

/**
 * Fills the cache by running each URL through a handler made by `cached()`:
 * `await warm(handler, cache, ['/', '/products'], { headers: { host: 'shop.example' } })`.
 * Resolves to a report of what was stored, what was not and why, and what failed.
 */
export function warm(handler: Handler, cache: Cache, targets: Iterable<WarmTarget>, options?: WarmOptions): Promise<WarmReport> {
  assertCache(cache, 'warm')
  const replay = replays.get(handler)
  if (replay === undefined) throw new ConfigError('expected the first argument of warm() to be a handler made by cached()')
  return cache.warm(replay, targets, options)
}

/**
 * For mutation handlers: after `handler` answers with a 2xx, drops what `spec` selects (selectors,
 * checked now, or a function of the request, possibly async) before the response completes.
 */
export function invalidating(cache: Cache, spec: InvalidateSpec<IncomingMessage>, handler: Handler): Handler {
  assertCache(cache, 'invalidating')
  const select = cache.mutation<IncomingMessage>(spec, 'the second argument of invalidating()')
  return function corralInvalidating(req, res) {
    invalidateBeforeEnd(res, cache, select, req)
    return handler(req, res)
  }
}
