import diagnostics, { type TracingChannel } from 'node:diagnostics_channel'
import { CallbackError, type CorralError } from '../model/errors.js'
import type { RequestView } from '../model/key.js'
import type { ResolvedRoute } from '../model/options.js'
import { OPERATIONS, type CacheEvent, type CachePlugin, type Operation } from './events.js'

/**
 * The `node:diagnostics_channel` tracing channel of each operation. Subscribers of
 * `tracing:corral:<op>:start` etc. receive the operation's event as the context, in the order
 * `TracingChannel.tracePromise` would publish them: `start` when it begins; then `end` when it
 * completes in the same turn (a hit answered from memory) or, for an operation that goes on
 * asynchronously, `end` when its synchronous part returns and later `asyncStart` and `asyncEnd`
 * when it completes; `error` just before the completion when it failed.
 */
export const CHANNEL_NAMES: Readonly<Record<Operation, string>> = Object.freeze({
  lookup: 'corral:lookup',
  fill: 'corral:fill',
  store: 'corral:store',
  'l2.read': 'corral:l2.read',
  'l2.write': 'corral:l2.write',
  invalidate: 'corral:invalidate',
  revalidate: 'corral:revalidate',
})

type Channels = TracingChannel<unknown, CacheEvent>

/** Made once per process: channels are global by name, and every cache publishes on the same ones. */
const CHANNELS = Object.fromEntries(
  Object.entries(CHANNEL_NAMES).map(([op, name]) => [op, diagnostics.tracingChannel<unknown, CacheEvent>(name)]),
) as unknown as Record<Operation, Channels>

/** A route's name in events: its `name`, else the pattern the adapter matched, else '*'. */
export function routeLabel(route: ResolvedRoute, view: RequestView): string {
  return route.name ?? view.route ?? '*'
}

/** Whether anything subscribed to a tracing channel (`hasSubscribers` on Node ≥ 20.13, else its parts). */
function subscribed(ch: Channels): boolean {
  const all = (ch as { hasSubscribers?: boolean }).hasSubscribers
  if (all !== undefined) return all
  return ch.start.hasSubscribers || ch.end.hasSubscribers || ch.asyncEnd.hasSubscribers || ch.error.hasSubscribers
}

/**
 * Hands each operation's event to the plugins and the diagnostics channels. Callers ask
 * `watching(op)` first and make no event when it is false: with no plugin and no subscriber, the
 * cost of observation is that one check.
 */
export class Observer {
  private readonly plugins: readonly CachePlugin[]
  /** The plugins that want each operation. */
  private readonly byOp: Record<Operation, readonly CachePlugin[]>

  constructor(
    plugins: readonly CachePlugin[],
    private readonly report: (error: CorralError) => void,
  ) {
    this.plugins = plugins
    this.byOp = Object.fromEntries(OPERATIONS.map((op) => [op, plugins.filter((p) => p.ops === undefined || p.ops.includes(op))])) as unknown as Record<Operation, readonly CachePlugin[]>
  }

  /** Whether an event for `op` would reach anyone. */
  watching(op: Operation): boolean {
    return this.byOp[op].length > 0 || subscribed(CHANNELS[op])
  }

  /**
   * The operation began: its plugins' `before`, then `start`. Answers the event the operation
   * fills in: `event`, or a copy of it when a plugin froze or sealed it (reported).
   */
  begin<E extends CacheEvent>(event: E): E {
    const plugins = this.byOp[event.op]
    for (const p of plugins) {
      if (p.before === undefined) continue
      try {
        p.before(event)
      } catch (err) {
        this.failed(p, 'before', event, err)
      }
    }
    if (plugins.length > 0 && !Object.isExtensible(event)) {
      this.report(new CallbackError(`a plugin froze or sealed the ${event.op} event; the operation goes on with a copy of it`))
      event = { ...event }
    }
    const ch = CHANNELS[event.op]
    if (ch.start.hasSubscribers) ch.start.publish(event)
    return event
  }

  /** The operation's synchronous part returned, and it goes on: `end` now, `asyncStart`/`asyncEnd` at its completion. */
  suspend(event: CacheEvent): void {
    const ch = CHANNELS[event.op]
    if (ch.end.hasSubscribers) ch.end.publish(event)
  }

  /**
   * The operation completed (its result fields set by the caller): `error` if it failed, the
   * completion (`asyncStart` and `asyncEnd` when `suspend` was called for it, else `end`), then its
   * plugins' `after`.
   */
  end(event: CacheEvent, suspended = true): void {
    event.durationMs = performance.now() - event.startedAt
    const ch = CHANNELS[event.op]
    if (event.error !== undefined && ch.error.hasSubscribers) ch.error.publish(event)
    if (suspended) {
      if (ch.asyncStart.hasSubscribers) ch.asyncStart.publish(event)
      if (ch.asyncEnd.hasSubscribers) ch.asyncEnd.publish(event)
    } else if (ch.end.hasSubscribers) ch.end.publish(event)
    for (const p of this.byOp[event.op]) {
      if (p.after === undefined) continue
      try {
        p.after(event)
      } catch (err) {
        this.failed(p, 'after', event, err)
      }
    }
  }

  /** Closes the plugins (`cache.close()`); a plugin whose `close` throws is reported. */
  close(): void {
    for (const p of this.plugins) {
      try {
        p.close?.()
      } catch (err) {
        this.report(new CallbackError(`plugin ${p.name}: close threw`, err))
      }
    }
  }

  private failed(p: CachePlugin, hook: string, event: CacheEvent, err: unknown): void {
    this.report(new CallbackError(`plugin ${p.name}: ${hook}(${event.op}) threw; the operation went on`, err))
  }
}
