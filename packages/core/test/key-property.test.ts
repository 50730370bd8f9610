import { describe, expect, it } from 'vitest'
import { makePrimaryKey } from '../src/model/key.js'
import { view } from './helpers.js'

// A property test of the key's one promise: equal requests share a key, different requests never
// do. Requests are generated as data (path segments and query parameters whose names and values
// may hold any character), then written as raw URLs in several equivalent ways: parameters of
// different names in any order, unreserved characters escaped or not, escapes in either hex case.
// The model below knows nothing of how key.ts canonicalises.

/** Small seeded PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Data characters: unreserved ones, and ones that must be escaped inside a component.
const CHARS = ['a', 'b', 'Z', '0', '9', '-', '.', '_', '~', '&', '=', '/', '?', '#', ' ', '%', '+', ';', 'é', '☃']
const UNRESERVED = /^[A-Za-z0-9\-._~]$/

interface Req {
  segments: string[]
  params: [string, string][]
}

function word(r: () => number, min: number): string {
  const n = min + Math.floor(r() * 3)
  let s = ''
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * CHARS.length)]
  return s
}

function randomReq(r: () => number): Req {
  const segments = Array.from({ length: 1 + Math.floor(r() * 2) }, () => word(r, 1))
  const names = Array.from({ length: 1 + Math.floor(r() * 2) }, () => word(r, 1))
  const params = Array.from({ length: Math.floor(r() * 4) }, (): [string, string] => [
    names[Math.floor(r() * names.length)] as string,
    word(r, 0),
  ])
  return { segments, params }
}

/** Two requests are equal when every path segment is, and every name has the same values in the same order. */
function meaning(req: Req): string {
  const byName = new Map<string, string[]>()
  for (const [n, v] of req.params) byName.set(n, [...(byName.get(n) ?? []), v])
  return JSON.stringify([req.segments, [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))])
}

function escapeByte(b: number, r: () => number): string {
  const hex = b.toString(16).padStart(2, '0')
  return `%${r() < 0.5 ? hex.toUpperCase() : hex.toLowerCase()}`
}

/** Writes one component: unreserved characters literally or escaped, everything else escaped. */
function encode(s: string, r: () => number): string {
  let out = ''
  for (const ch of s) {
    if (UNRESERVED.test(ch) && r() < 0.7) out += ch
    else for (const b of Buffer.from(ch, 'utf8')) out += escapeByte(b, r)
  }
  return out
}

/** One raw URL for `req`: parameters shuffled, keeping the order of values under one name. */
function render(req: Req, r: () => number): string {
  const queues = new Map<string, string[]>()
  for (const [n, v] of req.params) queues.set(n, [...(queues.get(n) ?? []), v])
  const parts: string[] = []
  while (queues.size > 0) {
    const names = [...queues.keys()]
    const n = names[Math.floor(r() * names.length)] as string
    const q = queues.get(n) as string[]
    parts.push(`${encode(n, r)}=${encode(q.shift() as string, r)}`)
    if (q.length === 0) queues.delete(n)
  }
  const path = '/' + req.segments.map((s) => encode(s, r)).join('/')
  return parts.length === 0 ? path : `${path}?${parts.join('&')}`
}

/**
 * Siblings of `req` that differ from it only where a reserved character sits inside a component:
 * what a cache that decoded `%2F`, `%3D` or `%26` into their meaning would confuse with `req`.
 */
function confusables(req: Req): Req[] {
  const out: Req[] = []
  const seg = req.segments.findIndex((s) => s.includes('/'))
  if (seg !== -1) {
    const s = req.segments[seg] as string
    const at = s.indexOf('/')
    out.push({ ...req, segments: [...req.segments.slice(0, seg), s.slice(0, at), s.slice(at + 1), ...req.segments.slice(seg + 1)] })
  }
  req.params.forEach(([n, v], i) => {
    const eq = n.indexOf('=')
    if (eq !== -1) {
      const params = [...req.params]
      params[i] = [n.slice(0, eq), `${n.slice(eq + 1)}=${v}`]
      out.push({ ...req, params })
    }
    const amp = v.indexOf('&')
    if (amp !== -1) {
      const params = [...req.params]
      params.splice(i, 1, [n, v.slice(0, amp)], [v.slice(amp + 1), ''])
      out.push({ ...req, params })
    }
  })
  return out
}

const keyOf = (url: string) => makePrimaryKey('corral', view(url)).key

describe('key property: equal requests share a key, different requests never do', () => {
  it('holds for 400 generated requests and their confusable siblings, written 5 ways each', () => {
    const r = rng(20261126)
    const keyByMeaning = new Map<string, string>()
    const meaningByKey = new Map<string, string>()
    let confusing = 0
    const requests: Req[] = []
    for (let i = 0; i < 400; i++) {
      const req = randomReq(r)
      const siblings = confusables(req)
      confusing += siblings.length
      requests.push(req, ...siblings)
    }
    for (const req of requests) {
      const m = meaning(req)
      for (let j = 0; j < 5; j++) {
        const url = render(req, r)
        const key = keyOf(url)
        const known = keyByMeaning.get(m)
        if (known !== undefined) expect(key, `${url} should share the key of its equals`).toBe(known)
        keyByMeaning.set(m, key)
        const other = meaningByKey.get(key)
        if (other !== undefined) expect(other, `${url} shares a key with a different request`).toBe(m)
        meaningByKey.set(key, m)
      }
    }
    // The generator must produce both many distinct requests and repeated ones for this to mean anything.
    expect(keyByMeaning.size).toBeGreaterThan(300)
    expect(confusing).toBeGreaterThan(50)
  })
})
