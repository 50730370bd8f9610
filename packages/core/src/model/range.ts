import type { IncomingHttpHeaders } from 'node:http'
import { parseHttpDate } from './http-date.js'

/**
 * What a `Range` request gets from a stored complete response (RFC 9110 §14): the whole body
 * (no range, one Corral does not serve, or an `If-Range` that does not match), one byte range
 * (`start` to `end`, inclusive), or nothing (416: no byte of the range exists).
 */
export type RangeAnswer =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' }

const FULL: RangeAnswer = { kind: 'full' }
const UNSATISFIABLE: RangeAnswer = { kind: 'unsatisfiable' }
const SPEC = /^\s*(\d*)\s*-\s*(\d*)\s*$/

/**
 * The answer to `range` over a body of `length` bytes. A server may always ignore `Range`
 * (RFC 9110 §14.2); Corral does so for anything but one `bytes` range (several ranges would need
 * a multipart body), and for an invalid field.
 */
export function byteRange(range: string, length: number): RangeAnswer {
  const eq = range.indexOf('=')
  if (eq < 0 || range.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL
  const set = range.slice(eq + 1)
  if (set.includes(',')) return FULL
  const m = SPEC.exec(set)
  if (m === null) return FULL
  const [, first, last] = m as unknown as [string, string, string]
  if (first === '') {
    // A suffix: the last N bytes.
    if (last === '') return FULL
    const n = Number(last)
    if (n === 0 || length === 0) return UNSATISFIABLE
    return { kind: 'partial', start: Math.max(0, length - n), end: length - 1 }
  }
  const start = Number(first)
  if (last !== '' && Number(last) < start) return FULL
  if (start >= length) return UNSATISFIABLE
  return { kind: 'partial', start, end: last === '' ? length - 1 : Math.min(Number(last), length - 1) }
}

/**
 * RFC 9110 §13.1.5: a range is served only when `If-Range` (if any) names the stored response
 * by a strong comparison: the same strong entity-tag, or exactly its `Last-Modified` date.
 */
export function ifRangeMatches(headers: IncomingHttpHeaders, etag: string | undefined, lastModified: string | undefined): boolean {
  const v = headers['if-range']
  if (v === undefined) return true
  if (typeof v !== 'string') return false
  const text = v.trim()
  if (text.startsWith('"') || text.startsWith('W/')) return etag !== undefined && !etag.startsWith('W/') && text === etag
  if (lastModified === undefined) return false
  const since = parseHttpDate(text)
  return !Number.isNaN(since) && since === parseHttpDate(lastModified)
}
