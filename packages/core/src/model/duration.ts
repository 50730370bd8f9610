import { ConfigError } from './errors.js'

/** Milliseconds, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'1h'`, `'1d'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/**
 * The longest delay a Node.js timer can hold (2^31 - 1 ms, about 24.8 days): a longer one fires
 * after 1 ms. Options that arm a timer are capped at it.
 */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * Parses a duration option into whole milliseconds; throws a ConfigError naming `option`, also
 * when it is longer than `maxMs` (pass `MAX_TIMER_MS` for options that arm a timer).
 */
export function parseDuration(value: unknown, option: string, maxMs: number = Number.MAX_SAFE_INTEGER): number {
  let ms: number | undefined
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string') {
    const m = DURATION.exec(value.trim())
    if (m) ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
  }
  if (ms !== undefined) ms = Math.round(ms)
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new ConfigError(
      `expected ${option} to be a positive number of milliseconds or a duration like '30s' or '5m', got ${describeValue(value)}`,
    )
  }
  if (ms > maxMs) {
    const limit = maxMs === MAX_TIMER_MS ? `${maxMs} ms (about 24.8 days, the longest a Node.js timer can wait)` : `${maxMs} ms`
    throw new ConfigError(`expected ${option} to be at most ${limit}, got ${describeValue(value)}`)
  }
  return ms
}

/** How a bad option value is shown in a ConfigError message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  return String(value)
}
