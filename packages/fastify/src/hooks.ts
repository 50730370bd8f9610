import type { OutgoingHttpHeaders } from 'node:http'
import { type Fill, type Cache, type CompiledInvalidation, type Decision, type ResolvedRoute } from '@corral/core'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { capturePayload, discardPayload } from './payload.js'

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

/** Length of a payload Fastify sends whole (string or bytes); undefined for a stream or nothing. */
function byteLength(payload: unknown): number | undefined {
  if (typeof payload === 'string') return Buffer.byteLength(payload)
  if (ArrayBuffer.isView(payload)) return payload.byteLength
  if (payload instanceof ArrayBuffer) return payload.byteLength
  return undefined
}

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

  function lookup(route: ResolvedRoute<FastifyRequest>): OnRequestHook {
    return function corralLookup(request, reply, done) {
      const view = { method: request.method, url: request.raw.url ?? request.url, headers: request.headers }
      // handle() never throws or rejects: whatever fails is reported and answered with a bypass.
      const d = cache.handle(view, route, request)
      if (isThenable(d)) void d.then((decision) => apply(decision, request, reply, done))
      else apply(d, request, reply, done)
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
    // Fastify sends a whole payload with its real length, whatever Content-Length the handler
    // set: say so before begin() compares the body with the declared length.
    const length = byteLength(payload)
    if (length !== undefined && reply.hasHeader('content-length')) reply.header('content-length', String(length))
    // begin() reads the tag headers, so they go only after it. It never throws.
    const head = state.begin(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
    stripTags(reply)
    if (head.notModified) {
      reply.code(304)
      reply.removeHeader('content-length')
      const out = head.capture ? capturePayload(state, payload, true) : discardPayload(payload)
      if (out instanceof Promise) void out.then((p) => done(null, p))
      else done(null, out)
      return
    }
    done(null, head.capture ? capturePayload(state, payload, false) : payload)
  }

  function invalidation(select: CompiledInvalidation<FastifyRequest>): OnSendHook {
    return function corralInvalidate(request, reply, payload, done) {
      // Only a handler that succeeded changed something; a hit never ran the handler.
      const finished = (request as CorralRequest)[kState] === HIT ? undefined : cache.afterMutation(reply.statusCode, select, request)
      if (finished === undefined) done(null, payload)
      else void finished.then(() => done(null, payload))
    }
  }

  return { lookup, capture, invalidation }
}
