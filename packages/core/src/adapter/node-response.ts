import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders, type RequestListener, type Server } from 'node:http'
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

type Method = (this: ServerResponse, ...args: unknown[]) => unknown
/** The three methods a tap hooks, as the response would run them without Corral. */
interface Methods {
  readonly writeHead: Method
  readonly write: Method
  readonly end: Method
}

const kTapped = Symbol('corral.tapped')
type Tapped = ServerResponse & { [kTapped]?: TapState }

/**
 * One response reported to a tap: what its `writeHead`, `write` and `end` hooks keep between
 * calls. The same logic serves both ways of hooking a response (see `tapServerResponse`).
 */
class TapState {
  /** Whether the writeHead hook ran: when the head went out without it, the hooks were bypassed. */
  headDone = false
  private ended = false
  /** Inside the original `end`: a response class whose `end` calls `write` (light-my-request's) is teed once, by `end`. */
  private ending = false
  /** The body to send in place of the origin's: a stale entry its 304 renewed, or one standing in for its error. */
  private replacement: Buffer | undefined

  /**
   * @param via the response's prototype when it was tapped by its prototype's hooks, so that a
   *   response that went out without them (see `onClose`) turns them off for that prototype.
   */
  constructor(
    readonly tap: ResponseTap,
    readonly via?: object,
  ) {}

  /** A head whose body may be replaced is decided before Node writes it with the body. */
  private decideHead(res: ServerResponse): void {
    if (!this.headDone && !res.headersSent && this.tap.replaces(res.statusCode)) res.writeHead(res.statusCode)
  }

  writeHead(res: ServerResponse, base: Method, args: IArguments): unknown {
    if (this.headDone) return base.apply(res, args as unknown as unknown[])
    this.headDone = true
    const status = args[0] as number
    let reason: unknown = args[1]
    let headers: unknown = args[2]
    if (typeof reason !== 'string') {
      headers = reason
      reason = undefined
    }
    applyHeaders(res, headers as HeaderArg)
    const plan = this.tap.head(status, res)
    applyHeadPlan(res, plan)
    if (plan.replace !== undefined) this.replacement = plan.sendBody ? plan.replace.body : EMPTY
    // A 304 gets Node's own reason phrase, not the one given for the 200.
    if (plan.status !== status || reason === undefined) return base.call(res, plan.status)
    return base.call(res, status, reason)
  }

  write(res: ServerResponse, base: Method, args: IArguments): unknown {
    this.decideHead(res)
    if (this.replacement !== undefined) return true
    // The original write writes the head first (through the writeHead hook), which decides the capture.
    const ok = base.apply(res, args as unknown as unknown[])
    if (!this.ending) this.tap.data(args[0], typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined)
    return ok
  }

  end(res: ServerResponse, base: Method, args: IArguments): unknown {
    this.decideHead(res)
    const chunk: unknown = args[0]
    const encoding: unknown = args[1]
    if (this.replacement !== undefined && !this.ended) {
      this.ended = true
      this.tap.end()
      const cb = [chunk, encoding, args[2]].find((a) => typeof a === 'function')
      return base.call(res, this.replacement.length > 0 ? this.replacement : undefined, cb)
    }
    let r: unknown
    this.ending = true
    try {
      r = base.apply(res, args as unknown as unknown[])
    } finally {
      this.ending = false
    }
    if (this.ended) return r
    this.ended = true
    this.tap.end(typeof chunk === 'function' ? undefined : chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined)
    return r
  }
}

/** The hooks installed on a prototype, and the methods they run for a response without a tap. */
interface Hooks extends Methods {
  readonly base: Methods
}

/** The hooks installed on a prototype, marked so a response can tell it inherits them. */
const kHooks = Symbol('corral.hooks')
type Hook = Method & { [kHooks]?: Hooks }

/** Prototypes that carry Corral's hooks. */
const hooked = new WeakSet<object>()
/** Prototypes of responses that went out without passing the hooks: their responses get their own. */
const bypassed = new WeakSet<object>()

/**
 * Defines `writeHead`, `write` and `end` on `owner`, a prototype of responses. Each looks for a
 * tap on the response and, without one, is the method `owner` inherits (read on every call, so a
 * later patch of Node's own prototype, by an APM agent say, is still run).
 */
function installHooks(owner: object): Hooks {
  // Node's ServerResponse.prototype (see sharedHooks), whose methods are read on every call.
  const base = Reflect.getPrototypeOf(owner) as Methods
  const hooks: Hooks = {
    base,
    writeHead: function writeHead(this: Tapped) {
      const s = this[kTapped]
      return s === undefined ? base.writeHead.apply(this, arguments as unknown as unknown[]) : s.writeHead(this, base.writeHead, arguments)
    },
    write: function write(this: Tapped) {
      const s = this[kTapped]
      return s === undefined ? base.write.apply(this, arguments as unknown as unknown[]) : s.write(this, base.write, arguments)
    },
    end: function end(this: Tapped) {
      const s = this[kTapped]
      return s === undefined ? base.end.apply(this, arguments as unknown as unknown[]) : s.end(this, base.end, arguments)
    },
  }
  for (const name of ['writeHead', 'write', 'end'] as const) {
    Object.defineProperty(hooks[name], kHooks, { value: hooks })
    Object.defineProperty(owner, name, { value: hooks[name], writable: true, configurable: true, enumerable: false })
  }
  hooked.add(owner)
  return hooks
}

/**
 * The hooks `res` runs when it inherits them unshadowed; installs them first on the prototype
 * right above Node's `ServerResponse.prototype` in its chain (Express's shared `response`, which
 * every app's `app.response`, mounted or not, inherits from), when that prototype defines none of
 * the three methods itself. Undefined when they cannot be used for `res`: a plain Node response,
 * a response class with methods of its own, or a middleware before Corral that wrapped them.
 */
function sharedHooks(res: ServerResponse): Hooks | undefined {
  const found = (res.end as Hook)[kHooks]
  if (found !== undefined) return res.writeHead === found.writeHead && res.write === found.write && !bypassed.has(Reflect.getPrototypeOf(res) as object) ? found : undefined
  let owner: object | null = Reflect.getPrototypeOf(res)
  while (owner !== null && Reflect.getPrototypeOf(owner) !== ServerResponse.prototype) owner = Reflect.getPrototypeOf(owner)
  if (owner === null || hooked.has(owner) || Object.hasOwn(owner, 'writeHead') || Object.hasOwn(owner, 'write') || Object.hasOwn(owner, 'end')) return undefined
  const hooks = installHooks(owner)
  return res.writeHead === hooks.writeHead && res.write === hooks.write && res.end === hooks.end ? hooks : undefined
}

/**
 * Aborts the tap of a response that closed (after its end, a no-op). One function for every
 * response. A response whose head went out without the writeHead hook was written where its
 * prototype chain lacks the hooks (an app of another copy of Express mounted inside this one, say):
 * it stored nothing, and the responses of the prototype it had when tapped get their own hooks
 * from now on.
 */
function onClose(this: Tapped): void {
  const s = this[kTapped]
  if (s === undefined) return
  if (!s.headDone && this.headersSent && s.via !== undefined) bypassed.add(s.via)
  s.tap.abort()
}

/**
 * Reports a Node `ServerResponse` to a tap (after expressjs/compression and jshttp/on-headers):
 * hooks `writeHead`, `write` and `end` so that the head is decided once, when it is about to be
 * written, and the body is teed without changing what the client receives (`write`'s return value
 * is kept, so back-pressure holds); a `close` before the end is an abort. For every adapter whose
 * framework writes through Node's response: plain `node:http`, Express.
 *
 * Where it can, a response is hooked by its prototype: the hooks are defined once on a prototype
 * its framework gives every response (Express's), and a response only carries its tap. Express
 * swaps a response's prototype as it enters and leaves a mounted app; both inherit the hooks. A
 * response that does not inherit them unshadowed (plain node:http, a replay's response, a
 * middleware before Corral that wrapped `write`) gets the hooks as its own properties instead,
 * which survive any prototype swap. Both ways run the same `TapState`.
 */
export function tapServerResponse(res: ServerResponse, tap: ResponseTap): void {
  if (sharedHooks(res) !== undefined) {
    ;(res as Tapped)[kTapped] = new TapState(tap, Reflect.getPrototypeOf(res) ?? undefined)
    res.on('close', onClose)
    return
  }
  const state = new TapState(tap)
  const writeHead = res.writeHead as unknown as Method
  const write = res.write as unknown as Method
  const end = res.end as unknown as Method
  res.writeHead = function (this: ServerResponse) {
    return state.writeHead(this, writeHead, arguments)
  } as unknown as ServerResponse['writeHead']
  res.write = function (this: ServerResponse) {
    return state.write(this, write, arguments)
  } as unknown as ServerResponse['write']
  res.end = function (this: ServerResponse) {
    return state.end(this, end, arguments)
  } as unknown as ServerResponse['end']
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
  const headers = hit.headers as Record<string, string | string[]>
  // When only Corral's prototype hooks stand between the response and Node's methods, and the
  // response has no tap, the hooks would pass both calls through: make them directly.
  const hooks = (res.end as Hook)[kHooks]
  if (hooks !== undefined && res.writeHead === hooks.writeHead && (res as Tapped)[kTapped] === undefined) {
    hooks.base.writeHead.call(res, hit.status, headers)
    hooks.base.end.call(res, hit.body)
    return
  }
  res.writeHead(hit.status, headers)
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
