import { describeValue, MAX_TIMER_MS, parseDuration, type Duration } from '../model/duration.js'
import { ConfigError } from '../model/errors.js'
import { rejectUnknown } from '../model/options.js'

/** When `cache.health()` turns `degraded`, judged over a recent window (defaults from the seed's health check). */
export interface HealthOptions {
  /**
   * Degraded when fewer lookups than this are answered from the cache (fresh or stale) within the
   * window, once `warmup` lookups have been made in it. `0`: never judged.
   * @default 0.8
   */
  minHitRate?: number
  /**
   * Lookups within the window before the hit rate is judged (a cold cache misses).
   * @default 100
   */
  warmup?: number
  /**
   * Degraded when more errors than this (store failures, callbacks that threw, failed refreshes)
   * are reported per request within the window. `1`: never judged.
   * @default 0.01
   */
  maxErrorRate?: number
  /**
   * Degraded when the 99th percentile of L2 (Redis) reads and writes within the window takes
   * longer than this.
   * @default '10ms'
   */
  maxL2P99?: Duration
  /**
   * How far back rates and latencies are taken (in six steps, so the window is between 5/6 of it
   * and all of it long).
   * @default '60s'
   */
  window?: Duration
}

export interface ResolvedHealthOptions {
  readonly minHitRate: number
  readonly warmup: number
  readonly maxErrorRate: number
  readonly maxL2P99Ms: number
  readonly windowMs: number
}

const KEYS = new Set(['minHitRate', 'warmup', 'maxErrorRate', 'maxL2P99', 'window'])

export function resolveHealthOptions(o: HealthOptions | undefined): ResolvedHealthOptions {
  if (o === undefined) return { minHitRate: 0.8, warmup: 100, maxErrorRate: 0.01, maxL2P99Ms: 10, windowMs: 60_000 }
  if (typeof o !== 'object' || o === null) throw new ConfigError(`expected options.health to be an object, got ${describeValue(o)}`)
  rejectUnknown(o, KEYS, 'options.health.')
  return {
    minHitRate: fraction(o.minHitRate, 0.8, 'options.health.minHitRate'),
    warmup: o.warmup === undefined ? 100 : count(o.warmup, 'options.health.warmup'),
    maxErrorRate: fraction(o.maxErrorRate, 0.01, 'options.health.maxErrorRate'),
    maxL2P99Ms: o.maxL2P99 === undefined ? 10 : parseDuration(o.maxL2P99, 'options.health.maxL2P99', MAX_TIMER_MS),
    windowMs: o.window === undefined ? 60_000 : windowOf(o.window),
  }
}

function windowOf(v: Duration): number {
  const ms = parseDuration(v, 'options.health.window', MAX_TIMER_MS)
  if (ms < 1000) throw new ConfigError(`expected options.health.window to be at least 1s, got ${describeValue(v)}`)
  return ms
}

function fraction(v: unknown, fallback: number, option: string): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new ConfigError(`expected ${option} to be a number from 0 to 1, got ${describeValue(v)}`)
  return v
}

function count(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ConfigError(`expected ${option} to be a whole number of lookups, 0 or more, got ${describeValue(v)}`)
  return v
}

/** The cumulative counts the window takes differences of. */
export interface Tally {
  readonly hits: number
  readonly stale: number
  readonly misses: number
  readonly bypassed: number
  readonly errors: number
}

/** What the window saw, in `cache.health()`. */
export interface HealthWindow {
  /** How far back it reaches, in seconds. */
  readonly seconds: number
  /** Lookups answered from the cache or sent to the origin (bypasses are not lookups). */
  readonly lookups: number
  /** Share of lookups answered from the cache (fresh or stale); null before any lookup. */
  readonly hitRate: number | null
  /** Errors reported per request (lookups and bypasses); null before any request. */
  readonly errorRate: number | null
  /** L2 reads and writes (null without L2, or before any): how many were sampled, median and 99th percentile in ms. */
  readonly l2: { readonly samples: number; readonly p50Ms: number; readonly p99Ms: number } | null
}

/** Samples kept per step: a reservoir, so a burst keeps a fair sample and a bounded size. */
const SAMPLES = 1024
const STEPS = 6

/** One step of the window: counts at its start, and the L2 latencies sampled during it. */
interface Step {
  readonly tally: Tally
  readonly samples: Float64Array
  kept: number
  seen: number
}

/**
 * Rates and latencies over the last `windowMs`: six steps, each a snapshot of the cumulative counts
 * at its start and a reservoir of L2 latencies (at most 1,024 numbers per step), turned by one
 * unref'd timer. Nothing is counted per request here.
 */
export class RecentWindow {
  private readonly steps: Step[] = []
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly options: ResolvedHealthOptions,
    private readonly tally: () => Tally,
    private readonly random: () => number = Math.random,
  ) {
    this.steps.push(this.step())
    this.timer = setInterval(() => this.turn(), Math.max(1, Math.floor(options.windowMs / STEPS)))
    this.timer.unref()
  }

  /** An L2 read or write took `ms`. */
  l2(ms: number): void {
    const s = this.steps[this.steps.length - 1] as Step
    s.seen++
    if (s.kept < SAMPLES) s.samples[s.kept++] = ms
    else {
      const j = Math.floor(this.random() * s.seen)
      if (j < SAMPLES) s.samples[j] = ms
    }
  }

  /** What the window saw, and the thresholds it crosses (as reasons). */
  read(): { window: HealthWindow; reasons: string[] } {
    const o = this.options
    const first = (this.steps[0] as Step).tally
    const now = this.tally()
    const served = now.hits - first.hits + (now.stale - first.stale)
    const lookups = served + (now.misses - first.misses)
    const requests = lookups + (now.bypassed - first.bypassed)
    const errors = now.errors - first.errors
    const hitRate = lookups === 0 ? null : served / lookups
    const errorRate = requests === 0 ? null : errors / requests
    const l2 = this.latencies()
    const reasons: string[] = []
    if (hitRate !== null && lookups >= o.warmup && o.minHitRate > 0 && hitRate < o.minHitRate) {
      reasons.push(`hit rate ${percent(hitRate)} is under ${percent(o.minHitRate)} (${lookups} lookups)`)
    }
    if (errorRate !== null && o.maxErrorRate < 1 && errorRate > o.maxErrorRate) {
      reasons.push(`error rate ${percent(errorRate)} is over ${percent(o.maxErrorRate)} (${errors} errors in ${requests} requests)`)
    }
    if (l2 !== null && l2.p99Ms > o.maxL2P99Ms) reasons.push(`L2 p99 ${l2.p99Ms.toFixed(1)} ms is over ${o.maxL2P99Ms} ms`)
    return { window: { seconds: Math.round(o.windowMs / 1000), lookups, hitRate, errorRate, l2 }, reasons }
  }

  close(): void {
    clearInterval(this.timer)
  }

  private latencies(): HealthWindow['l2'] {
    const all: number[] = []
    for (const s of this.steps) for (let i = 0; i < s.kept; i++) all.push(s.samples[i] as number)
    if (all.length === 0) return null
    all.sort((a, b) => a - b)
    const at = (q: number) => all[Math.min(all.length - 1, Math.ceil(q * all.length) - 1)] as number
    return { samples: all.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)) }
  }

  private turn(): void {
    this.steps.push(this.step())
    if (this.steps.length > STEPS) this.steps.shift()
  }

  private step(): Step {
    const t = this.tally()
    return { tally: { hits: t.hits, stale: t.stale, misses: t.misses, bypassed: t.bypassed, errors: t.errors }, samples: new Float64Array(SAMPLES), kept: 0, seen: 0 }
  }
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
