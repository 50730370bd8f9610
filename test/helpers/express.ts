import * as http from 'node:http'
import { corral, invalidate, warm } from '@corral/express'
import {
  OriginCounter,
  isJsonBody,
  isStreamBody,
  queryOf,
  type AdapterFactory,
  type AppSpec,
  type Reply,
  type RouteSpec,
} from './scenario.js'
import { serveOnLoopback, writeChunks } from './node-server.js'

/* eslint-disable @typescript-eslint/no-explicit-any */
type ExpressLib = (() => any) & Record<string, any>

/**
 * How the middleware is mounted:
 * - `route`: `app.use(corral(cache, defaults))` and, on routes with options,
 *   `app.get(path, corral(cache, options), handler)` as well (the documented combination);
 * - `app`: only `app.use(corral(cache, { ...defaults, ...routeOptions }))`. A scenario whose
 *   routes need different options cannot be expressed this way and is refused loudly.
 * - `subapp`: as `route`, but the routes (with their own `corral()`) are in a second app that
 *   the first mounts (`app.use(sub)`: Express points the sub-app's prototypes at the parent's).
 * - `router-subapp`: as `subapp`, mounted through a Router (`router.use(sub)`), which leaves the
 *   sub-app's prototypes alone: inside it, a response has none of the parent's.
 */
export type ExpressMount = 'route' | 'app' | 'subapp' | 'router-subapp'

export function expressFactory(name: string, express: ExpressLib, major: 4 | 5, mount: ExpressMount): AdapterFactory {
  return {
    name: `${name} (${MOUNT_NAMES[mount]})`,
    async createApp(spec: AppSpec) {
      const app = express()
      if (spec.trustProxy) app.set('trust proxy', true)
      const counter = new OriginCounter()

      let appOptions = spec.defaults
      if (mount === 'app') {
        if (spec.routes.some((r) => r.cache === false)) throw new Error('app.use alone cannot turn caching off for one route')
        const distinct = new Set(spec.routes.map((r) => r.cache).filter((c) => c !== undefined))
        if (distinct.size > 1) throw new Error('scenario needs different options per route; not expressible with app.use only')
        const only = [...distinct][0]
        if (only !== undefined) appOptions = { ...spec.defaults, ...only }
      }
      // Parsed before the cache looks, as an app that reads GET bodies would have it.
      if (spec.parseJson) app.use(express.json({ type: () => true }))
      app.use(appOptions === undefined ? corral(spec.cache) : corral(spec.cache, appOptions as any))
      let routes = app
      if (mount === 'subapp' || mount === 'router-subapp') {
        routes = express()
        if (spec.trustProxy) routes.set('trust proxy', true)
        if (mount === 'subapp') app.use(routes)
        else {
          const router = express.Router()
          router.use(routes)
          app.use(router)
        }
      }

      for (const route of spec.routes) {
        const chain: any[] = []
        if (route.invalidate) chain.push(invalidate(spec.cache, route.invalidate as any))
        // `cache: false` is corral(cache, false): the route opts out of the app-wide cache.
        if (mount !== 'app' && route.cache !== undefined) chain.push(corral(spec.cache, route.cache as any))
        chain.push(handlerFor(route, counter))
        const method = route.method.toLowerCase()
        routes[method](expressPath(route.path, major), ...chain)
      }

      const server = http.createServer(app)
      return serveOnLoopback(server, counter, (targets, options) => warm(app, spec.cache, targets, options))
    },
  }
}

const MOUNT_NAMES: Record<ExpressMount, string> = {
  route: 'app.use + route corral()',
  app: 'app.use only',
  subapp: 'app.use + route corral() in a mounted sub-app',
  'router-subapp': 'app.use + route corral() in a sub-app mounted by a Router',
}

function expressPath(path: string, major: 4 | 5): string {
  // Express 5 (path-to-regexp 8) needs a named wildcard.
  return major === 5 && path.endsWith('*') ? `${path}splat` : path
}

function handlerFor(route: RouteSpec, counter: OriginCounter) {
  return (req: any, res: any, next: (err?: unknown) => void) => {
    const call = counter.next(route.method, route.path)
    const url: string = req.originalUrl
    Promise.resolve()
      .then(() =>
        route.handler({
          call,
          method: req.method,
          url,
          hostname: req.hostname,
          headers: req.headers,
          params: { ...req.params },
          query: queryOf(url),
          parsedQuery: req.query,
          body: req.body,
        }),
      )
      .then((reply) => write(res, reply))
      .catch(next)
  }
}

async function write(res: any, reply: Reply): Promise<void> {
  if (reply.earlyHints !== undefined) res.writeEarlyHints(reply.earlyHints)
  const status = reply.status ?? 200
  const body = reply.body
  if (reply.writeHead !== undefined) {
    const headers = reply.headers ?? {}
    res.writeHead(status, reply.writeHead === 'object' ? headers : flat(headers))
    if (body === undefined) res.end()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) res.end(body)
    else if (isJsonBody(body)) res.end(JSON.stringify(body.json))
    else await writeChunks(res, body)
    return
  }
  res.status(status)
  if (reply.headers) res.set(reply.headers)
  if (body === undefined) res.end()
  else if (typeof body === 'string' || Buffer.isBuffer(body)) res.send(body)
  else if (isJsonBody(body)) res.json(body.json)
  else if (isStreamBody(body)) await writeChunks(res, body)
}

/** `{ a: '1', b: ['2', '3'] }` as Node's flat `['a', '1', 'b', '2', 'b', '3']`. */
function flat(headers: Readonly<Record<string, string | readonly string[]>>): string[] {
  const out: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    for (const v of typeof value === 'string' ? [value] : value) out.push(name, v)
  }
  return out
}
