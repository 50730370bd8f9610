import { randomBytes } from 'node:crypto'
import diagnostics from 'node:diagnostics_channel'
import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { SpanKind, SpanStatusCode, context, trace, type Span } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import express5 from 'express5'
import fastify5 from 'fastify5'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CHANNEL_NAMES, ConfigError, OPERATIONS, OriginError, type CorralError } from '@corral/core'
// The subpath has no alias in vitest.config.ts (as '@corral/core/adapter' has): its source, like every other test.
import { instrumentCorral, type CorralInstrumentation } from '@corral/core/opentelemetry'
import { expressFactory } from '../helpers/express.js'
import { fastifyFactory } from '../helpers/fastify.js'
import { fileRedis, healthy, instance, xcache } from '../helpers/fleet.js'
import { until, type AdapterFactory, type OriginRequest, type Reply } from '../helpers/scenario.js'
import { harnessFor, runCleanups } from '../helpers/setup.js'

// The app's one @opentelemetry/api, as Corral sees it. The workspace has two copies (the SDK's 1.9
// at the root, core's own dev copy), and an API accepts globals registered by a copy at least as
// new as itself only: registered with the one core imports, the context manager and provider
// are seen by both.
const api = createRequire(new URL('../../packages/core/package.json', import.meta.url))('@opentelemetry/api') as typeof import('@opentelemetry/api')

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
/** The spans an HTTP server instrumentation and the app itself would make. */
const tracer = provider.getTracer('test')
const contextManager = new AsyncLocalStorageContextManager()

beforeAll(() => {
  expect(api.context.setGlobalContextManager(contextManager.enable())).toBe(true)
})
afterAll(() => {
  api.context.disable()
})
beforeEach(() => exporter.reset())

const SCOPE = '@corral/core'
const spans = (name?: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === SCOPE && (name === undefined || s.name === name))
const spanId = (s: ReadableSpan | Span): string => ('spanContext' in s ? s.spanContext() : s).spanId
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId
const traceOf = (s: ReadableSpan): string => s.spanContext().traceId
/** The test's server spans of the requests for a URL (`GET /path?query`), ended. */
const serverSpans = (url: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === `GET ${url}` && s.kind === SpanKind.SERVER)
/** Corral's spans of one request: those in its server span's trace. */
const spansOf = (server: ReadableSpan, name: string): ReadableSpan[] => spans(name).filter((s) => traceOf(s) === traceOf(server))

/**
 * What an HTTP server instrumentation does: a SERVER span per request, active while the app
 * handles it. Put in front of the app's own middleware, so Corral runs inside it.
 */
function aroundRequest(method: string, url: string, res: ServerResponse, next: () => void): void {
  const span = tracer.startSpan(`${method} ${url}`, { kind: SpanKind.SERVER })
  let open = true
  const end = (): void => {
    if (open) span.end()
    open = false
  }
  res.once('finish', end)
  res.once('close', end)
  context.with(trace.setSpan(context.active(), span), next)
}

/* eslint-disable @typescript-eslint/no-explicit-any */
const tracedExpress = Object.assign((...args: unknown[]) => {
  const app = (express5 as any)(...args)
  app.use((req: any, res: ServerResponse, next: () => void) => aroundRequest(req.method, req.originalUrl, res, () => next()))
  return app
}, express5)
const tracedFastify = (options?: unknown) => {
  const app = (fastify5 as any)(options)
  app.addHook('onRequest', (request: any, reply: any, done: () => void) => aroundRequest(request.method, request.url, reply.raw, () => done()))
  return app
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Each framework, and the `http.route` its lookups carry (an app-wide Express middleware knows no route). */
const FRAMEWORKS: { name: string; factory: AdapterFactory; route: string | undefined }[] = [
  { name: 'Express 5', factory: expressFactory('express5', tracedExpress as unknown as typeof express5, 5, 'route'), route: undefined },
  { name: 'Fastify 5', factory: fastifyFactory('fastify5', tracedFastify), route: '/items/:id' },
]
const EXPRESS = FRAMEWORKS[0]?.factory as AdapterFactory
const FASTIFY = FRAMEWORKS[1]?.factory as AdapterFactory

const item = (r: OriginRequest): Reply => ({ headers: { 'content-type': 'text/plain' }, body: `item ${String(r.params.id)}` })

describe.each(FRAMEWORKS)('opentelemetry: $name', ({ factory, route }) => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(() => runCleanups(cleanups))
  const setup = harnessFor(factory, cleanups)
  const instrument = (options: Parameters<typeof instrumentCorral>[0] = { tracerProvider: provider }): CorralInstrumentation => {
    const otel = instrumentCorral(options)
    cleanups.push(async () => otel.disable())
    return otel
  }

  it('a miss then a hit: lookup (miss, then hit), fill (200, stored) and store spans with their attributes, children of the request span', async () => {
    instrument()
    const h = await setup({ routes: [{ method: 'GET', path: '/items/:id', handler: item }] })

    expect(h.status(await h.get('/items/7?color=red'))).toBe('MISS')
    await until(() => spans('corral store').length === 1 && spans('corral fill').length === 1 && serverSpans('/items/7?color=red').length === 1, 5000, 'the request, fill and store spans to end')
    const first = serverSpans('/items/7?color=red')[0] as ReadableSpan
    const [lookup] = spansOf(first, 'corral lookup')
    const [fill] = spansOf(first, 'corral fill')
    const [store] = spans('corral store')
    if (lookup === undefined || fill === undefined || store === undefined) throw new Error('a span is missing')

    const key = lookup.attributes['corral.key']
    expect(key).toEqual(expect.any(String))
    const onRoute = route === undefined ? {} : { 'http.route': route }
    expect(lookup.kind).toBe(SpanKind.INTERNAL)
    expect(lookup.attributes).toEqual({
      'http.request.method': 'GET', 'url.path': '/items/7', 'url.query': 'color=red', ...onRoute,
      'corral.key': key, 'corral.result': 'miss', 'corral.collapsed': false,
    })
    expect(fill.attributes).toEqual({
      'http.request.method': 'GET', 'url.path': '/items/7', 'url.query': 'color=red', ...onRoute,
      'corral.key': key, 'corral.background': false, 'http.response.status_code': 200, 'corral.stored': true, 'corral.bytes': 'item 7'.length,
    })
    expect(store.attributes).toEqual({ ...onRoute, 'corral.key': key, 'corral.bytes': 'item 7'.length, 'corral.result': 'stored' })
    // Both begin inside the request, where its span is the active context.
    expect(parentOf(lookup)).toBe(spanId(first))
    expect(parentOf(fill)).toBe(spanId(first))
    for (const s of [lookup, fill, store]) expect(s.status.code).toBe(SpanStatusCode.UNSET)

    expect(h.status(await h.get('/items/7?color=red'))).toBe('HIT')
    await until(() => spans('corral lookup').length === 2, 5000, 'the hit lookup span')
    const hits = spans('corral lookup').filter((s) => s.attributes['corral.result'] === 'hit')
    expect(hits).toHaveLength(1)
    expect(hits[0]?.attributes['corral.key']).toBe(key)
    expect(spans('corral fill')).toHaveLength(1)
    // The second request's own span, not the first's.
    expect(parentOf(hits[0] as ReadableSpan)).not.toBe(spanId(first))
    expect(traceOf(hits[0] as ReadableSpan)).not.toBe(traceOf(first))
  })

  it("operations started under a span of the app's own (warming, an invalidation) are its descendants", async () => {
    instrument()
    const h = await setup({ routes: [{ method: 'GET', path: '/items/:id', handler: item }] })
    const job = await tracer.startActiveSpan('nightly job', async (span) => {
      const report = await h.app.warm(['/items/9'])
      expect(report.stored).toEqual(['/items/9'])
      expect(await h.cache.invalidate({ keys: ['/items/9'] })).toBe(1)
      span.end()
      return span
    })
    await until(() => spans('corral store').length === 1 && spans('corral invalidate').length === 1, 5000, 'the store and invalidate spans')
    const [fill] = spans('corral fill')
    expect(fill?.attributes['corral.background']).toBe(true)
    expect(fill?.attributes['corral.stored']).toBe(true)
    expect(fill?.spanContext().traceId).toBe(job.spanContext().traceId)
    const [invalidate] = spans('corral invalidate')
    expect(parentOf(invalidate as ReadableSpan)).toBe(spanId(job))
    expect(invalidate?.attributes).toEqual({ 'corral.source': 'local', 'corral.keys': ['/items/9'], 'corral.removed': 1 })
  })

  it('a background refresh that fails: its revalidate span records the exception, status ERROR', async () => {
    instrument()
    const errors: CorralError[] = []
    const h = await setup({
      cacheOptions: { ttl: '5m', onError: (e) => errors.push(e) },
      routes: [
        {
          method: 'GET',
          path: '/items/:id',
          handler: (r) => {
            if (r.call > 1) throw new Error('origin down')
            return { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=1, stale-while-revalidate=60' }, body: 'v1' }
          },
        },
      ],
    })
    expect(h.status(await h.get('/items/3'))).toBe('MISS')
    h.clock.advance(2000)
    expect(h.status(await h.get('/items/3'))).toBe('STALE')
    await until(() => spans('corral revalidate').length === 1, 10_000, 'the refresh to end')
    const [revalidate] = spans('corral revalidate')
    if (revalidate === undefined) throw new Error('no revalidate span')
    expect(revalidate.attributes).toMatchObject({ 'url.path': '/items/3', 'corral.trigger': 'stale', 'corral.result': 'failed', 'corral.key': expect.any(String) })
    expect(revalidate.status.code).toBe(SpanStatusCode.ERROR)
    expect(revalidate.status.message).toMatch(/background refresh of \/items\/3 failed/)
    const exception = revalidate.events.find((e) => e.name === 'exception')
    expect(exception?.attributes?.['exception.type']).toBe('CORRAL_ERR_ORIGIN')
    // The stale hit's request began it.
    expect(serverSpans('/items/3').map(spanId)).toContain(parentOf(revalidate))
    expect(errors.some((e) => e instanceof OriginError)).toBe(true)
    // The replay's fill: the origin's 500, not stored.
    await until(() => spans('corral fill').some((s) => s.attributes['corral.background'] === true), 5000, "the replay's fill span")
    const replay = spans('corral fill').find((s) => s.attributes['corral.background'] === true)
    expect(replay?.attributes).toMatchObject({ 'http.response.status_code': 500, 'corral.stored': false })
  })

  it('ops: only the operations named are subscribed to; disable() unsubscribes from every channel', async () => {
    const otel = instrument({ tracerProvider: provider, ops: ['fill'] })
    const subscribed = (op: keyof typeof CHANNEL_NAMES): boolean => diagnostics.channel(`tracing:${CHANNEL_NAMES[op]}:start`).hasSubscribers
    expect(OPERATIONS.filter(subscribed)).toEqual(['fill'])
    const h = await setup({ routes: [{ method: 'GET', path: '/items/:id', handler: item }] })
    expect(h.status(await h.get('/items/1'))).toBe('MISS')
    expect(h.status(await h.get('/items/1'))).toBe('HIT')
    await until(() => spans('corral fill').length === 1, 5000, 'the fill span')
    expect(spans().map((s) => s.name)).toEqual(['corral fill'])

    otel.disable()
    otel.disable()
    for (const op of OPERATIONS) {
      for (const phase of ['start', 'end', 'asyncStart', 'asyncEnd', 'error']) expect(diagnostics.channel(`tracing:${CHANNEL_NAMES[op]}:${phase}`).hasSubscribers).toBe(false)
    }
    exporter.reset()
    expect(h.status(await h.get('/items/2'))).toBe('MISS')
    // Stored (its fill and store are over), and still no span.
    await until(async () => h.status(await h.get('/items/2')) === 'HIT', 5000, 'the entry to be stored')
    expect(spans()).toEqual([])
    expect(exporter.getFinishedSpans().length).toBeGreaterThan(0)
  })
})

describe('opentelemetry: options', () => {
  afterEach(() => {
    api.trace.disable()
  })

  it('the global tracer provider by default, even one registered after instrumentCorral', async () => {
    const otel = instrumentCorral()
    try {
      expect(api.trace.setGlobalTracerProvider(provider)).toBe(true)
      const cleanups: (() => Promise<void>)[] = []
      try {
        const h = await harnessFor(FASTIFY, cleanups)({ routes: [{ method: 'GET', path: '/items/:id', handler: item }] })
        expect(h.status(await h.get('/items/5'))).toBe('MISS')
        await until(() => spans('corral store').length === 1, 5000, 'the store span')
        expect(spans('corral lookup')).toHaveLength(1)
      } finally {
        await runCleanups(cleanups)
      }
    } finally {
      otel.disable()
    }
  })

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'yes', /expected the options of instrumentCorral to be an object, got 'yes'/],
    ['an unknown option', { tracerprovider: provider }, /unknown option options\.tracerprovider/],
    ['a provider without getTracer', { tracerProvider: {} }, /options\.tracerProvider to be an OpenTelemetry TracerProvider/],
    ['a tracer without startSpan', { tracer: provider }, /options\.tracer to be an OpenTelemetry Tracer/],
    ['both tracer and provider', { tracer, tracerProvider: provider }, /options\.tracer or options\.tracerProvider, not both/],
    ['ops not a list', { ops: 'fill' }, /options\.ops to be a non-empty list of operations \(lookup, fill, store, l2\.read, l2\.write, invalidate, revalidate\), got 'fill'/],
    ['ops empty', { ops: [] }, /options\.ops to be a non-empty list/],
    ['an unknown op', { ops: ['fill', 'hit'] }, /options\.ops to name operations among .*, got 'hit'/],
  ])('throws a ConfigError naming the option: %s', (_, options, message) => {
    expect(() => instrumentCorral(options as Parameters<typeof instrumentCorral>[0])).toThrow(ConfigError)
    expect(() => instrumentCorral(options as Parameters<typeof instrumentCorral>[0])).toThrow(message)
    // Nothing was subscribed by the failed calls.
    expect(OPERATIONS.some((op) => diagnostics.channel(`tracing:${CHANNEL_NAMES[op]}:start`).hasSubscribers)).toBe(false)
  })

  it('a signed URL: the query values the HTTP conventions name are redacted in url.query', async () => {
    const otel = instrumentCorral({ tracerProvider: provider, ops: ['lookup'] })
    const cleanups: (() => Promise<void>)[] = []
    try {
      const h = await harnessFor(FASTIFY, cleanups)({ routes: [{ method: 'GET', path: '/items/:id', handler: item }] })
      await h.get('/items/1?a=1&Signature=secret&sig=s2&b=Signature')
      await until(() => spans('corral lookup').length === 1, 5000, 'the lookup span')
      expect(spans('corral lookup')[0]?.attributes['url.query']).toBe('a=1&Signature=REDACTED&sig=REDACTED&b=Signature')
    } finally {
      await runCleanups(cleanups)
      otel.disable()
    }
  })
})

describe('opentelemetry: with Redis', () => {
  const redis = fileRedis()
  const { cleanups } = redis
  const doc = (r: OriginRequest): Reply => ({ headers: { 'content-type': 'text/plain' }, body: `doc ${r.url}` })

  it('l2.write on A and l2.read on B are CLIENT spans (Redis GET and SET); a paused Redis makes an l2.read span with status ERROR', async () => {
    const otel = instrumentCorral({ tracerProvider: provider })
    cleanups.push(async () => otel.disable())
    const ns = `otel-${randomBytes(5).toString('hex')}`
    const routes = [{ method: 'GET' as const, path: '/doc/:id', handler: doc }]
    // B's reads give up quickly, so that the paused Redis below fails one well within the test.
    const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns }, routes, factory: EXPRESS }, cleanups)
    const b = await instance('B', { cache: { redis: redis.server.url, namespace: ns, l2: { timeout: 200 } }, routes, factory: FASTIFY }, cleanups)
    await healthy([a, b], 5000)

    expect(xcache(await a.get('/doc/1'))).toBe('MISS')
    await until(() => spans('corral l2.write').some((s) => s.attributes['corral.result'] === 'stored'), 5000, "A's entry written to Redis")
    const write = spans('corral l2.write').find((s) => s.attributes['corral.result'] === 'stored') as ReadableSpan
    expect(write.kind).toBe(SpanKind.CLIENT)
    expect(write.attributes).toEqual({
      'db.system.name': 'redis', 'db.operation.name': 'SET', 'corral.key': expect.any(String), 'corral.result': 'stored', 'corral.bytes': 'doc /doc/1'.length,
    })

    await until(async () => xcache(await b.get('/doc/1')) === 'HIT', 5000, "A's entry read by B from Redis")
    const read = spans('corral l2.read').find((s) => s.attributes['corral.result'] === 'hit')
    expect(read?.kind).toBe(SpanKind.CLIENT)
    expect(read?.attributes).toEqual({ 'db.system.name': 'redis', 'db.operation.name': 'GET', 'corral.key': write.attributes['corral.key'], 'corral.result': 'hit', 'corral.bytes': 'doc /doc/1'.length })
    expect(read?.status.code).toBe(SpanStatusCode.UNSET)
    // Part of B's lookup, inside B's request.
    expect(serverSpans('/doc/1').map(spanId)).toContain(parentOf(read as ReadableSpan))

    await redis.server.pause(1500)
    const answered = b.get('/doc/2')
    await until(() => spans('corral l2.read').some((s) => s.status.code === SpanStatusCode.ERROR), 5000, 'a failed L2 read')
    const failed = spans('corral l2.read').find((s) => s.status.code === SpanStatusCode.ERROR) as ReadableSpan
    expect(failed.attributes['corral.result']).toBe('error')
    expect(failed.events.map((e) => e.name)).toEqual(['exception'])
    expect(failed.status.message).toEqual(expect.any(String))
    // The request is still answered, from the origin.
    expect((await answered).status).toBe(200)
  }, 30_000)
})
