import * as http from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * A small steady-load generator for fault tests: `concurrency` loops, each sending one keep-alive
 * GET at a time (closed loop) against a rotating list of paths, until stopped. Every request is
 * recorded, so a test can look at what happened before, during and after a fault.
 *
 * Requests go to 127.0.0.1 only (the url a test app listens on) over one keep-alive agent.
 */

/** One request as the client saw it. */
export interface Sample {
  readonly path: string
  /** HTTP status, or 0 when the request failed without a response (see `error`). */
  readonly status: number
  /** Wall time from sending to the end of the body, in ms. */
  readonly ms: number
  /** The cache status header (X-Cache) of the response, if any. */
  readonly cache: string | undefined
  /** When the request was sent, in `performance.now()` ms (compare with `Load.now()`). */
  readonly start: number
  /** The response body, when `keepBodies` is set. */
  readonly body?: string
  /** Connection-level failure (ECONNRESET, socket hang up, ...). */
  readonly error?: string
}

export interface LoadOptions {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly paths: readonly string[]
  /** Concurrent request loops. */
  readonly concurrency: number
  /** Pause of each loop between two requests, in ms; keeps the load steady rather than flat out. @default 0 */
  readonly thinkMs?: number
  /** Per-request client deadline: a request still unanswered after this is recorded as an error. @default 10000 */
  readonly requestTimeoutMs?: number
  /** Keep every sample (default). False keeps only the running totals, for heap measurements. */
  readonly record?: boolean
  /** Keep response bodies in the samples, to check that the right body was served. @default false */
  readonly keepBodies?: boolean
  /** Name of the cache status header. @default 'x-cache' */
  readonly cacheHeader?: string
}

/** Totals kept even when samples are not recorded. */
export interface Totals {
  count: number
  non2xx: number
  errors: number
  maxMs: number
}

export interface Load {
  /** Samples so far (empty with `record: false`). */
  readonly samples: readonly Sample[]
  readonly totals: Readonly<Totals>
  /** `performance.now()`, the clock of `Sample.start`. */
  now(): number
  /**
   * Longest the event loop was blocked since the load started, in ms: time during which neither
   * the app nor the client could run (GC, a busy machine). Helps tell noise from a real wait.
   */
  loopDelayMaxMs(): number
  /** Stops every loop and resolves once their last requests are done; returns the samples. */
  stop(): Promise<readonly Sample[]>
}

export function startLoad(options: LoadOptions): Load {
  const { url, paths, concurrency } = options
  if (paths.length === 0) throw new Error('startLoad: paths is empty')
  const target = new URL(url)
  if (target.hostname !== '127.0.0.1') throw new Error(`startLoad: only 127.0.0.1 may be loaded, got ${url}`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const header = (options.cacheHeader ?? 'x-cache').toLowerCase()
  const record = options.record !== false
  const thinkMs = options.thinkMs ?? 0
  const timeoutMs = options.requestTimeoutMs ?? 10_000
  const samples: Sample[] = []
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  const totals: Totals = { count: 0, non2xx: 0, errors: 0, maxMs: 0 }
  let stopped = false
  let next = 0

  const one = (path: string): Promise<Sample> =>
    new Promise((resolve) => {
      const start = performance.now()
      let settled = false
      const done = (s: Omit<Sample, 'path' | 'start' | 'ms'>) => {
        if (settled) return
        settled = true
        resolve({ path, start, ms: performance.now() - start, ...s })
      }
      const req = http.get({ host: target.hostname, port: target.port, path, agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const v = res.headers[header]
          done({
            status: res.statusCode ?? 0,
            cache: Array.isArray(v) ? v.join(', ') : v,
            ...(options.keepBodies ? { body: Buffer.concat(chunks).toString('utf8') } : {}),
          })
        })
        res.on('error', (err) => done({ status: 0, cache: undefined, error: err.message }))
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response within ${timeoutMs} ms`)))
      req.on('error', (err) => done({ status: 0, cache: undefined, error: err.message }))
    })

  const loop = async (): Promise<void> => {
    while (!stopped) {
      const path = paths[next++ % paths.length] as string
      const s = await one(path)
      totals.count++
      if (s.error !== undefined) totals.errors++
      else if (s.status < 200 || s.status > 299) totals.non2xx++
      if (s.ms > totals.maxMs) totals.maxMs = s.ms
      if (record) samples.push(s)
      if (thinkMs > 0 && !stopped) await new Promise((r) => setTimeout(r, thinkMs))
    }
  }

  const loops = Array.from({ length: concurrency }, () => loop())
  return {
    samples,
    totals,
    now: () => performance.now(),
    loopDelayMaxMs: () => loopDelay.max / 1e6,
    async stop() {
      stopped = true
      await Promise.all(loops)
      loopDelay.disable()
      agent.destroy()
      return samples
    },
  }
}

/** The `p`-th percentile (0–100) of `values`, nearest-rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] as number
}

export interface Summary {
  readonly n: number
  /** Responses with a status outside 200–299. */
  readonly non2xx: number
  /** Requests that got no response at all. */
  readonly errors: number
  readonly hits: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export function summarize(samples: readonly Sample[]): Summary {
  const ms = samples.map((s) => s.ms)
  return {
    n: samples.length,
    non2xx: samples.filter((s) => s.error === undefined && (s.status < 200 || s.status > 299)).length,
    errors: samples.filter((s) => s.error !== undefined).length,
    hits: samples.filter((s) => s.cache === 'HIT').length,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    max: ms.length === 0 ? Number.NaN : ms.reduce((m, v) => (v > m ? v : m), Number.NEGATIVE_INFINITY),
  }
}

/** Samples sent in [from, to) (`performance.now()` ms). */
export function between(samples: readonly Sample[], from: number, to = Number.POSITIVE_INFINITY): Sample[] {
  return samples.filter((s) => s.start >= from && s.start < to)
}

/** Samples grouped into consecutive windows of `windowMs` from `from` (default: the first sample). */
export function byWindow(samples: readonly Sample[], windowMs: number, from?: number): { start: number; samples: Sample[] }[] {
  if (samples.length === 0) return []
  const t0 = from ?? samples.reduce((m, s) => Math.min(m, s.start), Number.POSITIVE_INFINITY)
  const windows: { start: number; samples: Sample[] }[] = []
  for (const s of samples) {
    if (s.start < t0) continue
    const i = Math.floor((s.start - t0) / windowMs)
    while (windows.length <= i) windows.push({ start: t0 + windows.length * windowMs, samples: [] })
    windows[i]?.samples.push(s)
  }
  return windows
}

/** `n=1234 non2xx=0 err=0 hits=1000 p50=1.2ms p99=8.0ms max=20.1ms` */
export function formatSummary(s: Summary): string {
  const f = (v: number) => `${v.toFixed(1)}ms`
  return `n=${s.n} non2xx=${s.non2xx} err=${s.errors} hits=${s.hits} p50=${f(s.p50)} p99=${f(s.p99)} max=${f(s.max)}`
}
