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
  /**
   * With `record: false`, samples slower than this are still kept (in `slow`), so that a test can
   * check each of them against the event-loop stalls it overlapped. @default 100
   */
  readonly keepSlowerThanMs?: number
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
  /** With `record: false`: the samples slower than `keepSlowerThanMs`. With `record: true`: empty (see `samples`). */
  readonly slow: readonly Sample[]
  readonly totals: Readonly<Totals>
  /** `performance.now()`, the clock of `Sample.start`. */
  now(): number
  /**
   * Longest the event loop was blocked since the load started, in ms: time during which neither
   * the app nor the client could run (GC, a busy machine). Helps tell noise from a real wait.
   */
  loopDelayMaxMs(): number
  /**
   * How long the event loop was stalled while `sample` was under way, in ms (see `watchEventLoop`):
   * time during which neither the app nor the client could make progress on it.
   */
  stalledDuring(sample: Pick<Sample, 'start' | 'ms'>, minMs?: number): number
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
  const keepSlowerThanMs = options.keepSlowerThanMs ?? 100
  const samples: Sample[] = []
  const slow: Sample[] = []
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  const stalls = watchEventLoop()
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
      else if (s.ms > keepSlowerThanMs) slow.push(s)
      if (thinkMs > 0 && !stopped) await new Promise((r) => setTimeout(r, thinkMs))
    }
  }

  const loops = Array.from({ length: concurrency }, () => loop())
  return {
    samples,
    slow,
    totals,
    now: () => performance.now(),
    loopDelayMaxMs: () => loopDelay.max / 1e6,
    stalledDuring: (sample, minMs) => stalls.stalledMs(sample.start, sample.start + sample.ms, minMs),
    async stop() {
      stopped = true
      await Promise.all(loops)
      loopDelay.disable()
      stalls.stop()
      agent.destroy()
      return samples
    },
  }
}

/** A timeline of event-loop stalls (see `watchEventLoop`). */
export interface LoopWatch {
  /**
   * Total time within [from, to) (`performance.now()` ms) during which the loop was stalled, counting
   * only stalls of at least `minMs` (default: the watch's `minStallMs`).
   */
  stalledMs(from: number, to: number, minMs?: number): number
  /** Longest single stall so far, in ms. */
  maxMs(): number
  stop(): void
}

/**
 * Records when the event loop was stalled: a timer asks to run every `resolutionMs`; when it runs
 * late, the loop was busy or descheduled (GC, a long callback, another process on the core) for
 * the difference, and that interval is recorded. Unlike `monitorEventLoopDelay`'s histogram this
 * says *when*, so a slow request can be compared with the stalls it overlapped: a request that
 * waited on something (a lock, a Redis deadline) while the loop was free is not explained by them.
 * Stalls are measured with a resolution of about `resolutionMs`; the interval is placed at the end
 * of the gap (the loop ran the timer as soon as it could).
 *
 * By default only stalls of at least `minStallMs` (two timer periods) count. A loop kept busy by
 * many requests runs every timer a few ms late; counting that as a stall would let it excuse a
 * request that was in fact waiting on something (on a loaded 2-core machine it added up to half of
 * the run). What is left below the threshold is the ordinary cost of a busy loop, which a bound on
 * request latency has to allow for anyway.
 */
export function watchEventLoop(resolutionMs = 10, minStallMs = 2 * resolutionMs): LoopWatch {
  const from: number[] = []
  const to: number[] = []
  let max = 0
  let last = performance.now()
  let stopped = false
  const timer = setInterval(() => {
    const now = performance.now()
    const late = now - last - resolutionMs
    // Below a millisecond is timer jitter, not a stall.
    if (late > 1) {
      from.push(now - late)
      to.push(now)
      if (late > max) max = late
    }
    last = now
  }, resolutionMs)
  timer.unref()
  return {
    stalledMs(a, b, minMs = minStallMs) {
      // The stall the loop is in right now has not been recorded yet: count it up to now.
      const now = performance.now()
      const open = stopped ? 0 : Math.max(0, now - last - resolutionMs)
      let total = open > 1 && open >= minMs ? Math.max(0, Math.min(b, now) - Math.max(a, now - open)) : 0
      for (let i = 0; i < from.length; i++) {
        if ((to[i] as number) - (from[i] as number) < minMs) continue
        const overlap = Math.min(b, to[i] as number) - Math.max(a, from[i] as number)
        if (overlap > 0) total += overlap
      }
      return total
    },
    maxMs: () => max,
    stop: () => {
      stopped = true
      clearInterval(timer)
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
