import type { Cache } from '@corral/core'
import { appendMember, isPromise, ResponseTap, type CompiledInvalidation, type Decision, type HeadPlan, type HeadSource, type Replay, type ResolvedRoute } from '@corral/core/adapter'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { byteLength, tapPayload } from './payload.js'
import type { CorralRequest } from './plugin.js'

/**
 * What the cache did with a request: HIT (answered, nothing to report), or the tap its response
 * goes to. null: the lookup never ran (an earlier hook answered).
 */
export const kState = Symbol('corral.state')
const HIT = Symbol('corral.hit')

/** Stored headers are plain strings and string lists, which Fastify writes as they are. */
type ReplyHeaders = Parameters<FastifyReply['headers']>[0]
type StatefulRequest = FastifyRequest & { [kState]: ResponseTap | typeof HIT | null }

/** The tap of a raw response whose fill must settle if it closes first. */
const kTap = Symbol('corral.tap')
type TappedResponse = FastifyReply['raw'] & { [kTap]?: ResponseTap }

/** Aborts the tap of a raw response that closed (after its end, a no-op). One function for every response, no closure per miss. */
function onClose(this: TappedResponse): void {
  this[kTap]?.abort()
}

type OnSendDone = (err?: Error | null, payload?: unknown) => void
export type OnRequestHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
export type OnSendHook = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: OnSendDone) => void

/** The hooks of one plugin registration; the per-route ones close over a compiled route only. */
export function createHooks(cache: Cache, replay: Replay) {
  function apply(d: Decision, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const req = request as StatefulRequest
    if (d.type === 'hit') {
      req[kState] = HIT
      reply.code(d.status).headers(d.headers as ReplyHeaders).header('age', d.age)
      if (cache.cacheStatusHeader !== undefined) reply.header(cache.cacheStatusHeader, d.stale === true ? 'STALE' : 'HIT')
      if (d.cacheStatus !== undefined) reply.header('cache-status', d.cacheStatus)
      // No payload for an empty body: Fastify would add Content-Type to a 304 or 204 otherwise.
      reply.send(d.body.length === 0 ? undefined : d.body)
      return
    }
    const fill = d.type === 'miss' ? d.fill : null
    const tap = new ResponseTap(cache, d)
    req[kState] = tap
    // A fill must settle even if onSend never runs (client gone, hijacked reply, hung handler).
    if (fill !== null) {
      const raw = reply.raw as TappedResponse
      if (raw.destroyed) tap.abort()
      else {
        raw[kTap] = tap
        raw.on('close', onClose)
      }
    }
    done()
  }

  function lookup(route: ResolvedRoute<CorralRequest>): OnRequestHook {
    return function corralLookup(request, reply, done) {
      const view = { method: request.method, url: request.raw.url ?? request.url, headers: request.headers }
      // handle() never throws or rejects: whatever fails is reported and answered with a bypass.
      const d = cache.handle(view, route, request as CorralRequest, undefined, replay)
      if (isPromise(d)) void d.then((decision) => apply(decision, request, reply, done))
      else apply(d, request, reply, done)
    }
  }

  /** Carries out the tap's head plan with Fastify's reply (and its raw response, for headers set there). */
  function applyPlan(reply: FastifyReply, plan: HeadPlan): void {
    // A stale entry standing in for an error: nothing of the error's head stays.
    if (plan.exclusive === true) {
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
      if (!reply.raw.headersSent) for (const name of reply.raw.getHeaderNames()) reply.raw.removeHeader(name)
    }
    // A renewed entry's stored headers over those of the origin's 304.
    if (plan.replace !== undefined) reply.headers(plan.replace.headers as ReplyHeaders)
    for (const name of plan.remove) {
      if (reply.hasHeader(name)) reply.removeHeader(name)
      if (!reply.raw.headersSent && reply.raw.hasHeader(name)) reply.raw.removeHeader(name)
    }
    if (plan.set !== undefined) reply.header(plan.set[0], plan.set[1])
    if (plan.cacheStatus !== undefined) {
      const existing = reply.getHeader('cache-status') ?? (reply.raw.headersSent ? undefined : reply.raw.getHeader('cache-status'))
      reply.header('cache-status', appendMember(existing, plan.cacheStatus))
    }
    if (plan.status !== reply.statusCode) reply.code(plan.status)
  }

  const capture: OnSendHook = function corralCapture(request, reply, payload, done) {
    const state = (request as StatefulRequest)[kState]
    if (state === HIT) {
      done(null, payload)
      return
    }
    // Without a lookup, a tap of nothing still takes the tag headers off.
    const tap = state ?? new ResponseTap(cache, null)
    if (tap.storing) {
      // Fastify sends a whole payload with its real length, whatever Content-Length the handler
      // set: say so before the tap compares the body with the declared length.
      const length = byteLength(payload)
      if (length !== undefined && reply.hasHeader('content-length')) reply.header('content-length', String(length))
    }
    // Fastify's getHeaders() is typed by header name; its values are Node's outgoing header values.
    const plan = tap.head(reply.statusCode, reply as unknown as HeadSource)
    applyPlan(reply, plan)
    if (plan.replace !== undefined) {
      // The origin's 304 renewed a stale entry, or a stale entry stands in for its error: the
      // client gets the stored body (or a 304).
      tap.end()
      done(null, plan.sendBody && plan.replace.body.length > 0 ? plan.replace.body : null)
      return
    }
    const out = tapPayload(tap, payload, plan.sendBody)
    if (isPromise(out)) void out.then((p) => done(null, p))
    else done(null, out)
  }

  function invalidation(select: CompiledInvalidation<CorralRequest>): OnSendHook {
    return function corralInvalidate(request, reply, payload, done) {
      // Only a handler that succeeded changed something; a hit never ran the handler.
      const finished = (request as StatefulRequest)[kState] === HIT ? undefined : cache.afterMutation(reply.statusCode, select, request as CorralRequest)
      if (finished === undefined) done(null, payload)
      else void finished.then(() => done(null, payload))
    }
  }

  return { lookup, capture, invalidation }
}
