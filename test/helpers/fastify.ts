import { Readable } from 'node:stream'
import corralPlugin from '@corral/fastify'
import {
  OriginCounter,
  isJsonBody,
  isStreamBody,
  queryOf,
  sleep,
  type AdapterFactory,
  type AppSpec,
  type Reply,
  type RouteSpec,
} from './scenario.js'

/* eslint-disable @typescript-eslint/no-explicit-any */
type FastifyLib = (options?: any) => any

export function fastifyFactory(name: string, fastify: FastifyLib): AdapterFactory {
  return {
    name,
    async createApp(spec: AppSpec) {
      const app = fastify({ logger: false, trustProxy: spec.trustProxy === true })
      const counter = new OriginCounter()
      await app.register(corralPlugin as any, { cache: spec.cache, ...spec.defaults })
      // Fastify reads bodies of GET requests too when they come with a content type.
      if (spec.parseJson) {
        app.removeContentTypeParser('application/json')
        app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req: any, body: string, done: any) => {
          try {
            done(null, body === '' ? undefined : JSON.parse(body))
          } catch (err) {
            done(err)
          }
        })
      }

      for (const route of spec.routes) {
        const config: Record<string, unknown> = {}
        if (route.cache !== undefined) config.cache = route.cache
        if (route.invalidate !== undefined) config.invalidate = route.invalidate
        app.route({
          method: route.method,
          url: route.path,
          config,
          handler: handlerFor(route, counter),
        })
      }

      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address()
      return {
        url: `http://127.0.0.1:${port}`,
        calls: (path?: string) => counter.calls(path),
        invalidate: (selectors) => app.corral.invalidate(selectors),
        warm: (targets, options) => app.corral.warm(targets, options),
        close: async () => {
          app.server.closeAllConnections?.()
          await app.close()
        },
      }
    },
  }
}

function handlerFor(route: RouteSpec, counter: OriginCounter) {
  return async (request: any, reply: any) => {
    const call = counter.next(route.method, route.path)
    const url: string = request.url
    const r = await route.handler({
      call,
      method: request.method,
      url,
      hostname: request.hostname,
      headers: request.headers,
      params: { ...request.params },
      query: queryOf(url),
      parsedQuery: request.query,
      body: request.body,
    })
    return write(reply, r)
  }
}

function write(reply: any, r: Reply): unknown {
  if (r.earlyHints !== undefined) reply.raw.writeEarlyHints(r.earlyHints)
  reply.code(r.status ?? 200)
  if (r.headers) reply.headers(r.headers)
  const body = r.body
  if (body === undefined) return reply.send()
  if (typeof body === 'string' || Buffer.isBuffer(body)) return reply.send(body)
  if (isJsonBody(body)) return reply.send(body.json)
  if (isStreamBody(body)) {
    const { stream, intervalMs, failAtEnd, before } = body
    async function* chunks() {
      for (const [i, chunk] of stream.entries()) {
        if (i > 0 && intervalMs) await sleep(intervalMs)
        if (i > 0) await before?.(i)
        yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      }
      if (intervalMs) await sleep(intervalMs)
      await before?.(stream.length)
      // Headers are sent: Fastify answers a stream error by destroying the response.
      if (failAtEnd) throw new Error('origin stream failed')
    }
    return reply.send(Readable.from(chunks()))
  }
  return reply.send()
}
