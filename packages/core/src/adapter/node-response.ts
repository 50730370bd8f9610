import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, Server, ServerResponse } from 'node:http'
import type { Cache, CompiledInvalidation } from '../cache.js'
import type { HeadPlan, ResponseTap } from './tap.js'

const EMPTY = Buffer.alloc(0)

type HeaderArg = OutgoingHttpHeaders | readonly (string | number | readonly string[])[] | undefined

/**
 * Applies headers passed to `writeHead` with `setHeader`, so that they are visible to
 * `getHeaders()` before the head is written. Accepts an object, a flat `[name, value, ...]` array
 * or an array of `[name, value]` pairs (the array form was CVE-2025-7339 in on-headers).
 */
function applyHeaders(res: ServerResponse, headers: HeaderArg): void {
  if (headers === undefined || headers === null) return
  if (!Array.isArray(headers)) {
    for (const name of Object.keys(headers)) {
      const v = (headers as OutgoingHttpHeaders)[name]
      if (v !== undefined) res.setHeader(name, v)
    }
    return
  }
  const merged = new Map<string, { name: string; values: string[] }>()
  const add = (name: unknown, value: unknown) => {
    const key = String(name).toLowerCase()
    let slot = merged.get(key)
    if (slot === undefined) merged.set(key, (slot = { name: String(name), values: [] }))
    if (Array.isArray(value)) for (const v of value) slot.values.push(String(v))
    else slot.values.push(String(value))
  }
  if (headers.length > 0 && Array.isArray(headers[0])) {
    for (const pair of headers as unknown as readonly (readonly unknown[])[]) add(pair[0], pair[1])
  } else {
    for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i], headers[i + 1])
  }
  for (const { name, values } of merged.values()) res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
}

/** Carries out a head plan on a Node response whose head is not written yet. */
export function applyHeadPlan(res: ServerResponse, plan: HeadPlan): void {
  // A stale entry standing in for an error: nothing of the error's head stays.
  if (plan.exclusive === true) for (const name of res.getHeaderNames()) res.removeHeader(name)
  // A renewed entry's stored headers over those of the origin's 304.
  if (plan.replace !== undefined) for (const [name, value] of Object.entries(plan.replace.headers)) res.setHeader(name, value as string | string[])
  for (const name of plan.remove) res.removeHeader(name)
  if (plan.set !== undefined) res.setHeader(plan.set[0], plan.set[1])
  if (plan.cacheStatus !== undefined) res.setHeader('cache-status', appendMember(res.getHeader('cache-status'), plan.cacheStatus))
  // For a 304, Node writes no body and ignores what the handler writes; the tap still sees it.
  res.statusCode = plan.status
}

/**
 * Reports a Node `ServerResponse` to a tap (after expressjs/compression and jshttp/on-headers):
 * wraps `writeHead`, `write` and `end` so that the head is decided once, when it is about to be
 * written, and the body is teed without changing what the client receives (`write`'s return value
 * is kept, so back-pressure holds); a `close` before the end is an abort. For every adapter whose
 * framework writes through Node's response: plain `node:http`, Express.
 */
export function tapServerResponse(res: ServerResponse, tap: ResponseTap): void {
  const writeHead = res.writeHead as (this: ServerResponse, ...args: unknown[]) => ServerResponse
  const write = res.write as (this: ServerResponse, ...args: unknown[]) => boolean
  const end = res.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse
  let headDone = false
  let ended = false
  /** Inside the original `end`: a response class whose `end` calls `write` (light-my-request's) is teed once, by `end`. */
  let ending = false
  /** The body to send in place of the origin's: a stale entry its 304 renewed, or one standing in for its error. */
  let replacement: Buffer | undefined
  // A head whose body may be replaced is decided before Node writes it with the body.
  const decideHead = (r: ServerResponse): void => {
    if (!headDone && !r.headersSent && tap.replaces(r.statusCode)) r.writeHead(r.statusCode)
  }

  res.writeHead = function (this: ServerResponse, status: number, reason?: unknown, headers?: unknown) {
    if (headDone) return writeHead.apply(this, arguments as unknown as unknown[])
    headDone = true
    if (typeof reason !== 'string') {
      headers = reason
      reason = undefined
    }
    applyHeaders(this, headers as HeaderArg)
    const plan = tap.head(status, this)
    applyHeadPlan(this, plan)
    if (plan.replace !== undefined) replacement = plan.sendBody ? plan.replace.body : EMPTY
    // A 304 gets Node's own reason phrase, not the one given for the 200.
    if (plan.status !== status || reason === undefined) return writeHead.call(this, plan.status)
    return writeHead.call(this, status, reason)
  } as ServerResponse['writeHead']

  res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown) {
    decideHead(this)
    if (replacement !== undefined) return true
    // The original write writes the head first (through our writeHead), which decides the capture.
    const ok = write.apply(this, arguments as unknown as unknown[])
    if (!ending) tap.data(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined)
    return ok
  } as ServerResponse['write']

  res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown) {
    decideHead(this)
    if (replacement !== undefined && !ended) {
      ended = true
      tap.end()
      const cb = [chunk, encoding, arguments[2]].find((a) => typeof a === 'function') as (() => void) | undefined
      return end.call(this, replacement.length > 0 ? replacement : undefined, cb)
    }
    let r: ServerResponse
    ending = true
    try {
      r = end.apply(this, arguments as unknown as unknown[])
    } finally {
      ending = false
    }
    if (ended) return r
    ended = true
    tap.end(typeof chunk === 'function' ? undefined : chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined)
    return r
  } as ServerResponse['end']

  // Whatever happens to the response, its fill settles and waiters are released.
  res.once('close', () => tap.abort())
}

/** Writes a hit on a Node response: stored headers over those earlier middleware set, then the body. */
export function writeHit(
  res: ServerResponse,
  hit: { status: number; headers: Readonly<Record<string, string | readonly string[]>>; body: Buffer; age: string; stale?: boolean | undefined; cacheStatus?: string | undefined },
  statusHeader: string | undefined,
): void {
  if (statusHeader !== undefined) res.setHeader(statusHeader, hit.stale === true ? 'STALE' : 'HIT')
  if (hit.cacheStatus !== undefined) res.setHeader('cache-status', hit.cacheStatus)
  res.setHeader('age', hit.age)
  // writeHead merges these into the headers already set (CORS and security headers of earlier
  // middleware stay); stored values win.
  res.writeHead(hit.status, hit.headers as Record<string, string | string[]>)
  res.end(hit.body)
}

/**
 * For mutation routes on a Node response: when the handler ends a 2xx response, invalidates what
 * `select` names (`cache.afterMutation`) before the end goes out, so a client that reads after its
 * write sees fresh data. Anything else ends at once.
 */
export function invalidateBeforeEnd<Req>(res: ServerResponse, cache: Cache, select: CompiledInvalidation<Req>, req: Req): void {
  const end = res.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    res.end = end as ServerResponse['end']
    const done = cache.afterMutation(res.statusCode, select, req)
    if (done === undefined) return end.apply(this, args)
    void done.then(() => end.apply(this, args))
    return this
  } as ServerResponse['end']
}

/** A Cache-Status value with `member` after the members already there (RFC 9211: the origin's first). */
export function appendMember(existing: unknown, member: string): string {
  if (existing === undefined || existing === null || existing === '') return member
  return `${Array.isArray(existing) ? existing.join(', ') : String(existing)}, ${member}`
}

/** Per server: its request handler (null: it has none). Read once per server, not per request. */
const listeners = new WeakMap<Server, RequestListener | null>()

/**
 * The handler of the server that received `req`: where a background refresh replays it, so that
 * it takes the path a client's request takes through the whole app (routers, mounted apps).
 * Undefined for a request no server received (a replay itself).
 */
export function serverListener(req: IncomingMessage): RequestListener | undefined {
  const server = (req.socket as { server?: Server } | null | undefined)?.server
  if (server === undefined || server === null) return undefined
  let listener = listeners.get(server)
  if (listener === undefined) {
    const first: unknown = typeof server.listeners === 'function' ? server.listeners('request')[0] : undefined
    listener = typeof first === 'function' ? (first as RequestListener) : null
    listeners.set(server, listener)
  }
  return listener ?? undefined
}
