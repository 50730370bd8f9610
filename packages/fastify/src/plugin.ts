import { Cache, ConfigError, type InvalidateSelectors, type RouteOptions, type WarmOptions, type WarmReport, type WarmTarget } from '@corral/core'
import { describeValue, type CompiledInvalidation, type Replay, type ResolvedRoute } from '@corral/core/adapter'
import type { FastifyInstance, FastifyRequest, RouteOptions as FastifyRouteOptions } from 'fastify'

/**
 * The request route callbacks (`tags`, `key`, `bypass`, `config.invalidate`) receive: a
 * `FastifyRequest` whose params and query are strings, as Fastify parses them.
 */
export type CorralRequest = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string | string[]> }>
import { createHooks, kState, type OnRequestHook, type OnSendHook } from './hooks.js'

/**
 * Options of the plugin: the cache, plus route options that apply to every route registered after
 * the plugin (a route's `config.cache` is applied over them).
 */
export type CorralFastifyOptions = {
  /** The cache from `createCache()`. Required. The plugin does not close it. */
  cache: Cache
} & RouteOptions<CorralRequest>

/** `fastify.corral`. */
export interface CorralFastifyDecorator {
  /** The cache given to the plugin. */
  readonly cache: Cache
  /**
   * Removes matching entries; resolves to how many were removed. The in-process part is done
   * before it returns.
   */
  invalidate(selectors: InvalidateSelectors): Promise<number>
  /**
   * Fills the cache by running each URL through the app (`inject`), `concurrency` at a time:
   * `await app.corral.warm(['/', '/products'], { headers: { host: 'shop.example' } })` once the app
   * is ready. Resolves to a report of what was stored, what was not and why, and what failed; one
   * bad URL never rejects it.
   */
  warm(targets: Iterable<WarmTarget>, options?: WarmOptions): Promise<WarmReport>
}

/** Fastify's own `register` options, passed along to every plugin; not route options. */
const REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

function routeName(opts: FastifyRouteOptions): string {
  const method = Array.isArray(opts.method) ? opts.method.join(',') : opts.method
  return `${method} ${opts.url}`
}

/** Compiles route options, naming the route in the error a bad option throws. */
function compile(
  cache: Cache,
  options: RouteOptions<CorralRequest>,
  base: ResolvedRoute<CorralRequest>,
  opts: FastifyRouteOptions,
): ResolvedRoute<CorralRequest> {
  try {
    return cache.route(options, 'config.cache.', base)
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${err.message} (route ${routeName(opts)})`)
    throw err
  }
}

function append<H>(existing: H | H[] | undefined, hook: H): H[] {
  // Never push into the route's own array: Fastify copies route options shallowly (for the HEAD
  // route it derives from a GET), so an in-place change would leak into the copy.
  if (existing === undefined) return [hook]
  return Array.isArray(existing) ? [...existing, hook] : [existing, hook]
}

export function corralPlugin(fastify: FastifyInstance, options: CorralFastifyOptions, done: (err?: Error) => void): void {
  if (typeof options !== 'object' || options === null || !Cache.isCache(options.cache)) {
    done(new ConfigError('expected options.cache to be a cache from createCache()'))
    return
  }
  if (fastify.hasDecorator('corral')) {
    // Registered twice in one context: every route would be looked up and stored twice.
    done(new ConfigError('@corral/fastify is already registered in this context (fastify.corral exists): register it once, before the routes it caches'))
    return
  }
  const { cache, ...rest } = options
  const routeDefaults: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(rest)) if (!REGISTER_OPTIONS.has(k)) routeDefaults[k] = v
  let defaults: ResolvedRoute<CorralRequest>
  try {
    defaults = cache.route<CorralRequest>(routeDefaults as RouteOptions<CorralRequest>, 'options.')
  } catch (err) {
    done(err as Error)
    return
  }

  // Background refreshes and warming run a request through the whole app again, with Fastify's own inject.
  const replay: Replay = (request) => fastify.inject({ method: request.method, url: request.url, headers: request.headers })
  const hooks = createHooks(cache, replay)
  // The cache's errors and slow operations go to the app's logger, unless the cache has its own.
  // Operations of a request (a slow fill) go to its own logger, with its request id.
  cache.useLogger(fastify.log, (req) => (req as FastifyRequest).log)
  fastify.decorateRequest(kState, null)
  const decorator: CorralFastifyDecorator = {
    cache,
    invalidate: (selectors) => cache.invalidate(selectors),
    warm: (targets, options) => cache.warm(replay, targets, options),
  }
  fastify.decorate('corral', decorator)

  fastify.addHook('onRoute', (opts) => {
    const config = opts.config as { cache?: unknown; invalidate?: unknown } | undefined
    const given = config?.cache
    const invalidate = config?.invalidate
    if (given !== false) {
      if (given !== undefined && (typeof given !== 'object' || given === null || Array.isArray(given))) {
        throw new ConfigError(`expected config.cache to be route options or false, got ${describeValue(given)} (route ${routeName(opts)})`)
      }
      const compiled = given === undefined ? defaults : compile(cache, given as RouteOptions<CorralRequest>, defaults, opts)
      // Named by its pattern in metrics, logs and traces, unless config.cache names it.
      const route = compiled.name === undefined ? { ...compiled, name: opts.url } : compiled
      // Route-level hooks run after the app's and the route's own onRequest hooks (auth, rate
      // limits), and cost nothing on routes that are not cached.
      opts.onRequest = append<OnRequestHook>(opts.onRequest as OnRequestHook | OnRequestHook[] | undefined, hooks.lookup(route)) as FastifyRouteOptions['onRequest']
      opts.onSend = append<OnSendHook>(opts.onSend as OnSendHook | OnSendHook[] | undefined, hooks.capture) as FastifyRouteOptions['onSend']
    }
    if (invalidate !== undefined) {
      let select: CompiledInvalidation<CorralRequest>
      try {
        select = cache.mutation<CorralRequest>(invalidate, 'config.invalidate')
      } catch (err) {
        if (err instanceof ConfigError) throw new ConfigError(`${err.message} (route ${routeName(opts)})`)
        throw err
      }
      opts.onSend = append<OnSendHook>(opts.onSend as OnSendHook | OnSendHook[] | undefined, hooks.invalidation(select)) as FastifyRouteOptions['onSend']
    }
  })
  done()
}
