import { InternalError, type CorralError } from '../model/errors.js'
import type { CacheEvent, CachePlugin, CorralLogger, Operation } from './events.js'

/** Operations the slow log times: everything but the lookup, so that a hit from memory costs nothing. */
const SLOW_OPS: readonly Operation[] = ['fill', 'store', 'l2.read', 'l2.write', 'invalidate', 'revalidate']

/**
 * The built-in plugin behind `slowMs`: an operation that took longer is logged at `warn`, with its
 * key, route and timing. The logger is read when it logs (the Fastify plugin may give one later).
 */
export function slowLog(slowMs: number, logger: (event: CacheEvent) => CorralLogger | undefined): CachePlugin {
  /** Fills and refreshes still running at slowMs: logged then (a hung origin never ends), and once more when they end. */
  const timers = new WeakMap<CacheEvent, NodeJS.Timeout>()
  return {
    name: 'corral:slow-log',
    ops: SLOW_OPS,
    before(event) {
      if (event.op !== 'fill' && event.op !== 'revalidate') return
      const timer = setTimeout(() => {
        timers.delete(event)
        logger(event)?.warn({ ...describe(event), durationMs: Math.round(performance.now() - event.startedAt) }, `corral: slow ${event.op}, still running after ${slowMs} ms`)
      }, slowMs)
      timer.unref()
      timers.set(event, timer)
    },
    after(event) {
      const timer = timers.get(event)
      if (timer !== undefined) {
        clearTimeout(timer)
        timers.delete(event)
      }
      if (event.durationMs < slowMs) return
      logger(event)?.warn(describe(event), `corral: slow ${event.op} (${Math.round(event.durationMs)} ms)`)
    },
  }
}

/** The fields of an event worth a log line. */
function describe(e: CacheEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { op: e.op, durationMs: Math.round(e.durationMs * 1000) / 1000 }
  if ('key' in e && e.key !== undefined) out.key = e.key
  if ('route' in e) out.route = e.route
  if ('url' in e) out.url = e.url
  switch (e.op) {
    case 'fill':
      out.status = e.status
      out.stored = e.stored
      if (e.reason !== undefined) out.reason = e.reason
      break
    case 'invalidate':
      Object.assign(out, { source: e.source, keys: e.keys.length, tags: e.tags.length, prefixes: e.prefixes.length, all: e.all, soft: e.soft, removed: e.removed })
      break
    case 'revalidate':
    case 'store':
    case 'l2.read':
    case 'l2.write':
    case 'lookup':
      out.result = e.result
      break
  }
  return out
}

/** Logs an error the cache swallowed: `error` for a bug in Corral, `warn` for the rest. */
export function logError(logger: CorralLogger, error: CorralError): void {
  const fields = { err: error, code: error.code }
  if (error instanceof InternalError) logger.error(fields, `corral: ${error.message}`)
  else logger.warn(fields, `corral: ${error.message}`)
}
