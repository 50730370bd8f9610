import type { OutgoingHttpHeaders } from 'node:http'
import {
  CallbackError,
  CorralError,
  type Fill,
  StoreError,
  type Cache,
  type Decision,
  type InvalidateSelectors,
  type ResolvedRoute,
} from '@corral/core'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { capturePayload } from './payload.js'

/**
 * What the cache did with a request: HIT (nothing to capture), the fill to feed in onSend, or the
 * X-Cache value to send. null: the lookup never ran (an earlier hook answered).
 */
export const kState = Symbol('corral.state')
const HIT = Symbol('corral.hit')

/** Stored headers are plain strings and string lists, which Fastify writes as they are. */
type ReplyHeaders = Parameters<FastifyReply['headers']>[0]
type State = Fill | typeof HIT | 'MISS' | 'BYPASS' | null
type CorralRequest = FastifyRequest & { [kState]: State }

type OnSendDone = (err?: Error | null, payload?: unknown) => void
export type OnRequestHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
export type OnSendHook = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: OnSendDone) => void

function isThenable(d: Decision | Promise<Decision>): d is Promise<Decision> {
  return typeof (d as Promise<Decision>).then === 'function'
}

/** The hooks of one plugin registration; the per-route ones close over a compiled route only. */
export function createHooks(cache: Cache) {
  const statusHeader = cache.cacheStatusHeader
  const tagHeaders = cache.tagHeaders

  function apply(d: Decision, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const req = request as CorralRequest
    switch (d.type) {
      case 'hit':
        req[kState] = HIT
        reply.code(d.status).headers(d.headers as ReplyHeaders).header('age', d.age).header(statusHeader, 'HIT')
        // No payload for an empty body: Fastify would add Content-Type to a 304 or 204 otherwise.
        reply.send(d.body.length === 0 ? undefined : d.body)
        return
      case 'miss':
        req[kState] = d.fill === null ? 'MISS' : watch(d.fill, reply)
        break
      case 'bypass':
        req[kState] = 'BYPASS'
        break
      default:
        // 'defer' needs an app-wide lookup; every Fastify route is compiled on its own.
        req[kState] = 'MISS'
    }
    done()
  }

  function watch(fill: Fill, reply: FastifyReply): Fill | 'MISS' {
    const res = reply.raw
    // A fill must settle even if onSend never runs (client gone, hijacked reply, hung handler).
    if (res.destroyed) {
      fill.abandon('aborted')
      return 'MISS'
    }
    res.once('close', () => fill.abandon('aborted'))
    return fill
  }

  function failed(err: unknown, request: FastifyRequest, done: HookHandlerDoneFunction): void {
    cache.report(err instanceof CorralError ? err : new StoreError('cache lookup failed; the request skips the cache', err))
    ;(request as CorralRequest)[kState] = 'BYPASS'
    done()
  }

  function lookup(route: ResolvedRoute<FastifyRequest>): OnRequestHook {
    return function corralLookup(request, reply, done) {
      const view = { method: request.method, url: request.raw.url ?? request.url, headers: request.headers }
      let d: Decision | Promise<Decision>
      try {
        d = cache.handle(view, route, request)
      } catch (err) {
        failed(err, request, done)
        return
      }
      if (!isThenable(d)) {
        apply(d, request, reply, done)
        return
      }
      d.then(
        (decision) => apply(decision, request, reply, done),
        (err: unknown) => failed(err, request, done),
      )
    }
  }

  /** Tag headers are for the cache only: they never reach the client. */
  function stripTags(reply: FastifyReply): void {
    for (const name of tagHeaders) {
      if (reply.hasHeader(name)) reply.removeHeader(name)
      if (reply.raw.hasHeader(name) && !reply.raw.headersSent) reply.raw.removeHeader(name)
    }
  }

  const capture: OnSendHook = function corralCapture(request, reply, payload, done) {
    const state = (request as CorralRequest)[kState]
    if (state === HIT) {
      done(null, payload)
      return
    }
    if (state === null || typeof state === 'string') {
      // Set here rather than in onRequest so that the origin cannot overwrite it.
      if (state !== null) reply.header(statusHeader, state)
      stripTags(reply)
      done(null, payload)
      return
    }
    ;(request as CorralRequest)[kState] = 'MISS'
    reply.header(statusHeader, 'MISS')
    let out = payload
    try {
      // begin() reads the tag headers, so they go only after it.
      const capturing = state.begin(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
      stripTags(reply)
      if (capturing) out = capturePayload(state, payload)
    } catch (err) {
      state.abandon('error')
      cache.report(new StoreError('capturing a response failed; it is not stored', err))
    }
    done(null, out)
  }

  function invalidation(select: (req: FastifyRequest) => InvalidateSelectors): OnSendHook {
    const report = (err: unknown) => cache.report(new CallbackError('config.invalidate failed; nothing was invalidated', err))
    return function corralInvalidate(request, reply, payload, done) {
      const status = reply.statusCode
      // Only a handler that succeeded changed something; a hit never ran the handler.
      if (status < 200 || status > 299 || (request as CorralRequest)[kState] === HIT) {
        done(null, payload)
        return
      }
      let selectors: InvalidateSelectors
      try {
        selectors = select(request)
        if (typeof (selectors as unknown as Promise<unknown> | null)?.then === 'function') {
          throw new TypeError('config.invalidate must return selectors synchronously, not a promise')
        }
      } catch (err) {
        report(err)
        done(null, payload)
        return
      }
      cache.invalidate(selectors).then(
        () => done(null, payload),
        (err: unknown) => {
          report(err)
          done(null, payload)
        },
      )
    }
  }

  return { lookup, capture, invalidation }
}
