import type { IncomingHttpHeaders } from 'node:http'

/** Distinct Accept-Encoding values remembered per preference list; past it, the memo starts over. */
const MEMO_SIZE = 256
/** Longer values are worked out each time (and are rare): the memo's keys stay small. */
const MEMO_VALUE_LENGTH = 256

const memos = new WeakMap<readonly string[], Map<string, string | null>>()

/**
 * The one content coding a request's `Accept-Encoding` gets in place of what it sent, as Varnish
 * does: the first coding of `prefs` the client accepts (q above 0, named or through `*`), else
 * `identity`. A missing field counts as `identity` (what servers answer it with). Null when the
 * client accepts none of them and refuses `identity` too: the field is then left alone.
 */
export function preferredCoding(value: string | undefined, prefs: readonly string[]): string | null {
  if (value === undefined) return 'identity'
  if (value.length > MEMO_VALUE_LENGTH) return choose(value, prefs)
  let memo = memos.get(prefs)
  if (memo === undefined) {
    memo = new Map()
    memos.set(prefs, memo)
  }
  let chosen = memo.get(value)
  if (chosen === undefined) {
    chosen = choose(value, prefs)
    if (memo.size >= MEMO_SIZE) memo.clear()
    memo.set(value, chosen)
  }
  return chosen
}

/**
 * Rewrites the request's Accept-Encoding to its preferred coding (see `preferredCoding`), so that
 * the origin answers in that coding and a response that varies on the field is stored once per
 * coding, not once per way clients spell their lists.
 */
export function normalizeAcceptEncoding(headers: IncomingHttpHeaders, prefs: readonly string[]): void {
  const raw = headers['accept-encoding']
  const chosen = preferredCoding(Array.isArray(raw) ? raw.join(', ') : raw, prefs)
  if (chosen !== null && chosen !== raw) headers['accept-encoding'] = chosen
}

function choose(value: string, prefs: readonly string[]): string | null {
  const q = new Map<string, number>()
  for (const member of value.split(',')) {
    const [name = '', ...params] = member.split(';')
    const coding = name.trim().toLowerCase()
    if (coding === '') continue
    let weight = 1
    for (const p of params) {
      const [k = '', v = ''] = p.split('=')
      if (k.trim().toLowerCase() !== 'q') continue
      const n = Number(v.trim())
      weight = Number.isFinite(n) ? n : 0
    }
    // The highest weight given to a coding counts (a list may name it twice).
    q.set(coding, Math.max(q.get(coding) ?? 0, weight))
  }
  const star = q.get('*')
  const accepts = (coding: string): boolean => {
    const w = q.get(coding)
    return w !== undefined ? w > 0 : star !== undefined && star > 0
  }
  for (const coding of prefs) if (accepts(coding)) return coding
  // identity is acceptable unless refused by name, or by `*;q=0` without naming it (RFC 9110 §12.5.3).
  const identity = q.get('identity')
  if (identity !== undefined ? identity > 0 : star === undefined || star > 0) return 'identity'
  return null
}
