import * as http from 'node:http'
import { cached, invalidating, warm, type Handler } from '@corral/node'
import type { WarmReport } from '@corral/core'
import {
  OriginCounter,
  isJsonBody,
  isStreamBody,
  queryOf,
  type AdapterFactory,
  type AppHandle,
  type AppSpec,
  type Reply,
  type RouteSpec,
} from './scenario.js'
import { serveOnLoopback, writeChunks } from './node-server.js'

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A plain `node:http` app for the conformance suite: a tiny router (`:name` parameters, a trailing
 * `*`) in front of handlers wrapped with `cached(cache, handler, { ...defaults, ...route })` and,
 * for mutation routes, `invalidating(cache, spec, handler)`. A route with `cache: false` is simply
 * not wrapped.
 */
export function nodeFactory(): AdapterFactory {
  return {
    name: 'node:http',
    async createApp(spec: AppSpec) {
      const counter = new OriginCounter()
      const routes = spec.routes.map((route) => ({ route, match: matcher(route.path), handle: wrap(spec, route, counter) }))
      const server = http.createServer((req, res) => {
        const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
        for (const r of routes) {
          if (r.route.method !== req.method && !(req.method === 'HEAD' && r.route.method === 'GET')) continue
          const params = r.match(path)
          if (params === undefined) continue
          ;(req as any).params = params
          void Promise.resolve(r.handle(req, res)).catch((err: unknown) => fail(res, err))
          return
        }
        res.statusCode = 404
        res.end('Not Found')
      })
      // warm() takes one cached() handler: each target goes to the handler of its route.
      const warmAll: AppHandle['warm'] = async (targets, options) => {
        const report: WarmReport = { stored: [], notStored: [], failed: [] }
        for (const target of typeof targets === 'string' ? [targets] : targets) {
          const url = typeof target === 'string' ? target : target.url
          const path = url.startsWith('/') ? (url.split('?', 1)[0] ?? '/') : new URL(url).pathname
          const r = routes.find((x) => x.route.method === 'GET' && x.match(path) !== undefined)
          if (r === undefined) {
            report.failed.push({ url: String(target), error: 'no route' })
            continue
          }
          const one = await warm(r.handle, spec.cache, [target], options)
          report.stored.push(...one.stored)
          report.notStored.push(...one.notStored)
          report.failed.push(...one.failed)
        }
        return report
      }
      return serveOnLoopback(server, counter, warmAll)
    },
  }
}

function wrap(spec: AppSpec, route: RouteSpec, counter: OriginCounter): Handler {
  let handle: Handler = async (req, res) => {
    // A replay (a background refresh, warming) calls the handler given to cached() without the
    // router: match the path here, before the route's tags function reads the params.
    ;(req as any).params ??= matcher(route.path)((req.url ?? '/').split('?', 1)[0] ?? '/')
    const call = counter.next(route.method, route.path)
    const url = req.url ?? '/'
    const body = spec.parseJson ? await readJson(req) : undefined
    const forwarded = spec.trustProxy ? req.headers['x-forwarded-host'] : undefined
    const reply = await route.handler({
      call,
      method: req.method ?? 'GET',
      url,
      hostname: String(forwarded ?? req.headers.host ?? '').split(':')[0] ?? '',
      headers: req.headers,
      params: { ...(req as any).params },
      query: queryOf(url),
      parsedQuery: Object.fromEntries(queryOf(url)),
      body,
    })
    await write(res, reply)
  }
  if (route.invalidate !== undefined) handle = invalidating(spec.cache, route.invalidate, handle)
  if (route.cache !== false) handle = cached(spec.cache, handle, { ...spec.defaults, ...route.cache })
  return handle
}

/** `/items/:id` and `/files/*` as a function from a path to its parameters, or undefined. */
function matcher(pattern: string): (path: string) => Record<string, string> | undefined {
  const names: string[] = []
  const source = pattern
    .split('/')
    .map((seg) => {
      if (seg === '*') {
        names.push('*')
        return '(.*)'
      }
      if (seg.startsWith(':')) {
        names.push(seg.slice(1))
        return '([^/]+)'
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    .join('/')
  const re = new RegExp(`^${source}$`)
  return (path) => {
    const m = re.exec(path)
    if (m === null) return undefined
    return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]))
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  return text === '' ? undefined : JSON.parse(text)
}

async function write(res: http.ServerResponse, reply: Reply): Promise<void> {
  if (reply.earlyHints !== undefined) res.writeEarlyHints(reply.earlyHints as Record<string, string | string[]>)
  res.statusCode = reply.status ?? 200
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value as string | string[])
  const body = reply.body
  if (body === undefined) return void res.end()
  if (typeof body === 'string' || Buffer.isBuffer(body)) return void res.end(body)
  if (isJsonBody(body)) {
    if (!res.hasHeader('content-type')) res.setHeader('content-type', 'application/json; charset=utf-8')
    return void res.end(JSON.stringify(body.json))
  }
  if (isStreamBody(body)) await writeChunks(res, body)
}

/** A handler that failed: a 500 if nothing was sent yet, else the connection is cut (as Express does). */
function fail(res: http.ServerResponse, _err: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.statusCode = 500
  res.end('Internal Server Error')
}
