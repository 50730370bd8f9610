/**
 * `@corral/core/adapter`: what a framework adapter builds on. An adapter translates its
 * framework's request into a `RequestView` for `cache.handle()`, writes a hit, and reports the
 * response of a miss to a `ResponseTap`; mutation routes call `cache.mutation()` once and
 * `cache.afterMutation()` per request. Frameworks that write through Node's `ServerResponse`
 * (plain node:http, Express) get the whole response side from `tapServerResponse`. An adapter
 * that can run a request through its app again (a `Replay`) gives it to `handle()`, and stale hits
 * are then refreshed in the background.
 */
export { ResponseTap, type HeadPlan, type HeadSource, type OriginDecision, type TapHost } from './tap.js'
export { appendMember, applyHeadPlan, invalidateBeforeEnd, serverListener, tapServerResponse, writeHit } from './node-response.js'
export type { CompiledInvalidation, Decision } from '../cache.js'
export { describeValue } from '../model/duration.js'
export { isPromise, type MaybePromise } from '../model/maybe-promise.js'
export type { Fill, HeadDecision } from '../fill/fill.js'
export type { Replay, ReplayRequest } from '../fill/refresh.js'
export type { RequestView } from '../model/key.js'
export type { ResolvedRoute } from '../model/options.js'
