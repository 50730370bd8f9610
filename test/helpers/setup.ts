import { createCache, type Cache, type CacheOptions } from '@corral/core'
import { send, sendMany, type Res, type SendOptions } from './http.js'
import type { AdapterFactory, AppHandle, AppSpec } from './scenario.js'

/** A clock the cache reads, moved by hand so tests expire entries without sleeping. */
export class ManualClock {
  private t = Date.now()
  readonly now = (): number => this.t
  advance(ms: number): void {
    this.t += ms
  }
}

export interface Harness {
  readonly cache: Cache
  readonly app: AppHandle
  readonly clock: ManualClock
  /** Lower-case name of the cache status header. */
  readonly statusHeader: string
  req(path: string, options?: SendOptions): Promise<Res>
  get(path: string, headers?: Readonly<Record<string, string>>): Promise<Res>
  many(n: number, path: string, options?: SendOptions): Promise<Res[]>
  /** The cache status header of a response (HIT, MISS, BYPASS, ...). */
  status(res: Res): string | undefined
  /** See `AppHandle.calls`. */
  calls(route?: string): number
}

export interface HarnessSpec extends Omit<AppSpec, 'cache'> {
  /** createCache options; `ttl: '5m'` and a manual clock unless given. */
  readonly cacheOptions?: CacheOptions
}

/**
 * Creates a fresh cache and app for one test and registers their teardown, so tests never
 * share entries, flights or counters.
 */
export function harnessFor(factory: AdapterFactory, cleanups: (() => Promise<void>)[]) {
  return async function setup(spec: HarnessSpec): Promise<Harness> {
    const clock = new ManualClock()
    const cache = createCache({ ttl: '5m', now: clock.now, ...spec.cacheOptions })
    cleanups.push(() => cache.close())
    const app = await factory.createApp({ cache, defaults: spec.defaults, trustProxy: spec.trustProxy, routes: spec.routes })
    cleanups.push(() => app.close())
    const named = spec.cacheOptions?.cacheStatusHeader
    const statusHeader = (named === false || named === undefined ? 'x-cache' : named).toLowerCase()
    return {
      cache,
      app,
      clock,
      statusHeader,
      req: (path, options) => send(app.url, path, options),
      get: (path, headers) => send(app.url, path, { headers }),
      many: (n, path, options) => sendMany(n, app.url, path, options),
      status: (res) => {
        const v = res.headers[statusHeader]
        return Array.isArray(v) ? v.join(', ') : v
      },
      calls: (route) => app.calls(route),
    }
  }
}

/** Runs cleanups in reverse order of registration; the app closes before its cache. */
export async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  const errors: unknown[] = []
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c()
    } catch (err) {
      errors.push(err)
    }
  }
  if (errors.length > 0) throw errors[0]
}
