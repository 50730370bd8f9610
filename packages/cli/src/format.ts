/** Plain-text rendering: aligned columns, sizes and durations a person reads at a glance. */

export type Align = 'left' | 'right'

/** Cells longer than this are cut in tables (with an ellipsis); --json keeps them whole. */
export const MAX_CELL = 80

/**
 * Rows under a header, each column as wide as its widest cell, two spaces apart. A cell is shown
 * by `cell()`: control characters escaped and cut at `max[i]` characters (default MAX_CELL).
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
  max: readonly (number | undefined)[] = [],
): string {
  const shown = rows.map((r) => r.map((c, i) => cell(c, max[i] ?? MAX_CELL)))
  const widths = header.map((h, i) => Math.max(width(h), ...shown.map((r) => width(r[i] ?? ''))))
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => {
        const pad = ' '.repeat((widths[i] ?? 0) - width(c))
        if (i === cells.length - 1 && align[i] !== 'right') return c
        return align[i] === 'right' ? pad + c : c + pad
      })
      .join('  ')
      .trimEnd()
  return [line(header), ...shown.map(line)].join('\n')
}

/**
 * A value for one line of a terminal: control characters (which a value planted in Redis may
 * hold) escaped as `\xNN`, and cut to `max` characters, the last one an ellipsis.
 */
export function cell(s: string, max = MAX_CELL): string {
  // eslint-disable-next-line no-control-regex
  const safe = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
  const chars = [...safe]
  return chars.length <= max ? safe : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`
}

/** `name  value` lines, the names padded to one width; control characters escaped, nothing cut. */
export function pairs(rows: readonly (readonly [string, string])[], indent = ''): string {
  const w = Math.max(0, ...rows.map(([k]) => width(k)))
  return rows.map(([k, v]) => `${indent}${cell(k, Infinity)}${' '.repeat(w - width(k))}  ${cell(v, Infinity)}`.trimEnd()).join('\n')
}

function width(s: string): number {
  return [...s].length
}

/** 512 B, 3.4 KiB, 12.0 MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

/** 850ms, 42s, 4m58s, 2h05m, 3d04h. */
export function duration(ms: number): string {
  const sign = ms < 0 ? '-' : ''
  const a = Math.abs(ms)
  if (a < 1000) return `${sign}${Math.round(a)}ms`
  const s = Math.floor(a / 1000)
  if (s < 60) return `${sign}${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${sign}${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${sign}${h}h${String(m % 60).padStart(2, '0')}m`
  return `${sign}${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`
}

/** A key's PTTL as text: `4m58s`, `no TTL` (-1), `gone` (-2). */
export function ttl(pttl: number): string {
  if (pttl === -1) return 'no TTL'
  if (pttl < 0) return 'gone'
  return duration(pttl)
}

/** `a, b, c`, or `-` for none. */
export function commaList(items: readonly string[]): string {
  return items.length === 0 ? '-' : items.join(', ')
}

/** Counts with their noun: `1 entry`, `3 entries`. */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}
