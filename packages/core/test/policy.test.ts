import type { OutgoingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import type { RouteOptions } from '../src/index.js'
import { earlyRefreshDue, xfetchDue, etagMatches, isNotModified, isUnsafeMethod, parseAge, parseVary, unsafeTargets, requestBypassReason, responseStorability, type Storability } from '../src/model/policy.js'
import { resolveRoute } from '../src/model/options.js'
import { freshenedHeaders } from '../src/model/entry.js'
import { view } from './helpers.js'

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0)
const route = (o: RouteOptions = {}) => resolveRoute(o, undefined, 'route.')
const httpDate = (ms: number) => new Date(ms).toUTCString()

function storable(status: number, headers: OutgoingHttpHeaders, o: RouteOptions = {}): Storability {
  return responseStorability(status, headers, route(o), NOW)
}
/** Headers as a framework hands them over, where any field may come as several lines (Node types some as single). */
const lines = (h: Record<string, string | string[]>): OutgoingHttpHeaders => h as OutgoingHttpHeaders

function lifetime(headers: OutgoingHttpHeaders, o: RouteOptions = {}): number | undefined {
  const s = storable(200, headers, o)
  return s.storable ? s.lifetimeMs : undefined
}

describe('requestBypassReason', () => {
  it('looks up GET and HEAD by default', () => {
    expect(requestBypassReason(view('/p'), route())).toBeUndefined()
    expect(requestBypassReason(view('/p', {}, 'HEAD'), route())).toBeUndefined()
  })

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'get'])('bypasses method %s', (m) => {
    expect(requestBypassReason(view('/p', {}, m), route())).toBe('method')
  })

  it('honours the route method list', () => {
    expect(requestBypassReason(view('/p', {}, 'HEAD'), route({ methods: ['GET'] }))).toBe('method')
    expect(requestBypassReason(view('/p'), route({ methods: ['HEAD'] }))).toBe('method')
    expect(requestBypassReason(view('/p'), route({ methods: ['GET'] }))).toBeUndefined()
  })

  it('bypasses Authorization unless the route ignores it', () => {
    const v = view('/p', { authorization: 'Bearer x' })
    expect(requestBypassReason(v, route())).toBe('authorization')
    expect(requestBypassReason(v, route({ authorization: 'bypass' }))).toBe('authorization')
    expect(requestBypassReason(v, route({ authorization: 'ignore' }))).toBeUndefined()
  })

  it('bypasses an empty Authorization header too', () => {
    expect(requestBypassReason(view('/p', { authorization: '' }), route())).toBe('authorization')
  })

  it('bypasses Cookie unless the route ignores it', () => {
    const v = view('/p', { cookie: 'sid=1' })
    expect(requestBypassReason(v, route())).toBe('cookie')
    expect(requestBypassReason(v, route({ cookies: 'ignore' }))).toBeUndefined()
  })

  it('ignoring cookies does not ignore Authorization, and the other way round', () => {
    const both = view('/p', { cookie: 'sid=1', authorization: 'Basic eA==' })
    expect(requestBypassReason(both, route({ cookies: 'ignore' }))).toBe('authorization')
    expect(requestBypassReason(both, route({ authorization: 'ignore' }))).toBe('cookie')
    expect(requestBypassReason(both, route({ authorization: 'ignore', cookies: 'ignore' }))).toBeUndefined()
  })

  it('looks up Range requests (a stored 200 can answer them)', () => {
    expect(requestBypassReason(view('/p', { range: 'bytes=0-10' }), route())).toBeUndefined()
  })
})

describe('responseStorability', () => {
  const ok = { 'cache-control': 'max-age=60' }

  it('stores a fresh 200 with its lifetime, age and vary', () => {
    expect(storable(200, ok)).toEqual({ storable: true, lifetimeMs: 60_000, initialAge: 0, vary: [], staleWhileRevalidateMs: 0, staleIfErrorMs: 0 })
  })

  it.each([200, 203, 204, 300, 301, 308])('stores status %i by default', (status) => {
    expect(storable(status, ok).storable).toBe(true)
  })

  it.each([400, 403, 404, 410, 500, 502, 503, 599, 101])('does not store status %i by default, fresh or not', (status) => {
    expect(storable(status, ok)).toEqual({ storable: false, reason: 'status' })
    expect(storable(status, {}, { ttl: '1h' })).toEqual({ storable: false, reason: 'status' })
  })

  it.each([201, 299, 302, 303, 307])('stores status %i by default only with its own freshness, never for the route ttl', (status) => {
    expect(storable(status, ok)).toEqual({ storable: true, lifetimeMs: 60_000, initialAge: 0, vary: [], staleWhileRevalidateMs: 0, staleIfErrorMs: 0 })
    expect(storable(status, { expires: httpDate(NOW + 60_000) }).storable).toBe(true)
    expect(storable(status, {}, { ttl: '1h' })).toEqual({ storable: false, reason: 'no-freshness' })
  })

  it('stores exactly the statuses of a list the route gives', () => {
    expect(storable(302, ok, { statuses: [200] })).toEqual({ storable: false, reason: 'status' })
    expect(storable(302, {}, { statuses: [200, 302], ttl: '1h' }).storable).toBe(true)
  })

  it('stores 404 and 500 only when listed, and then no longer the defaults that are not listed', () => {
    const o = { statuses: [200, 404, 500] }
    expect(storable(404, ok, o).storable).toBe(true)
    expect(storable(500, ok, o).storable).toBe(true)
    expect(storable(301, ok, o)).toEqual({ storable: false, reason: 'status' })
  })

  it.each<[string, OutgoingHttpHeaders, string]>([
    ['no-store', { 'cache-control': 'max-age=60, no-store' }, 'no-store'],
    ['NO-STORE', { 'cache-control': 'NO-STORE, max-age=60' }, 'no-store'],
    ['private', { 'cache-control': 'private, max-age=60' }, 'private'],
    ['private with fields', { 'cache-control': 'private="x-user", max-age=60' }, 'private'],
    ['no-cache without a validator', { 'cache-control': 'no-cache, max-age=60' }, 'no-cache'],
    ['set-cookie', { ...ok, 'set-cookie': ['a=1'] }, 'set-cookie'],
    ['content-range', { ...ok, 'content-range': 'bytes 0-1/10' }, 'partial'],
    ['vary *', { ...ok, vary: '*' }, 'vary-star'],
    ['vary with *', { ...ok, vary: 'accept, *' }, 'vary-star'],
    ['content-length over maxBodyBytes', { ...ok, 'content-length': '2000' }, 'too-large'],
    ['content-length number over maxBodyBytes', { ...ok, 'content-length': 2000 }, 'too-large'],
    ['no explicit freshness', { 'content-type': 'text/plain' }, 'no-freshness'],
    ['public without lifetime', { 'cache-control': 'public' }, 'no-freshness'],
    ['max-age=0', { 'cache-control': 'max-age=0' }, 'stale'],
    ['invalid max-age', { 'cache-control': 'max-age=soon' }, 'stale'],
    ['Age >= max-age', { 'cache-control': 'max-age=60', age: '60' }, 'stale'],
    ['invalid Expires', { expires: '0' }, 'stale'],
    ['Expires in the past', { expires: httpDate(NOW - 1000) }, 'stale'],
  ])('refuses %s', (_, headers, reason) => {
    expect(storable(200, headers, { maxBodyBytes: 1000 })).toEqual({ storable: false, reason })
  })

  it.each<[string, OutgoingHttpHeaders]>([
    ['an ETag', { 'cache-control': 'no-cache', etag: '"v1"' }],
    ['a Last-Modified and max-age', { 'cache-control': 'max-age=600, no-cache', 'last-modified': httpDate(NOW - 60_000) }],
    ['a field-qualified no-cache and an Age', { 'cache-control': 'no-cache="x-user", max-age=60', etag: '"v1"', age: '600' }],
  ])('stores no-cache with %s already stale, to be revalidated on every use', (_, headers) => {
    expect(storable(200, headers)).toEqual({ storable: true, lifetimeMs: 0, initialAge: 0, vary: [], staleWhileRevalidateMs: 0, staleIfErrorMs: 0 })
  })

  it('stores a Set-Cookie response only with setCookie: strip', () => {
    const headers = { ...ok, 'set-cookie': ['sid=1'] }
    expect(storable(200, headers)).toEqual({ storable: false, reason: 'set-cookie' })
    expect(storable(200, headers, { setCookie: 'strip' }).storable).toBe(true)
  })

  it('gives a Last-Modified response a heuristic lifetime only when asked, before the ttl, at most a day', () => {
    const dated = { date: httpDate(NOW), 'last-modified': httpDate(NOW - 600_000) }
    expect(storable(200, dated)).toEqual({ storable: false, reason: 'no-freshness' })
    expect(lifetime(dated, { heuristic: 0.1 })).toBe(60_000)
    expect(lifetime(dated, { heuristic: 0.1, ttl: '1h' })).toBe(60_000)
    expect(lifetime({ date: httpDate(NOW) }, { heuristic: 0.1, ttl: '1h' })).toBe(3_600_000)
    expect(lifetime({ date: httpDate(NOW), 'last-modified': httpDate(NOW - 100 * 86_400_000) }, { heuristic: 0.1 })).toBe(86_400_000)
    expect(lifetime({ ...dated, 'cache-control': 'max-age=5' }, { heuristic: 0.1 })).toBe(5_000)
    // A Last-Modified in the future, or not a date: no heuristic.
    expect(storable(200, { date: httpDate(NOW), 'last-modified': httpDate(NOW + 60_000) }, { heuristic: 0.1 }).storable).toBe(false)
    expect(storable(200, { 'last-modified': 'yesterday' }, { heuristic: 0.1 }).storable).toBe(false)
    // Only for listed statuses, as the ttl, and of those only the heuristically cacheable ones
    // (RFC 9110 §15.1) unless the response says public.
    expect(storable(302, dated, { heuristic: 0.1 })).toEqual({ storable: false, reason: 'no-freshness' })
    expect(storable(404, dated, { heuristic: 0.1, statuses: [404, 502] }).storable).toBe(true)
    expect(storable(502, dated, { heuristic: 0.1, statuses: [404, 502] })).toEqual({ storable: false, reason: 'no-freshness' })
    expect(storable(502, { ...dated, 'cache-control': 'public' }, { heuristic: 0.1, statuses: [502] }).storable).toBe(true)
  })

  it('must-understand: an unknown status is not stored even when listed; a known one is, no-store notwithstanding', () => {
    expect(storable(599, { 'cache-control': 'max-age=60, must-understand' }, { statuses: [200, 599] })).toEqual({ storable: false, reason: 'status' })
    expect(storable(599, { 'cache-control': 'max-age=60' }, { statuses: [200, 599] }).storable).toBe(true)
    expect(storable(200, { 'cache-control': 'max-age=60, must-understand, no-store' }).storable).toBe(true)
    expect(storable(200, { 'cache-control': 'max-age=60, no-store' })).toEqual({ storable: false, reason: 'no-store' })
  })

  it.each<[string, string, RouteOptions, [number, number]]>([
    ['none by default', 'max-age=60', {}, [0, 0]],
    ['the route windows when the response is silent', 'max-age=60', { staleWhileRevalidate: '30s', staleIfError: '1h' }, [30_000, 3_600_000]],
    ["the response's own over the route's", 'max-age=60, stale-while-revalidate=5, stale-if-error=7', { staleWhileRevalidate: '30s', staleIfError: '1h' }, [5_000, 7_000]],
    ['an invalid directive as 0', 'max-age=60, stale-while-revalidate=soon', { staleWhileRevalidate: '30s' }, [0, 0]],
    ['none with must-revalidate', 'max-age=60, must-revalidate, stale-while-revalidate=5', { staleIfError: '1h' }, [0, 0]],
    ['none with proxy-revalidate', 'max-age=60, proxy-revalidate', { staleWhileRevalidate: '30s' }, [0, 0]],
    ["only the response's own with s-maxage", 's-maxage=60, stale-if-error=9', { staleWhileRevalidate: '30s', staleIfError: '1h' }, [0, 9_000]],
  ])('gives stale windows: %s', (_, cc, o, [swr, sie]) => {
    expect(storable(200, { 'cache-control': cc }, o)).toMatchObject({ storable: true, staleWhileRevalidateMs: swr, staleIfErrorMs: sie })
  })

  it('checks the status before anything else', () => {
    expect(storable(500, { 'cache-control': 'no-store' })).toEqual({ storable: false, reason: 'status' })
  })

  it('stores a body exactly at maxBodyBytes', () => {
    expect(storable(200, { ...ok, 'content-length': '1000' }, { maxBodyBytes: 1000 }).storable).toBe(true)
  })

  it('lets s-maxage beat max-age, both ways', () => {
    expect(lifetime({ 'cache-control': 'max-age=10, s-maxage=100' })).toBe(100_000)
    expect(lifetime({ 'cache-control': 's-maxage=5, max-age=100' })).toBe(5_000)
    expect(storable(200, { 'cache-control': 'max-age=100, s-maxage=0' })).toEqual({ storable: false, reason: 'stale' })
  })

  it('lets max-age beat Expires', () => {
    expect(lifetime({ 'cache-control': 'max-age=10', expires: httpDate(NOW + 3_600_000) })).toBe(10_000)
  })

  it('lets explicit freshness beat the route ttl', () => {
    expect(lifetime({ 'cache-control': 'max-age=10' }, { ttl: '1h' })).toBe(10_000)
    expect(storable(200, { 'cache-control': 'max-age=0' }, { ttl: '1h' })).toEqual({ storable: false, reason: 'stale' })
  })

  it('uses the route ttl when the response says nothing about freshness', () => {
    expect(lifetime({ 'content-type': 'text/html' }, { ttl: '5m' })).toBe(300_000)
    expect(lifetime({ 'cache-control': 'public' }, { ttl: 1500 })).toBe(1500)
  })

  it('subtracts Age from the freshness', () => {
    const s = storable(200, { 'cache-control': 'max-age=60', age: '20' })
    expect(s).toEqual({ storable: true, lifetimeMs: 60_000, initialAge: 20, vary: [], staleWhileRevalidateMs: 0, staleIfErrorMs: 0 })
    expect(storable(200, { 'cache-control': 'max-age=60', age: '59' }).storable).toBe(true)
    expect(storable(200, { age: '30' }, { ttl: '30s' })).toEqual({ storable: false, reason: 'stale' })
  })

  // The HTTP caching test suite's age-parse tests: anything but one non-negative integer may hide
  // an older response, so it is treated as stale rather than as 0.
  it.each([
    ['non-numeric', 'abc'],
    ['negative', '-7200'],
    ['a fraction', '7200.0'],
    ['a list', '7200,0'],
    ['a list of zeros', '0, 0'],
    ['a parameter', '7200;foo=bar'],
    ['empty', ''],
    ['two field lines', ['0', '0']],
  ])('treats an Age that is %s as stale', (_what, age) => {
    expect(storable(200, lines({ 'cache-control': 'max-age=3600', age }))).toEqual({ storable: false, reason: 'stale' })
  })

  it('reads an Age with surrounding whitespace, or as a one-line array, and caps it at 2^31 s', () => {
    const s = storable(200, { 'cache-control': 'max-age=60', age: ' 20 ' })
    expect(s.storable && s.initialAge).toBe(20)
    const t = storable(200, lines({ 'cache-control': 'max-age=60', age: ['20'] }))
    expect(t.storable && t.initialAge).toBe(20)
    expect(parseAge('99999999999999999999')).toBe(2 ** 31)
    expect(parseAge(undefined)).toBe(0)
  })

  it('accepts the three HTTP-date forms in Expires, and treats anything else as already expired', () => {
    const date = 'Wed, 01 Jan 2025 12:00:00 GMT'
    expect(lifetime({ date, expires: 'Wed, 01 Jan 2025 12:02:00 GMT' })).toBe(120_000)
    expect(lifetime({ date, expires: 'Wednesday, 01-Jan-25 12:02:00 GMT' })).toBe(120_000)
    expect(lifetime({ date, expires: 'Wed Jan  1 12:02:00 2025' })).toBe(120_000)
    for (const expires of ['2025-01-01T12:02:00Z', 'Wed, 01 Jan 2025 12:02:00 AEST', 'Wed, 1 Jan 2025 12:02:00 GMT', 'Wed, 01 Jan 2025 12:02:00', '0', '-1']) {
      expect(storable(200, { date, expires }), expires).toEqual({ storable: false, reason: 'stale' })
    }
    // Two Expires lines: which one the origin meant is unknown.
    expect(storable(200, lines({ date, expires: ['Wed, 01 Jan 2025 12:02:00 GMT', 'Wed, 01 Jan 2025 12:02:00 GMT'] }))).toEqual({ storable: false, reason: 'stale' })
  })

  it('ignores a Date that is not an HTTP-date (the response counts as generated now)', () => {
    expect(lifetime({ date: '2025-01-01T11:00:00Z', expires: httpDate(NOW + 60_000) })).toBe(60_000)
  })

  it('computes Expires - Date', () => {
    expect(lifetime({ date: httpDate(NOW), expires: httpDate(NOW + 120_000) })).toBe(120_000)
    // A Date slightly off the local clock does not change the lifetime the origin meant.
    expect(lifetime({ date: httpDate(NOW - 30_000), expires: httpDate(NOW + 90_000) })).toBe(120_000)
  })

  it('computes Expires - now without Date', () => {
    expect(lifetime({ expires: httpDate(NOW + 60_000) })).toBe(60_000)
  })

  it('treats an Expires already past as stale even when Date is older still', () => {
    // RFC 9111 §4.2.3: current_age includes apparent_age = now - Date. The response expired a
    // minute ago; storing it for Expires - Date = 1 minute would serve content past its Expires.
    const s = storable(200, { date: httpDate(NOW - 120_000), expires: httpDate(NOW - 60_000) })
    expect(s).toEqual({ storable: false, reason: 'stale' })
  })

  it('parses Vary into sorted, lower-case, unique names', () => {
    const s = storable(200, { ...ok, vary: 'Accept-Language, accept-encoding, ACCEPT-LANGUAGE' })
    expect(s.storable && s.vary).toEqual(['accept-encoding', 'accept-language'])
    expect(parseVary(['Accept', 'Origin'])).toEqual(['accept', 'origin'])
    expect(parseVary('')).toEqual([])
    expect(parseVary(undefined)).toEqual([])
    expect(parseVary(' , accept ,')).toEqual(['accept'])
    expect(parseVary('accept, *')).toEqual(['*'])
  })
})

describe('etagMatches', () => {
  it('compares weakly', () => {
    expect(etagMatches('"a"', '"a"')).toBe(true)
    expect(etagMatches('W/"a"', '"a"')).toBe(true)
    expect(etagMatches('"a"', 'W/"a"')).toBe(true)
    expect(etagMatches('W/"a"', 'W/"a"')).toBe(true)
    expect(etagMatches('"a"', '"b"')).toBe(false)
    expect(etagMatches('"a"', '"A"')).toBe(false)
  })

  it('matches any tag of a list', () => {
    expect(etagMatches('"x", W/"a" ,"y"', '"a"')).toBe(true)
    expect(etagMatches('"x","y"', '"a"')).toBe(false)
  })

  it('does not match a tag that merely contains the stored one', () => {
    expect(etagMatches('"ab"', '"a"')).toBe(false)
    expect(etagMatches('"a"', '"ab"')).toBe(false)
  })

  it('matches * against any stored tag', () => {
    expect(etagMatches('*', '"a"')).toBe(true)
    expect(etagMatches(' * ', 'W/"a"')).toBe(true)
  })

  it('never matches when nothing is stored', () => {
    expect(etagMatches('"a"', undefined)).toBe(false)
  })

  it('matches an entity-tag that contains a comma (etagc allows %x2C)', () => {
    expect(etagMatches('"v1,2"', '"v1,2"')).toBe(true)
    expect(etagMatches('"x", "v1,2"', '"v1,2"')).toBe(true)
  })
})

describe('isNotModified', () => {
  const etag = '"v1"'
  const lastModified = httpDate(NOW - 3_600_000)

  it('matches If-None-Match', () => {
    expect(isNotModified({ 'if-none-match': '"v1"' }, etag, lastModified)).toBe(true)
    expect(isNotModified({ 'if-none-match': 'W/"v1"' }, etag, lastModified)).toBe(true)
    expect(isNotModified({ 'if-none-match': '"v0"' }, etag, lastModified)).toBe(false)
  })

  it('matches If-Modified-Since at or after Last-Modified', () => {
    expect(isNotModified({ 'if-modified-since': lastModified }, etag, lastModified)).toBe(true)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW) }, etag, lastModified)).toBe(true)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW - 7_200_000) }, etag, lastModified)).toBe(false)
  })

  it('compares If-Modified-Since with Date when there is no Last-Modified, and prefers Last-Modified', () => {
    const date = httpDate(NOW - 60_000)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW) }, undefined, undefined, date)).toBe(true)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW - 120_000) }, undefined, undefined, date)).toBe(false)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW - 7_200_000) }, etag, lastModified, date)).toBe(false)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW - 120_000) }, etag, lastModified, date)).toBe(true)
  })

  it('lets If-None-Match win over If-Modified-Since', () => {
    const since = httpDate(NOW)
    expect(isNotModified({ 'if-none-match': '"v0"', 'if-modified-since': since }, etag, lastModified)).toBe(false)
    expect(
      isNotModified({ 'if-none-match': '"v1"', 'if-modified-since': httpDate(NOW - 7_200_000) }, etag, lastModified),
    ).toBe(true)
  })

  it('is false without validators or with invalid dates', () => {
    expect(isNotModified({}, etag, lastModified)).toBe(false)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW) }, etag, undefined)).toBe(false)
    expect(isNotModified({ 'if-modified-since': 'yesterday' }, etag, lastModified)).toBe(false)
    expect(isNotModified({ 'if-modified-since': httpDate(NOW) }, etag, 'garbage')).toBe(false)
    expect(isNotModified({ 'if-none-match': '"v1"' }, undefined, lastModified)).toBe(false)
  })
})

describe('unsafeTargets (RFC 9111 §4.4)', () => {
  const post = (url: string) => view(url, { host: 'shop.test' }, 'POST')

  it('is the URL itself, for a 2xx or 3xx answer only', () => {
    expect(unsafeTargets(post('/p/1?a=1'), 200, {})).toEqual(['/p/1?a=1'])
    expect(unsafeTargets(post('/p/1'), 303, {})).toEqual(['/p/1'])
    for (const status of [100, 199, 400, 404, 500]) expect(unsafeTargets(post('/p/1'), status, {})).toEqual([])
  })

  it('adds Location and Content-Location on the same host, resolved against the request URL', () => {
    expect(unsafeTargets(post('/p/1'), 201, { location: '/p/2', 'content-location': 'http://shop.test/p/3?x=1' })).toEqual(['/p/1', '/p/2', '/p/3?x=1'])
    expect(unsafeTargets(post('/p/dir/1'), 201, { location: '../2' })).toEqual(['/p/dir/1', '/p/2'])
  })

  it('leaves other hosts, other schemes, repeated fields and unparsable values alone', () => {
    const headers = { location: 'http://other.test/p/2', 'content-location': 'mailto:a@shop.test' }
    expect(unsafeTargets(post('/p/1'), 201, headers)).toEqual(['/p/1'])
    expect(unsafeTargets(post('/p/1'), 201, lines({ location: ['/p/2', '/p/3'] }))).toEqual(['/p/1'])
    expect(unsafeTargets(post('/p/1'), 201, { location: 'http://[::1' })).toEqual(['/p/1'])
  })

  it('reduces an absolute-form target to its path, and ignores one that is not an http URL', () => {
    expect(unsafeTargets(post('http://shop.test/p/1?a=1'), 200, {})).toEqual(['/p/1?a=1'])
    expect(unsafeTargets(post('shop.test:443'), 200, {})).toEqual([])
    expect(unsafeTargets(post('*'), 200, {})).toEqual([])
  })

  it('knows which methods are unsafe', () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'M-SEARCH', 'PURGE']) expect(isUnsafeMethod(m)).toBe(true)
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) expect(isUnsafeMethod(m)).toBe(false)
  })
})

describe('targeted cache-control fields (RFC 9213)', () => {
  it('lets Surrogate-Control, then CDN-Cache-Control, replace Cache-Control and Expires by default', () => {
    expect(lifetime({ 'cache-control': 'no-store', 'surrogate-control': 'max-age=600' })).toBe(600_000)
    expect(lifetime({ 'cache-control': 'max-age=3600', 'cdn-cache-control': 'max-age=5' })).toBe(5_000)
    expect(lifetime({ 'cdn-cache-control': 'max-age=5', 'surrogate-control': 'max-age=7' })).toBe(7_000)
    expect(storable(200, { 'cache-control': 'max-age=3600', 'surrogate-control': 'no-store' })).toEqual({ storable: false, reason: 'no-store' })
    expect(storable(200, { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'private' })).toEqual({ storable: false, reason: 'private' })
    // Expires is ignored once a targeted field decides.
    expect(storable(200, { 'surrogate-control': 'max-age=0', expires: httpDate(NOW + 60_000), date: httpDate(NOW) })).toEqual({ storable: false, reason: 'stale' })
    expect(lifetime({ 'surrogate-control': 'must-revalidate', expires: httpDate(NOW + 60_000) })).toBeUndefined()
  })

  it('falls back on Cache-Control when the targeted field is empty, and leaves Set-Cookie refused', () => {
    expect(lifetime({ 'cache-control': 'max-age=60', 'cdn-cache-control': '' })).toBe(60_000)
    expect(storable(200, { 'surrogate-control': 'max-age=60', 'set-cookie': 'a=1' })).toEqual({ storable: false, reason: 'set-cookie' })
  })

  it('follows the route list: another name, another order, or none', () => {
    const headers = { 'cache-control': 'max-age=60', 'surrogate-control': 'max-age=10', 'x-corral-cc': 'max-age=20' }
    expect(lifetime(headers, { targetedCacheControl: ['X-Corral-CC'] })).toBe(20_000)
    expect(lifetime(headers, { targetedCacheControl: [] })).toBe(60_000)
  })
})

describe('freshenedHeaders (RFC 9111 §4.3.4)', () => {
  it("takes the 304's fields over the stored ones, except those describing the stored body and its validator", () => {
    const stored = { 'content-type': 'text/plain', 'content-length': '10', etag: '"a"', 'content-encoding': 'gzip', 'x-a': '1', 'cache-control': 'max-age=1' }
    const fresh = { 'content-type': 'text/html', 'content-length': '0', etag: '"b"', 'content-encoding': 'br', 'x-b': '2', 'cache-control': 'max-age=60' }
    expect(freshenedHeaders(stored, fresh)).toEqual({
      'content-type': 'text/html',
      'content-length': '10',
      etag: '"a"',
      'content-encoding': 'gzip',
      'x-a': '1',
      'x-b': '2',
      'cache-control': 'max-age=60',
    })
    // The stored headers are not changed.
    expect(stored['cache-control']).toBe('max-age=1')
  })
})

describe('XFetch early refresh', () => {
  const expiresAt = NOW + 10_000

  it('refreshes with a chance that rises as expiry nears: e^(-remaining / (computeMs * beta))', () => {
    const rate = (remaining: number, computeMs: number, beta: number): number => {
      let due = 0
      for (let i = 1; i <= 1000; i++) if (xfetchDue(expiresAt, computeMs, beta, expiresAt - remaining, i / 1000)) due++
      return due / 1000
    }
    const chances = [1_000, 500, 200, 100, 0].map((r) => rate(r, 200, 1))
    for (let i = 1; i < chances.length; i++) expect(chances[i]).toBeGreaterThan(chances[i - 1] as number)
    expect(rate(5_000, 200, 1)).toBe(0)
    expect(rate(1_000, 200, 1)).toBeCloseTo(Math.exp(-5), 2)
    expect(rate(0, 200, 1)).toBe(1)
    // A larger beta, or a slower origin, refreshes earlier.
    expect(rate(1_000, 200, 3)).toBeCloseTo(Math.exp(-5 / 3), 2)
    expect(rate(1_000, 1_000, 1)).toBeCloseTo(Math.exp(-1), 2)
  })

  it('never refreshes an entry that took no time, and reads a random 0 as the smallest number above it', () => {
    expect(xfetchDue(expiresAt, 0, 1, expiresAt - 1, 0.000001)).toBe(false)
    expect(xfetchDue(expiresAt, 200, 1, NOW, 0)).toBe(true)
  })

  it('refreshes after write once the entry is older than refreshAfter, whatever XFetch says', () => {
    const e = { expiresAt, storedAt: NOW, computeMs: 0 }
    expect(earlyRefreshDue(e, route({ refreshAfter: '5s' }), NOW + 4_999, () => 0.5)).toBe(false)
    expect(earlyRefreshDue(e, route({ refreshAfter: '5s' }), NOW + 5_000, () => 0.5)).toBe(true)
    expect(earlyRefreshDue({ ...e, computeMs: 200 }, route({ earlyRefresh: true }), expiresAt - 10, () => 0.5)).toBe(true)
    expect(earlyRefreshDue({ ...e, computeMs: 200 }, route(), expiresAt - 10, () => 0.5)).toBe(false)
  })
})
