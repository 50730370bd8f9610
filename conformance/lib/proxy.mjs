// One reverse-proxy app with Corral in front, in a process of its own:
//
//   node conformance/lib/proxy.mjs <express|fastify|node> <origin URL> [createCache options as JSON]
//
// The cache is `createCache()` as it comes unless options are given: in memory, no default `ttl`
// (so a response without explicit freshness is not stored), applied app-wide. Every request (method, path and query,
// fields, body) is forwarded to the origin (forward.mjs), and the origin's status, fields and
// body are streamed back through the framework, so Corral sees a response as it would from any
// handler.
//
// Stdout carries one JSON object per line: first {"event":"listening","port":N}, then one per
// thing that went wrong (the origin unreachable, a body cut short, an error Corral reported, an
// error the framework caught, a crash). The harness records them with the results.
import http from 'node:http'
import { pipeline } from 'node:stream'
import { forward, downstreamHeaders, UPSTREAM_TIMEOUT_MS } from './forward.mjs'
import { createCache } from '../../packages/core/dist/index.js'

const [adapter, originArg, cacheOptionsArg] = process.argv.slice(2)
if (!['express', 'fastify', 'node'].includes(adapter) || originArg === undefined) {
  console.error('usage: node conformance/lib/proxy.mjs <express|fastify|node> <origin URL> [cache options JSON]')
  process.exit(2)
}
const origin = new URL(originArg)
// With a timeout set, the agent also follows the origin's `Keep-Alive: timeout=5` hint and drops
// an idle connection a second before the origin would, so it never reuses one being closed.
const agent = new http.Agent({ keepAlive: true, timeout: UPSTREAM_TIMEOUT_MS })
// Longer than any pause in the suite (3 s) and than the client's own idle timeout (Node's global
// agent: 5 s), so that the client, not the proxy, closes idle connections.
const KEEP_ALIVE_MS = 30_000

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

function describe(err) {
  return { name: err?.name, code: err?.code, message: String(err?.message ?? err) }
}

/** Which suite test a request belongs to (the suite's client sends these fields). */
function whose(req) {
  return { testId: req.headers['test-id'], reqNum: req.headers['req-num'], method: req.method, url: req.url }
}

process.on('uncaughtException', (err) => {
  emit({ event: 'crash', ...describe(err), stack: String(err?.stack ?? '').split('\n').slice(0, 8).join('\n') })
  process.exit(70)
})
process.on('unhandledRejection', (err) => {
  emit({ event: 'crash', kind: 'unhandledRejection', ...describe(err), stack: String(err?.stack ?? '').split('\n').slice(0, 8).join('\n') })
  process.exit(70)
})

const cache = createCache({
  ...(cacheOptionsArg === undefined ? {} : JSON.parse(cacheOptionsArg)),
  // Observation only: Corral reports the errors it swallows here instead of to process warnings.
  // An OriginError is the origin failing where a stale entry answered instead (stale-if-error:
  // the suite's stale-sie-* tests make their origin fail on purpose).
  onError: (err) =>
    emit(err?.code === 'CORRAL_ERR_ORIGIN' ? { event: 'origin-error, stale served', expected: true, ...describe(err) } : { event: 'corral-error', ...describe(err) }),
})

/** The origin could not be asked or broke off before its head: answer as a gateway does. */
function gatewayError(req, err) {
  emit({ event: 'upstream-error', ...whose(req), ...describe(err) })
  const status = err?.code === 'ETIMEDOUT' ? 504 : 502
  return { status, body: `corral-conformance proxy: origin ${status === 504 ? 'timed out' : 'failed'} (${err?.code ?? err?.message})\n` }
}

/** express and node:http: write the origin's response through the Node response Corral wraps. */
function relay(req, res) {
  forward(req, res, origin, req.url, agent).then(
    (upstream) => {
      res.statusCode = upstream.statusCode
      for (const [name, value] of downstreamHeaders(upstream)) res.setHeader(name, value)
      // On an error either side, pipeline destroys the other: the client sees a cut-short body.
      pipeline(upstream, res, (err) => {
        if (err) emit({ event: 'body-error', ...whose(req), ...describe(err) })
      })
    },
    (err) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      const { status, body } = gatewayError(req, err)
      res.statusCode = status
      res.setHeader('content-type', 'text/plain')
      res.end(body)
    },
  )
}

async function expressApp() {
  const { default: express } = await import('express5')
  const { corral } = await import('../../packages/express/dist/index.js')
  const app = express()
  app.disable('x-powered-by')
  app.use(corral(cache))
  app.use((req, res) => relay(req, res))
  app.use((err, req, _res, next) => {
    emit({ event: 'framework-error', ...whose(req), ...describe(err) })
    next(err)
  })
  const server = http.createServer(app)
  server.keepAliveTimeout = KEEP_ALIVE_MS
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server.address().port
}

async function nodeApp() {
  const { cached } = await import('../../packages/node/dist/index.js')
  const server = http.createServer(cached(cache, relay))
  server.keepAliveTimeout = KEEP_ALIVE_MS
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server.address().port
}

async function fastifyApp() {
  const { default: Fastify } = await import('fastify')
  const { default: corral } = await import('../../packages/fastify/dist/index.js')
  const app = Fastify({ keepAliveTimeout: KEEP_ALIVE_MS })
  // Every method Node parses reaches the proxy (the suite sends M-SEARCH, for one), not only
  // those Fastify knows. CONNECT never reaches a request handler.
  for (const method of http.METHODS) {
    if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }
  // Bodies are forwarded as they arrive: no parser may read them first, whatever their type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  app.addHook('onError', (request, _reply, err, done) => {
    emit({ event: 'framework-error', ...whose(request.raw), ...describe(err) })
    done()
  })
  await app.register(corral, { cache })
  app.all('/*', (request, reply) => {
    const req = request.raw
    forward(req, reply.raw, origin, req.url, agent).then(
      (upstream) => {
        const status = upstream.statusCode
        // Fastify's code() takes 100-599; the suite's origin answers 999 to say "that request
        // should have been conditional", and the client must see it as the others do.
        if (status >= 100 && status <= 599) reply.code(status)
        else reply.raw.statusCode = status
        for (const [name, value] of downstreamHeaders(upstream)) reply.header(name, value)
        upstream.on('error', (err) => emit({ event: 'body-error', ...whose(req), ...describe(err) }))
        reply.send(upstream)
      },
      (err) => {
        if (reply.sent || reply.raw.headersSent) {
          reply.raw.destroy()
          return
        }
        const { status, body } = gatewayError(req, err)
        reply.code(status).type('text/plain').send(body)
      },
    )
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app.server.address().port
}

const port = await { express: expressApp, fastify: fastifyApp, node: nodeApp }[adapter]()
emit({ event: 'listening', port })
