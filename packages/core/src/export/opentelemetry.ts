/**
 * `@corral/core/opentelemetry`: each cache operation as an OpenTelemetry span.
 *
 * Built on the `node:diagnostics_channel` tracing channels every cache publishes on (see
 * `CHANNEL_NAMES`), with `@opentelemetry/api` only: the app brings the SDK, its exporter, and the
 * context manager that makes `context.active()` the request's server span.
 */
import diagnostics from 'node:diagnostics_channel'
import { SpanKind, SpanStatusCode, context, diag, trace, type Attributes, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api'
import { describeValue } from '../model/duration.js'
import { ConfigError } from '../model/errors.js'
import { rejectUnknown } from '../model/options.js'
import { OPERATIONS, type CacheEvent, type Operation } from '../observe/events.js'
import { CHANNEL_NAMES } from '../observe/observer.js'

/** The instrumentation scope of Corral's spans. */
export const TRACER_NAME = '@corral/core'

export interface InstrumentCorralOptions {
  /**
   * The provider Corral's tracer comes from (`getTracer('@corral/core')`). Not with `tracer`.
   * @default the global provider (`trace.getTracerProvider()`), as the SDK registers it, looked
   * up again when it changes: the SDK may be started before or after this call (operations
   * before it make no span)
   * @example instrumentCorral({ tracerProvider: sdk.tracerProvider })
   */
  tracerProvider?: TracerProvider
  /**
   * The tracer Corral makes its spans with, instead of one from a provider. Not with
   * `tracerProvider`.
   * @default tracerProvider.getTracer('@corral/core')
   */
  tracer?: Tracer
  /**
   * The operations that become spans. Corral is only subscribed to these: for the others it makes
   * no event at all (leave out `lookup` and a hit answered from memory costs nothing).
   * @default every operation: ['lookup', 'fill', 'store', 'l2.read', 'l2.write', 'invalidate', 'revalidate']
   * @example instrumentCorral({ ops: ['fill', 'l2.read', 'l2.write', 'revalidate'] })
   */
  ops?: readonly Operation[]
}

/** What `instrumentCorral` returns. */
export interface CorralInstrumentation {
  /**
   * Unsubscribes from every channel: no span is made after it. Spans of operations still under
   * way are dropped (never ended, so never exported). Calling it again does nothing.
   */
  disable(): void
}

const OPTION_KEYS: ReadonlySet<string> = new Set(['tracerProvider', 'tracer', 'ops'])

/** The span kind of each operation: L2 calls leave the process, the rest happen in it. */
const KINDS: Readonly<Record<Operation, SpanKind>> = {
  lookup: SpanKind.INTERNAL,
  fill: SpanKind.INTERNAL,
  store: SpanKind.INTERNAL,
  'l2.read': SpanKind.CLIENT,
  'l2.write': SpanKind.CLIENT,
  invalidate: SpanKind.INTERNAL,
  revalidate: SpanKind.INTERNAL,
}

/**
 * Turns every cache operation of the process into a span named `corral <op>` (`corral lookup`,
 * `corral fill`, ...), a child of the context active when the operation began (with an async
 * context manager, the request's server span), with the HTTP and database semantic conventions
 * where they apply and Corral's own attributes under `corral.*`.
 *
 * The diagnostics channels carry the operations of every cache in the process: call this once,
 * at start-up, not once per cache (twice makes every span twice).
 *
 * @example
 * import { instrumentCorral } from '@corral/core/opentelemetry'
 * const otel = instrumentCorral() // after the OpenTelemetry SDK is set up
 * // ... at shutdown
 * otel.disable()
 */
export function instrumentCorral(options?: InstrumentCorralOptions): CorralInstrumentation {
  const { tracer: given, ops } = resolveOptions(options)
  const tracer: () => Tracer = given === undefined ? globalTracer() : () => given
  /** The span of each operation under way; an event whose end never comes takes its span with it. */
  const spans = new WeakMap<CacheEvent, Span>()

  const start = (message: unknown): void => {
    const event = message as CacheEvent
    try {
      const span = tracer().startSpan(`corral ${event.op}`, { kind: KINDS[event.op], attributes: startAttributes(event), startTime: event.startedAt }, context.active())
      // A span sampled out is a no-op: nothing to keep or end.
      if (span.isRecording()) spans.set(event, span)
    } catch (err) {
      diag.error(`${TRACER_NAME}: starting a span for ${event.op} failed`, err)
    }
  }
  const failed = (message: unknown): void => {
    const event = message as CacheEvent
    const span = spans.get(event)
    if (span === undefined) return
    try {
      const err = event.error
      span.recordException(err instanceof Error ? err : String(err))
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) })
    } catch (e) {
      diag.error(`${TRACER_NAME}: recording an error on the span of ${event.op} failed`, e)
    }
  }
  const completed = (message: unknown): void => {
    const event = message as CacheEvent
    const span = spans.get(event)
    if (span === undefined) return
    spans.delete(event)
    try {
      span.setAttributes(endAttributes(event))
      // The request skipped the cache because something in it failed (reported through onError).
      if (event.op === 'lookup' && event.reason === 'error' && event.error === undefined) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the lookup failed; the request skipped the cache' })
      }
      span.end(event.startedAt + event.durationMs)
    } catch (err) {
      diag.error(`${TRACER_NAME}: ending the span of ${event.op} failed`, err)
    }
  }
  // `end` is also published when an operation's synchronous part returns and it goes on (its
  // completion then comes as `asyncEnd`): only an event that has ended completes the span.
  const ended = (message: unknown): void => {
    if (hasEnded(message as CacheEvent)) completed(message)
  }

  const subscriptions: [string, (message: unknown, name: string | symbol) => void][] = []
  for (const op of ops) {
    const name = CHANNEL_NAMES[op]
    subscriptions.push([`tracing:${name}:start`, start], [`tracing:${name}:end`, ended], [`tracing:${name}:asyncEnd`, completed], [`tracing:${name}:error`, failed])
  }
  for (const [channel, fn] of subscriptions) diagnostics.subscribe(channel, fn)

  let enabled = true
  return {
    disable() {
      if (!enabled) return
      enabled = false
      for (const [channel, fn] of subscriptions) diagnostics.unsubscribe(channel, fn)
    },
  }
}

/**
 * The global provider's tracer, got again when another provider is registered. Bound once, a
 * tracer got before the SDK's registration would miss it when the app has two instances of the
 * API (its ESM and CommonJS builds, each with its own proxy provider).
 */
function globalTracer(): () => Tracer {
  let provider: TracerProvider | undefined
  let tracer: Tracer | undefined
  return () => {
    const current = trace.getTracerProvider()
    if (current !== provider || tracer === undefined) {
      provider = current
      tracer = current.getTracer(TRACER_NAME)
    }
    return tracer
  }
}

function resolveOptions(options: InstrumentCorralOptions | undefined): { tracer: Tracer | undefined; ops: readonly Operation[] } {
  if (options === undefined) return { tracer: undefined, ops: OPERATIONS }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`expected the options of instrumentCorral to be an object, got ${describeValue(options)}`)
  }
  rejectUnknown(options, OPTION_KEYS, 'options.')
  const { tracerProvider, tracer, ops } = options
  if (tracerProvider !== undefined && tracer !== undefined) {
    throw new ConfigError('expected options.tracer or options.tracerProvider, not both: the tracer is used as it is')
  }
  if (tracerProvider !== undefined && !hasMethod(tracerProvider, 'getTracer')) {
    throw new ConfigError(`expected options.tracerProvider to be an OpenTelemetry TracerProvider (with getTracer()), got ${describeValue(tracerProvider)}`)
  }
  if (tracer !== undefined && !hasMethod(tracer, 'startSpan')) {
    throw new ConfigError(`expected options.tracer to be an OpenTelemetry Tracer (with startSpan()), got ${describeValue(tracer)}`)
  }
  return {
    tracer: tracer ?? tracerProvider?.getTracer(TRACER_NAME),
    ops: ops === undefined ? OPERATIONS : operations(ops),
  }
}

function operations(ops: unknown): readonly Operation[] {
  const known = OPERATIONS.join(', ')
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new ConfigError(`expected options.ops to be a non-empty list of operations (${known}), got ${describeValue(ops)}`)
  }
  for (const op of ops) {
    if (!OPERATIONS.includes(op as Operation)) throw new ConfigError(`expected options.ops to name operations among ${known}, got ${describeValue(op)}`)
  }
  return [...new Set(ops as Operation[])]
}

function hasMethod(value: unknown, method: string): boolean {
  return typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function'
}

/**
 * Whether an event published on `end` has ended (rather than gone on asynchronously): `durationMs`
 * is 0 until it ends, and the result fields are set only then.
 */
function hasEnded(e: CacheEvent): boolean {
  if (e.durationMs > 0) return true
  switch (e.op) {
    case 'lookup':
    case 'store':
    case 'l2.read':
    case 'l2.write':
    case 'revalidate':
      return e.result !== undefined
    default:
      return false
  }
}

/** What is known when the operation begins (so that samplers see it too). */
function startAttributes(e: CacheEvent): Attributes {
  const a: Attributes = {}
  switch (e.op) {
    case 'lookup':
      a['http.request.method'] = e.method
      setUrl(a, e.url)
      setRoute(a, e.route)
      if (e.again) a['corral.again'] = true
      break
    case 'fill':
      a['http.request.method'] = e.method
      setUrl(a, e.url)
      setRoute(a, e.route)
      a['corral.key'] = e.key
      a['corral.background'] = e.background
      break
    case 'store':
      setRoute(a, e.route)
      a['corral.key'] = e.key
      a['corral.bytes'] = e.bytes
      break
    case 'l2.read':
    case 'l2.write':
      // https://opentelemetry.io/docs/specs/semconv/database/redis/ (the one shared store Corral ships)
      a['db.system.name'] = 'redis'
      a['db.operation.name'] = e.op === 'l2.read' ? 'GET' : 'SET'
      a['corral.key'] = e.key
      break
    case 'invalidate':
      a['corral.source'] = e.source
      if (e.all) a['corral.all'] = true
      if (e.soft) a['corral.soft'] = true
      if (e.keys.length > 0) a['corral.keys'] = [...e.keys]
      if (e.tags.length > 0) a['corral.tags'] = [...e.tags]
      if (e.prefixes.length > 0) a['corral.prefixes'] = [...e.prefixes]
      break
    case 'revalidate':
      setUrl(a, e.url)
      setRoute(a, e.route)
      if (e.key !== undefined) a['corral.key'] = e.key
      a['corral.trigger'] = e.trigger
      break
  }
  return a
}

/** What the operation's end tells. */
function endAttributes(e: CacheEvent): Attributes {
  const a: Attributes = {}
  switch (e.op) {
    case 'lookup':
      if (e.key !== undefined) a['corral.key'] = e.key
      if (e.result !== undefined) a['corral.result'] = e.result
      if (e.reason !== undefined) a['corral.reason'] = e.reason
      a['corral.collapsed'] = e.collapsed
      break
    case 'fill':
      // 0: the origin sent no head (it failed, or the client went away first).
      if (e.status > 0) a['http.response.status_code'] = e.status
      a['corral.stored'] = e.stored
      if (e.reason !== undefined) a['corral.reason'] = e.reason
      a['corral.bytes'] = e.bytes
      break
    case 'store':
    case 'revalidate':
      if (e.result !== undefined) a['corral.result'] = e.result
      break
    case 'l2.read':
    case 'l2.write':
      if (e.result !== undefined) a['corral.result'] = e.result
      a['corral.bytes'] = e.bytes
      break
    case 'invalidate':
      // Only a local invalidation knows what it removed.
      if (e.source === 'local') a['corral.removed'] = e.removed
      break
  }
  return a
}

/** `http.route` is the matched pattern (or the route's name); '*' means none was known. */
function setRoute(a: Attributes, route: string): void {
  if (route !== '*') a['http.route'] = route
}

/**
 * Query parameters whose values the HTTP semantic conventions say to redact by default: signed
 * URLs carry credentials in them (https://opentelemetry.io/docs/specs/semconv/http/http-spans/).
 */
const REDACTED_PARAMS: ReadonlySet<string> = new Set(['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature'])

/** `url.path` and `url.query` (without its `?`; absent when the URL has none). */
function setUrl(a: Attributes, url: string): void {
  const q = url.indexOf('?')
  if (q === -1) {
    a['url.path'] = url
  } else {
    a['url.path'] = url.slice(0, q)
    a['url.query'] = redactQuery(url.slice(q + 1))
  }
}

function redactQuery(query: string): string {
  if (!/(?:^|&)(?:AWSAccessKeyId|Signature|sig|X-Goog-Signature)=/.test(query)) return query
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      return eq !== -1 && REDACTED_PARAMS.has(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=REDACTED` : pair
    })
    .join('&')
}
