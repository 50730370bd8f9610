import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { expect } from 'vitest'
import type { Cache } from '../src/index.js'
import type { Decision } from '../src/cache.js'
import type { Fill } from '../src/fill/fill.js'
import type { RequestView } from '../src/model/key.js'
import type { ResolvedRoute } from '../src/model/options.js'

/** A request as an adapter would describe it; `host` defaults to example.com. */
export function view(url: string, headers: IncomingHttpHeaders = {}, method = 'GET'): RequestView {
  return { method, url, headers: { host: 'example.com', ...headers } }
}

/** A mutable clock for `createCache({ now })`. */
export function clock(start = 1_700_000_000_000): { now: () => number; t: number; advance: (ms: number) => void } {
  const c = {
    t: start,
    now: () => c.t,
    advance: (ms: number) => {
      c.t += ms
    },
  }
  return c
}

export type Hit = Extract<Decision, { type: 'hit' }>

export async function expectHit(d: Decision | Promise<Decision>): Promise<Hit> {
  const r = await d
  expect(r.type).toBe('hit')
  return r as Hit
}

/** Asserts a miss that leads a fill, and returns the fill. */
export async function expectFill(d: Decision | Promise<Decision>): Promise<Fill> {
  const r = await d
  expect(r.type).toBe('miss')
  const fill = (r as Extract<Decision, { type: 'miss' }>).fill
  expect(fill).not.toBeNull()
  return fill as Fill
}

export const CACHEABLE: OutgoingHttpHeaders = { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }

/** Runs a request through the cache as a miss and feeds the fill a complete response. */
export async function store<Req = unknown>(
  cache: Cache,
  v: RequestView,
  opts: { route?: ResolvedRoute<Req>; req?: Req; status?: number; headers?: OutgoingHttpHeaders; body?: string } = {},
): Promise<Fill> {
  const route = opts.route ?? (cache.defaults as ResolvedRoute<Req>)
  const fill = await expectFill(cache.handle(v, route, opts.req as Req))
  if (fill.begin(opts.status ?? 200, { ...(opts.headers ?? CACHEABLE) }).capture) fill.end(Buffer.from(opts.body ?? 'x'))
  return fill
}

/** Lets promise callbacks run (the engine resolves waiters in microtasks). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
