/**
 * Parsed Cache-Control directives. Names are lowercased; a directive without a value maps to
 * `true`; a quoted value is unquoted. RFC 9111 §5.2.
 */
export type CacheControl = Map<string, string | true>

const EMPTY: CacheControl = new Map()

/** Parses one or more Cache-Control header values. The first occurrence of a directive wins. */
export function parseCacheControl(header: string | readonly string[] | number | undefined): CacheControl {
  if (header === undefined) return EMPTY
  const text = Array.isArray(header) ? header.join(',') : String(header)
  if (text.length === 0) return EMPTY
  const out: CacheControl = new Map()
  let i = 0
  while (i < text.length) {
    while (i < text.length && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++
    if (i >= text.length) break
    let nameEnd = i
    while (nameEnd < text.length && text[nameEnd] !== '=' && text[nameEnd] !== ',') nameEnd++
    const name = text.slice(i, nameEnd).trim().toLowerCase()
    i = nameEnd
    let value: string | true = true
    if (text[i] === '=') {
      i++
      while (text[i] === ' ' || text[i] === '\t') i++
      if (text[i] === '"') {
        // quoted-string (RFC 9110 §5.6.4): may contain commas and escaped characters
        let v = ''
        i++
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++
          v += text[i]
          i++
        }
        i++ // closing quote
        value = v
        while (i < text.length && text[i] !== ',') i++
      } else {
        const end = text.indexOf(',', i)
        const stop = end === -1 ? text.length : end
        value = text.slice(i, stop).trim()
        i = stop
      }
    }
    if (name.length > 0 && !out.has(name)) out.set(name, value)
  }
  return out
}

/**
 * Reads a delta-seconds directive (max-age, s-maxage). Returns undefined when absent and 0 when
 * present but invalid: RFC 9111 §4.2.1 says an invalid freshness value makes the response stale.
 */
export function deltaSeconds(cc: CacheControl, name: string): number | undefined {
  const v = cc.get(name)
  if (v === undefined) return undefined
  if (v === true || !/^\d+$/.test(v)) return 0
  return Math.min(Number(v), 2 ** 31)
}
