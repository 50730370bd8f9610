import type { InvalidateSpec, RouteOptions } from '@corral/core'
import type { FastifyPluginCallback } from 'fastify'
import fp from 'fastify-plugin'
import { corralPlugin, type CorralFastifyDecorator, type CorralFastifyOptions, type CorralRequest } from './plugin.js'

export type { CorralFastifyDecorator, CorralFastifyOptions, CorralRequest } from './plugin.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Caching of this route: route options applied over the plugin's options, or `false` for no
     * lookup, no store and no `X-Cache` header. Without it the plugin's options apply.
     * @default undefined (the plugin's options)
     * @example { config: { cache: { ttl: '1m', tags: ['products'] } } }
     */
    cache?: RouteOptions<CorralRequest> | false
    /**
     * Run after every 2xx response of this route (not on cache hits): the entries these selectors
     * (or the ones a function of the request returns, possibly async) match are removed before the
     * response is sent, with Redis on every instance. Static selectors are checked at start-up. A
     * function that fails, or an invalidation the store could not make, is reported through the
     * cache's `onError` and never fails the request.
     * @default undefined
     * @example { config: { invalidate: (req) => ({ tags: ['products'] }) } }
     */
    invalidate?: InvalidateSpec<CorralRequest>
  }
  interface FastifyInstance {
    /** Added by `@corral/fastify`: the cache and a shortcut to invalidate it. */
    corral: CorralFastifyDecorator
  }
}

/**
 * The Corral plugin: answers cached GET/HEAD requests in `onRequest` and stores responses in
 * `onSend`. Register it (with `await`) before the routes it should cache.
 */
export const corral: FastifyPluginCallback<CorralFastifyOptions> = fp(corralPlugin, {
  fastify: '4.x || 5.x',
  name: '@corral/fastify',
})

export default corral
