import { gunzipSync, gzipSync } from 'node:zlib'
import { parseList, Token } from 'structured-headers'
import { afterEach, describe, expect, it } from 'vitest'
import { getAndAbort, getWithInterim, rawGet, type Res } from '../helpers/http.js'
import { sleep, until, type AdapterFactory, type BodySpec, type OriginRequest, type Reply } from '../helpers/scenario.js'
import { harnessFor, runCleanups } from '../helpers/setup.js'
import { runFreshness } from './freshness.js'
import { runObserve } from './observe.js'
import { runGuarantees } from './guarantees.js'

/** Capabilities some adapters have and others do not. */
export interface SuiteOptions extends AdapterFactory {
  /** The app exposes an invalidation helper of its own (Fastify's `app.corral.invalidate`). */
  readonly appInvalidate?: boolean
  /** A route can turn caching off (Fastify's `config.cache: false`). */
  readonly routeDisable?: boolean
}

/** The bytes a body spec puts on the wire. */
function bytesOf(body: BodySpec): Buffer {
  if (typeof body === 'string') return Buffer.from(body)
  if (Buffer.isBuffer(body)) return body
  if ('json' in body) return Buffer.from(JSON.stringify(body.json))
  return Buffer.concat(body.stream.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)))
}

/** Bytes 0..255 repeated: every byte value, so any text re-encoding shows. */
function binary(length: number): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * 7 + 3) % 256
  return b
}

/** A body that names the origin call and the request, so a misplaced response is visible. */
const echo = (r: OriginRequest) => ({
  headers: { 'content-type': 'text/plain' },
  body: `${r.call} ${r.url}`,
})

const header = (res: Res, name: string): string | undefined => {
  const v = res.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/**
 * The HTTP behaviour of an adapter, written once and run against every framework. Each test
 * builds a fresh cache and app, talks to it over real HTTP and counts origin (handler) calls.
 */
export function runAdapterSuite(factory: SuiteOptions): void {
  describe(`conformance: ${factory.name}`, () => {
    const cleanups: (() => Promise<void>)[] = []
    afterEach(() => runCleanups(cleanups))
    const setup = harnessFor(factory, cleanups)
    runGuarantees(setup, factory)
    runFreshness(setup, factory)
    runObserve(setup, factory)

    describe('miss then hit', () => {
      const bodies: [string, BodySpec, string][] = [
        ['a string', 'hello, corral — ünïcödé', 'text/plain'],
        ['a Buffer', binary(3000), 'application/octet-stream'],
        ['JSON', { json: { id: 42, name: 'widget', tags: ['a', 'b'], nested: { ok: true } } }, 'application/json'],
        ['streamed chunks', { stream: ['first chunk;', Buffer.from([0, 1, 2, 255]), 'third chunk'], intervalMs: 15 }, 'application/octet-stream'],
      ]
      it.each(bodies)('%s body reaches the client unchanged on the miss and on the hit', async (_, body, type) => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/body', handler: () => ({ headers: { 'content-type': type }, body }) }],
        })
        const expected = bytesOf(body)

        const miss = await h.get('/body')
        expect(miss.status).toBe(200)
        expect(h.status(miss)).toBe('MISS')
        expect(miss.body.equals(expected)).toBe(true)
        expect(header(miss, 'content-type')).toContain(type)
        expect(miss.headers.age).toBeUndefined()
        // A streamed miss is passed through as it is produced, not buffered into one write.
        if (typeof body === 'object' && 'stream' in body) expect(miss.headers['transfer-encoding']).toBe('chunked')

        const hit = await h.get('/body')
        expect(hit.status).toBe(200)
        expect(h.status(hit)).toBe('HIT')
        expect(hit.body.equals(expected)).toBe(true)
        expect(header(hit, 'content-type')).toBe(header(miss, 'content-type'))
        expect(header(hit, 'content-length')).toBe(String(expected.length))
        expect(hit.headers.age).toMatch(/^\d+$/)
        expect(h.calls()).toBe(1)
      })

      it('Age counts the seconds spent in the cache', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/age', handler: echo }] })
        expect(h.status(await h.get('/age'))).toBe('MISS')
        h.clock.advance(7_000)
        const hit = await h.get('/age')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers.age).toBe('7')
        expect(h.calls()).toBe(1)
      })

      it('a POST passes through with BYPASS and is not stored', async () => {
        const h = await setup({ routes: [{ method: 'POST', path: '/submit', handler: echo }] })
        const a = await h.req('/submit', { method: 'POST' })
        const b = await h.req('/submit', { method: 'POST' })
        expect([h.status(a), h.status(b)]).toEqual(['BYPASS', 'BYPASS'])
        expect([a.text, b.text]).toEqual(['1 /submit', '2 /submit'])
        expect(h.calls()).toBe(2)
      })
    })

    describe('keys', () => {
      it('query parameter order does not matter', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/q', handler: echo }] })
        const first = await h.get('/q?a=1&b=2')
        const second = await h.get('/q?b=2&a=1')
        expect(h.status(first)).toBe('MISS')
        expect(h.status(second)).toBe('HIT')
        expect(second.text).toBe(first.text)
        expect(h.calls()).toBe(1)
      })

      it('duplicate parameters keep their order: a=1&a=2 and a=2&a=1 never share', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/q', handler: echo }] })
        const a = await h.get('/q?a=1&a=2')
        const b = await h.get('/q?a=2&a=1')
        expect([h.status(a), h.status(b)]).toEqual(['MISS', 'MISS'])
        expect(a.text).toBe('1 /q?a=1&a=2')
        expect(b.text).toBe('2 /q?a=2&a=1')
        expect((await h.get('/q?a=1&a=2')).text).toBe('1 /q?a=1&a=2')
        expect((await h.get('/q?a=2&a=1')).text).toBe('2 /q?a=2&a=1')
        expect(h.calls()).toBe(2)
      })

      it('an encoded & in a query value (q=a%26b) never shares with q=a&b', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/q', handler: echo }] })
        const encoded = await h.get('/q?q=a%26b')
        const split = await h.get('/q?q=a&b')
        expect(encoded.text).toBe('1 /q?q=a%26b')
        expect(split.text).toBe('2 /q?q=a&b')
        expect(h.status(split)).toBe('MISS')
        const again = await h.get('/q?q=a%26b')
        expect(h.status(again)).toBe('HIT')
        expect(again.text).toBe('1 /q?q=a%26b')
        expect((await h.get('/q?q=a&b')).text).toBe('2 /q?q=a&b')
        expect(h.calls()).toBe(2)
      })

      it('an encoded slash in the path (/files/a%2Fb) never shares with /files/a/b', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/files/*', handler: echo }] })
        const encoded = await h.get('/files/a%2Fb')
        const plain = await h.get('/files/a/b')
        expect(encoded.status).toBe(200)
        expect(plain.status).toBe(200)
        expect(encoded.text).toBe('1 /files/a%2Fb')
        expect(plain.text).toBe('2 /files/a/b')
        expect(h.status(plain)).toBe('MISS')
        expect((await h.get('/files/a%2Fb')).text).toBe('1 /files/a%2Fb')
        expect((await h.get('/files/a/b')).text).toBe('2 /files/a/b')
        expect(h.calls()).toBe(2)
      })

      it('utm_* parameters are left out of the key with query: { exclude: ["utm_*"] }', async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/landing', cache: { query: { exclude: ['utm_*'] } }, handler: echo }],
        })
        const first = await h.get('/landing?id=1&utm_source=news&utm_medium=mail')
        const second = await h.get('/landing?utm_source=ads&id=1')
        const third = await h.get('/landing?id=1')
        expect(h.status(first)).toBe('MISS')
        expect([h.status(second), h.status(third)]).toEqual(['HIT', 'HIT'])
        expect(third.text).toBe(first.text)
        const other = await h.get('/landing?id=2&utm_source=news')
        expect(h.status(other)).toBe('MISS')
        expect(h.calls()).toBe(2)
      })

      it('hosts are isolated: a.example and b.example each get their own body', async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/home', handler: (r) => ({ body: `${r.call} ${r.hostname}` }) }],
        })
        const a = await h.get('/home', { Host: 'a.example' })
        const b = await h.get('/home', { Host: 'b.example' })
        expect(a.text).toBe('1 a.example')
        expect(b.text).toBe('2 b.example')
        expect(h.status(b)).toBe('MISS')
        expect((await h.get('/home', { Host: 'a.example' })).text).toBe('1 a.example')
        expect((await h.get('/home', { Host: 'b.example' })).text).toBe('2 b.example')
        expect(h.calls()).toBe(2)
      })

      it('a response to X-Forwarded-Host: evil.example is never served to a normal request', async () => {
        const h = await setup({
          trustProxy: true,
          routes: [{ method: 'GET', path: '/reflect', handler: (r) => ({ body: `${r.call} link=https://${r.hostname}/` }) }],
        })
        const attack = await h.get('/reflect', { Host: 'shop.example', 'X-Forwarded-Host': 'evil.example' })
        expect(attack.text).toBe('1 link=https://evil.example/')
        const normal = await h.get('/reflect', { Host: 'shop.example' })
        expect(normal.text).not.toContain('evil.example')
        expect(normal.text).toBe('2 link=https://shop.example/')
        expect(h.status(normal)).toBe('MISS')
        const normalAgain = await h.get('/reflect', { Host: 'shop.example' })
        expect(normalAgain.text).toBe('2 link=https://shop.example/')
        expect(h.calls()).toBe(2)
      })
    })

    describe('odd requests', () => {
      it('a very long query string is cached like any other (the key is bounded, not the URL)', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/long', handler: (r) => ({ body: `${r.call} ${r.url.length}` }) }] })
        const long = `/long?x=${'a'.repeat(6000)}`
        const a = await h.get(long)
        const b = await h.get(long)
        const other = await h.get(`${long}b`)
        expect([h.status(a), h.status(b), h.status(other)]).toEqual(['MISS', 'HIT', 'MISS'])
        expect(b.text).toBe(a.text)
        expect(h.calls()).toBe(2)
      })

      it('a malformed percent-escape is an ordinary request, never an error from the cache', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/q', handler: echo }] })
        const a = await h.get('/q?x=%zz&y=%E0%A4%A')
        const b = await h.get('/q?x=%zz&y=%E0%A4%A')
        expect([a.status, b.status]).toEqual([200, 200])
        expect(a.text).toBe('1 /q?x=%zz&y=%E0%A4%A')
        expect(h.status(b)).toBe('HIT')
        expect(h.calls()).toBe(1)
      })

      it('concurrent cold requests for different variants each get their own variant', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/lang',
              handler: async (r) => {
                await sleep(40)
                return { headers: { vary: 'Accept-Language' }, body: `lang=${String(r.headers['accept-language'])}` }
              },
            },
          ],
        })
        const langs = ['en', 'fr', 'de', 'en', 'fr', 'de', 'en', 'fr', 'de', 'en', 'fr', 'de']
        const responses = await Promise.all(langs.map((l) => h.get('/lang', { 'Accept-Language': l })))
        responses.forEach((res, i) => expect(res.text).toBe(`lang=${langs[i]}`))
        for (const l of ['en', 'fr', 'de']) {
          const again = await h.get('/lang', { 'Accept-Language': l })
          expect(again.text).toBe(`lang=${l}`)
          expect(h.status(again)).toBe('HIT')
        }
      })
    })

    describe('HEAD', () => {
      it('HEAD does not create an entry; after a GET it is a HIT with no body and the right Content-Length', async () => {
        const body = 'head and get share one entry'
        const h = await setup({
          routes: [{ method: 'GET', path: '/doc', handler: () => ({ headers: { 'content-type': 'text/plain' }, body }) }],
        })
        const head1 = await h.req('/doc', { method: 'HEAD' })
        expect(head1.status).toBe(200)
        expect(head1.body.length).toBe(0)
        expect(h.status(head1)).toBe('MISS')
        expect(h.calls()).toBe(1)

        const get1 = await h.get('/doc')
        expect(h.status(get1)).toBe('MISS')
        expect(get1.text).toBe(body)
        expect(h.calls()).toBe(2)

        const get2 = await h.get('/doc')
        expect(h.status(get2)).toBe('HIT')
        expect(get2.text).toBe(body)

        const head2 = await h.req('/doc', { method: 'HEAD' })
        expect(head2.status).toBe(200)
        expect(h.status(head2)).toBe('HIT')
        expect(head2.body.length).toBe(0)
        expect(header(head2, 'content-length')).toBe(String(Buffer.byteLength(body)))
        expect(header(head2, 'content-type')).toBe(header(get1, 'content-type'))
        expect(head2.headers.age).toMatch(/^\d+$/)
        expect(h.calls()).toBe(2)
      })
    })

    describe('conditional requests', () => {
      const etagRoute = {
        method: 'GET' as const,
        path: '/etag',
        handler: () => ({ headers: { 'content-type': 'text/plain', etag: '"v1"' }, body: 'versioned body' }),
      }

      it('If-None-Match matching the stored ETag gets a 304 from the cache', async () => {
        const h = await setup({ routes: [etagRoute] })
        expect(h.status(await h.get('/etag'))).toBe('MISS')
        for (const inm of ['"v1"', 'W/"v1"', '"other", "v1"']) {
          const res = await h.get('/etag', { 'If-None-Match': inm })
          expect(res.status).toBe(304)
          expect(h.status(res)).toBe('HIT')
          expect(res.body.length).toBe(0)
          expect(header(res, 'etag')).toBe('"v1"')
        }
        expect(h.calls()).toBe(1)
      })

      it('If-None-Match not matching gets the full 200 from the cache', async () => {
        const h = await setup({ routes: [etagRoute] })
        await h.get('/etag')
        const res = await h.get('/etag', { 'If-None-Match': '"v0"' })
        expect(res.status).toBe(200)
        expect(h.status(res)).toBe('HIT')
        expect(res.text).toBe('versioned body')
        expect(h.calls()).toBe(1)
      })

      it('If-Modified-Since is compared with Date when the entry has no Last-Modified (RFC 9111 §4.3.2)', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/dated', handler: echo }] })
        const first = await h.get('/dated')
        const date = Date.parse(header(first, 'date') ?? '')
        expect(Number.isNaN(date)).toBe(false)
        expect(header(first, 'last-modified')).toBeUndefined()
        const later = await h.get('/dated', { 'If-Modified-Since': new Date(date + 60_000).toUTCString() })
        expect([later.status, h.status(later), later.body.length]).toEqual([304, 'HIT', 0])
        const earlier = await h.get('/dated', { 'If-Modified-Since': new Date(date - 3_600_000).toUTCString() })
        expect([earlier.status, h.status(earlier), earlier.text]).toEqual([200, 'HIT', '1 /dated'])
        expect(h.calls()).toBe(1)
      })
    })

    describe('partial content', () => {
      it('a Range request on a cold cache goes to the origin and stores nothing', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/range', handler: echo }] })
        const ranged = await h.get('/range', { Range: 'bytes=0-3' })
        expect(h.status(ranged)).toBe('MISS')
        expect(h.calls()).toBe(1)
        const plain = await h.get('/range')
        expect([h.status(plain), plain.text]).toEqual(['MISS', '2 /range'])
        expect(h.calls()).toBe(2)
      })

      it('a stored 200 answers single byte ranges with 206 and Content-Range, and 416 past the end', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/range', handler: () => ({ headers: { 'content-type': 'text/plain', etag: '"r1"' }, body: '01234567890' }) }] })
        expect((await h.get('/range')).text).toBe('01234567890')
        const cases: [string, string, string][] = [
          ['bytes=0-1', '01', 'bytes 0-1/11'],
          ['bytes=1-', '1234567890', 'bytes 1-10/11'],
          ['bytes=-1', '0', 'bytes 10-10/11'],
          ['bytes=4-400', '4567890', 'bytes 4-10/11'],
        ]
        for (const [range, body, contentRange] of cases) {
          const res = await h.get('/range', { Range: range })
          expect([res.status, h.status(res), res.text, header(res, 'content-range'), header(res, 'content-length')]).toEqual([206, 'HIT', body, contentRange, String(body.length)])
          expect(header(res, 'content-type')).toMatch(/^text\/plain/)
        }
        const past = await h.get('/range', { Range: 'bytes=11-' })
        expect([past.status, h.status(past), header(past, 'content-range'), past.body.length]).toEqual([416, 'HIT', 'bytes */11', 0])
        // Several ranges, an invalid one, or an If-Range that names another version: the whole body.
        const whole: Record<string, string>[] = [{ Range: 'bytes=0-1,4-5' }, { Range: 'bytes=5-2' }, { Range: 'bytes=0-1', 'If-Range': '"r0"' }]
        for (const extra of whole) {
          const res = await h.get('/range', extra)
          expect([res.status, h.status(res), res.text]).toEqual([200, 'HIT', '01234567890'])
        }
        const matching = await h.get('/range', { Range: 'bytes=0-1', 'If-Range': '"r1"' })
        expect([matching.status, matching.text]).toEqual([206, '01'])
        // Conditions come first: a matching If-None-Match is a 304, not a range.
        const notModified = await h.get('/range', { Range: 'bytes=0-1', 'If-None-Match': '"r1"' })
        expect(notModified.status).toBe(304)
        // The stored entry is still whole.
        expect((await h.get('/range')).text).toBe('01234567890')
        expect(h.calls()).toBe(1)
      })

      it('a 206 response is never stored', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/partial',
              handler: () => ({ status: 206, headers: { 'content-range': 'bytes 0-3/10', 'content-type': 'text/plain' }, body: 'abcd' }),
            },
          ],
        })
        const a = await h.get('/partial')
        const b = await h.get('/partial')
        expect([a.status, b.status]).toEqual([206, 206])
        expect([h.status(a), h.status(b)]).toEqual(['MISS', 'MISS'])
        expect(b.text).toBe('abcd')
        expect(h.calls()).toBe(2)
      })
    })

    describe('Set-Cookie', () => {
      const cookieRoute = (delayMs: number) => ({
        method: 'GET' as const,
        path: '/session',
        handler: async (r: OriginRequest) => {
          if (delayMs) await sleep(delayMs)
          return { headers: { 'set-cookie': `sid=call-${r.call}; Path=/; HttpOnly`, 'content-type': 'text/plain' }, body: `call-${r.call}` }
        },
      })
      const cookieId = (res: Res) => /sid=(call-\d+)/.exec(header(res, 'set-cookie') ?? '')?.[1]

      it('a response with Set-Cookie is not stored', async () => {
        const h = await setup({ routes: [cookieRoute(0)] })
        const responses = [await h.get('/session'), await h.get('/session'), await h.get('/session')]
        expect(responses.map((r) => r.text)).toEqual(['call-1', 'call-2', 'call-3'])
        expect(responses.map(cookieId)).toEqual(['call-1', 'call-2', 'call-3'])
        expect(responses.map((r) => h.status(r))).toEqual(['MISS', 'MISS', 'MISS'])
        expect(h.calls()).toBe(3)
      })

      it("20 concurrent cold requests: nobody receives the leader's cookie or body", async () => {
        const h = await setup({ routes: [cookieRoute(40)] })
        const responses = await h.many(20, '/session')
        for (const res of responses) {
          expect(res.status).toBe(200)
          expect(cookieId(res)).toBeDefined()
          expect(cookieId(res)).toBe(res.text)
        }
        const ids = responses.map((r) => r.text)
        expect(new Set(ids).size).toBe(20)
        expect(h.calls()).toBe(20)
        expect(h.cache.stats().inFlight).toBe(0)
      })
      it("setCookie: 'strip' stores the response without its cookie: the filler gets its cookie, waiters and hits get none", async () => {
        const h = await setup({ cacheOptions: { setCookie: 'strip' }, routes: [cookieRoute(40)] })
        const responses = await h.many(20, '/session')
        const withCookie = responses.filter((r) => cookieId(r) !== undefined)
        expect(withCookie.map((r) => [cookieId(r), r.text])).toEqual([['call-1', 'call-1']])
        expect(new Set(responses.map((r) => r.text))).toEqual(new Set(['call-1']))
        const hit = await h.get('/session')
        expect([h.status(hit), hit.text, header(hit, 'set-cookie')]).toEqual(['HIT', 'call-1', undefined])
        expect(h.calls()).toBe(1)
      })
    })

    describe('Cache-Control', () => {
      it.each(['private', 'no-store', 'private, max-age=600', 'no-store, s-maxage=600', 'no-cache'])(
        'Cache-Control: %s is not stored',
        async (cc) => {
          const h = await setup({
            routes: [{ method: 'GET', path: '/cc', handler: (r) => ({ headers: { 'cache-control': cc }, body: `${r.call}` }) }],
          })
          const a = await h.get('/cc')
          const b = await h.get('/cc')
          expect([a.text, b.text]).toEqual(['1', '2'])
          expect([h.status(a), h.status(b)]).toEqual(['MISS', 'MISS'])
          expect(h.calls()).toBe(2)
        },
      )

      it('without a ttl and without freshness headers nothing is stored', async () => {
        const h = await setup({ cacheOptions: { ttl: undefined }, routes: [{ method: 'GET', path: '/nofresh', handler: echo }] })
        await h.get('/nofresh')
        const b = await h.get('/nofresh')
        expect(h.status(b)).toBe('MISS')
        expect(h.calls()).toBe(2)
      })

      it('max-age drives Age and expiry', async () => {
        const h = await setup({
          cacheOptions: { ttl: undefined },
          routes: [{ method: 'GET', path: '/maxage', handler: (r) => ({ headers: { 'cache-control': 'public, max-age=60' }, body: `${r.call}` }) }],
        })
        expect(h.status(await h.get('/maxage'))).toBe('MISS')
        h.clock.advance(30_000)
        const hit = await h.get('/maxage')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers.age).toBe('30')
        expect(hit.text).toBe('1')
        h.clock.advance(31_000)
        const expired = await h.get('/maxage')
        expect(h.status(expired)).toBe('MISS')
        expect(expired.text).toBe('2')
        expect(h.calls()).toBe(2)
      })

      it('s-maxage wins over max-age for a shared cache', async () => {
        const h = await setup({
          cacheOptions: { ttl: undefined },
          routes: [{ method: 'GET', path: '/smax', handler: (r) => ({ headers: { 'cache-control': 'max-age=600, s-maxage=10' }, body: `${r.call}` }) }],
        })
        await h.get('/smax')
        h.clock.advance(9_000)
        const hit = await h.get('/smax')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers.age).toBe('9')
        h.clock.advance(2_000)
        expect(h.status(await h.get('/smax'))).toBe('MISS')
        expect(h.calls()).toBe(2)
      })

      it("the origin's Age counts against max-age and adds to the hit's Age", async () => {
        const h = await setup({
          cacheOptions: { ttl: undefined },
          routes: [{ method: 'GET', path: '/aged', handler: (r) => ({ headers: { 'cache-control': 'max-age=60', age: '20' }, body: `${r.call}` }) }],
        })
        await h.get('/aged')
        h.clock.advance(10_000)
        const hit = await h.get('/aged')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers.age).toBe('30')
        h.clock.advance(31_000)
        expect(h.status(await h.get('/aged'))).toBe('MISS')
        expect(h.calls()).toBe(2)
      })
    })

    describe('request credentials', () => {
      it('a request with Authorization bypasses the cache and is never served a stored entry', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/me', handler: echo }] })
        expect(h.status(await h.get('/me'))).toBe('MISS')
        const a = await h.get('/me', { Authorization: 'Bearer alice' })
        const b = await h.get('/me', { Authorization: 'Bearer alice' })
        expect([h.status(a), h.status(b)]).toEqual(['BYPASS', 'BYPASS'])
        expect([a.text, b.text]).toEqual(['2 /me', '3 /me'])
        const anon = await h.get('/me')
        expect(h.status(anon)).toBe('HIT')
        expect(anon.text).toBe('1 /me')
        expect(h.calls()).toBe(3)
      })

      it("authorization: 'ignore' caches authenticated requests", async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/pub', cache: { authorization: 'ignore' }, handler: echo }] })
        const a = await h.get('/pub', { Authorization: 'Bearer alice' })
        const b = await h.get('/pub', { Authorization: 'Bearer bob' })
        expect([h.status(a), h.status(b)]).toEqual(['MISS', 'HIT'])
        expect(h.calls()).toBe(1)
      })

      it('a request with Cookie bypasses the cache by default', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/page', handler: echo }] })
        expect(h.status(await h.get('/page'))).toBe('MISS')
        const a = await h.get('/page', { Cookie: 'sid=1' })
        const b = await h.get('/page', { Cookie: 'sid=1' })
        expect([h.status(a), h.status(b)]).toEqual(['BYPASS', 'BYPASS'])
        expect(b.text).toBe('3 /page')
        expect(h.calls()).toBe(3)
      })

      it("cookies: 'ignore' caches requests that carry cookies", async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/page', cache: { cookies: 'ignore' }, handler: echo }] })
        const a = await h.get('/page', { Cookie: 'sid=1' })
        const b = await h.get('/page', { Cookie: 'sid=2' })
        const c = await h.get('/page')
        expect([h.status(a), h.status(b), h.status(c)]).toEqual(['MISS', 'HIT', 'HIT'])
        expect(c.text).toBe('1 /page')
        expect(h.calls()).toBe(1)
      })
    })

    describe('Vary', () => {
      it('Accept-Encoding is narrowed to one coding (gzip, br, deflate or identity): 7 ways of asking make 3 origin calls, each client gets a coding it accepts', async () => {
        const seen: string[] = []
        const routes = [
          {
            method: 'GET' as const,
            path: '/compressed',
            handler: (r: OriginRequest): Reply => {
              const asked = String(r.headers['accept-encoding'] ?? 'none')
              seen.push(asked)
              // What a compression middleware does: the best coding it can make that the client accepts.
              const coding = /\bbr\b/.test(asked) ? 'br' : /\bgzip\b/.test(asked) ? 'gzip' : 'identity'
              return { headers: { vary: 'Accept-Encoding', 'content-type': 'text/plain', 'x-coding': coding }, body: `${r.call} ${coding}` }
            },
          },
        ]
        const h = await setup({ routes })
        const clients = ['gzip', 'identity', undefined, 'br', 'gzip, deflate, br, zstd', 'GZIP', 'br;q=1, gzip;q=0.5']
        const codings: string[] = []
        for (const ae of clients) {
          // Node's own client: it sends no Accept-Encoding unless told (supertest sends one).
          const res = await rawGet(h.app.url, '/compressed', ae === undefined ? {} : { 'accept-encoding': ae })
          codings.push(String(res.headers['x-coding']))
        }
        expect(codings).toEqual(['gzip', 'identity', 'identity', 'br', 'gzip', 'gzip', 'gzip'])
        expect(h.calls()).toBe(3)
        // The origin saw one coding per request, never a list.
        expect(seen).toEqual(['gzip', 'identity', 'br'])

        // encodings: false keys on the field as clients send it (normalised only for case and spacing).
        const raw = await setup({ routes, cacheOptions: { encodings: false } })
        for (const ae of clients) await rawGet(raw.app.url, '/compressed', ae === undefined ? {} : { 'accept-encoding': ae })
        expect(raw.calls()).toBe(6)
      })

      it('Vary: Accept-Language stores one variant per language and serves each to its match', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/greeting',
              handler: (r) => ({
                headers: { vary: 'Accept-Language', 'content-type': 'text/plain' },
                body: `${r.call} ${String(r.headers['accept-language'] ?? 'none')}`,
              }),
            },
          ],
        })
        const en = await h.get('/greeting', { 'Accept-Language': 'en' })
        const fr = await h.get('/greeting', { 'Accept-Language': 'fr' })
        expect([en.text, fr.text]).toEqual(['1 en', '2 fr'])
        expect([h.status(en), h.status(fr)]).toEqual(['MISS', 'MISS'])

        const en2 = await h.get('/greeting', { 'Accept-Language': 'en' })
        const fr2 = await h.get('/greeting', { 'Accept-Language': 'fr' })
        expect([en2.text, fr2.text]).toEqual(['1 en', '2 fr'])
        expect([h.status(en2), h.status(fr2)]).toEqual(['HIT', 'HIT'])

        const none = await h.get('/greeting')
        expect(none.text).toBe('3 none')
        expect(h.status(none)).toBe('MISS')
        const none2 = await h.get('/greeting')
        expect(none2.text).toBe('3 none')
        expect(h.status(none2)).toBe('HIT')
        expect((await h.get('/greeting', { 'Accept-Language': 'en' })).text).toBe('1 en')
        expect(h.calls()).toBe(3)
      })

      it('a request without the header is not served a variant stored with one', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/greeting',
              handler: (r) => ({ headers: { vary: 'accept-language' }, body: `${r.call} ${String(r.headers['accept-language'] ?? 'none')}` }),
            },
          ],
        })
        await h.get('/greeting', { 'Accept-Language': 'de' })
        const none = await h.get('/greeting')
        expect(none.text).toBe('2 none')
        expect(h.status(none)).toBe('MISS')
        expect(h.calls()).toBe(2)
      })

      it('Vary: * is never stored', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/star', handler: (r) => ({ headers: { vary: '*' }, body: `${r.call}` }) }] })
        const a = await h.get('/star')
        const b = await h.get('/star')
        expect([a.text, b.text]).toEqual(['1', '2'])
        expect(h.status(b)).toBe('MISS')
        expect(h.calls()).toBe(2)
      })
    })

    describe('status codes', () => {
      it.each([404, 500])('a %i is not stored by default', async (status) => {
        const h = await setup({ routes: [{ method: 'GET', path: '/err', handler: (r) => ({ status, body: `${r.call} error` }) }] })
        const a = await h.get('/err')
        const b = await h.get('/err')
        expect([a.status, b.status]).toEqual([status, status])
        expect([h.status(a), h.status(b)]).toEqual(['MISS', 'MISS'])
        expect(b.text).toBe('2 error')
        expect(h.calls()).toBe(2)
      })

      it('a 404 is stored when the route lists it in statuses', async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/gone', cache: { statuses: [200, 404] }, handler: (r) => ({ status: 404, body: `${r.call} missing` }) }],
        })
        const a = await h.get('/gone')
        const b = await h.get('/gone')
        expect([a.status, b.status]).toEqual([404, 404])
        expect([h.status(a), h.status(b)]).toEqual(['MISS', 'HIT'])
        expect(b.text).toBe('1 missing')
        expect(h.calls()).toBe(1)
      })
    })

    describe('body size cap', () => {
      it('a body over maxBodyBytes reaches the client intact but is not stored', async () => {
        const big = binary(4096)
        const h = await setup({
          routes: [
            { method: 'GET', path: '/big', cache: { maxBodyBytes: 1024 }, handler: () => ({ headers: { 'content-type': 'application/octet-stream' }, body: big }) },
          ],
        })
        for (let i = 0; i < 2; i++) {
          const res = await h.get('/big')
          expect(res.status).toBe(200)
          expect(res.body.length).toBe(4096)
          expect(res.body.equals(big)).toBe(true)
          expect(h.status(res)).toBe('MISS')
        }
        expect(h.calls()).toBe(2)
      })

      it('a streamed body over maxBodyBytes reaches the client intact but is not stored', async () => {
        const chunks = [binary(1000), Buffer.alloc(1000, 0x61), binary(1000).reverse(), Buffer.alloc(1000, 0xfe)]
        const whole = Buffer.concat(chunks)
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/bigstream',
              cache: { maxBodyBytes: 1500 },
              handler: () => ({ headers: { 'content-type': 'application/octet-stream' }, body: { stream: chunks, intervalMs: 5 } }),
            },
          ],
        })
        for (let i = 0; i < 2; i++) {
          const res = await h.get('/bigstream')
          expect(res.status).toBe(200)
          expect(res.body.length).toBe(4000)
          expect(res.body.equals(whole)).toBe(true)
          expect(h.status(res)).toBe('MISS')
        }
        expect(h.calls()).toBe(2)
      })

      it('the cap counts bytes, not characters', async () => {
        const euros = '€'.repeat(600) // 600 characters, 1800 bytes
        const h = await setup({
          routes: [
            { method: 'GET', path: '/euros', cache: { maxBodyBytes: 1024 }, handler: () => ({ headers: { 'content-type': 'text/plain' }, body: euros }) },
          ],
        })
        for (let i = 0; i < 2; i++) {
          const res = await h.get('/euros')
          expect(res.text).toBe(euros)
          expect(h.status(res)).toBe('MISS')
        }
        expect(h.calls()).toBe(2)
      })

      it('the cap counts bytes of streamed string chunks too', async () => {
        const chunk = 'ü'.repeat(300) // 300 characters, 600 bytes
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/umlauts',
              cache: { maxBodyBytes: 1024 },
              handler: () => ({ headers: { 'content-type': 'text/plain; charset=utf-8' }, body: { stream: [chunk, chunk], intervalMs: 5 } }),
            },
          ],
        })
        for (let i = 0; i < 2; i++) {
          const res = await h.get('/umlauts')
          expect(res.text).toBe(chunk + chunk)
          expect(h.status(res)).toBe('MISS')
        }
        expect(h.calls()).toBe(2)
      })

      it('a body within maxBodyBytes is stored', async () => {
        const small = binary(1000)
        const h = await setup({
          routes: [{ method: 'GET', path: '/small', cache: { maxBodyBytes: 1024 }, handler: () => ({ headers: { 'content-type': 'application/octet-stream' }, body: small }) }],
        })
        await h.get('/small')
        const hit = await h.get('/small')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.body.equals(small)).toBe(true)
        expect(h.calls()).toBe(1)
      })
    })

    describe('tag headers', () => {
      it.each([
        ['Cache-Tag', 'group-a, group-b', 'group-b'],
        ['Surrogate-Key', 'key-1 key-2', 'key-2'],
      ])('%s tags the entry for invalidation and is not sent to the client', async (name, value, tag) => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/tagged/:id', handler: (r) => ({ headers: { [name]: value, 'content-type': 'text/plain' }, body: `${r.call}` }) }],
        })
        const miss = await h.get('/tagged/1')
        expect(h.status(miss)).toBe('MISS')
        expect(miss.headers[name.toLowerCase()]).toBeUndefined()
        const hit = await h.get('/tagged/1')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers[name.toLowerCase()]).toBeUndefined()

        await h.get('/tagged/2')
        expect(await h.cache.invalidate({ tags: ['unrelated'] })).toBe(0)
        expect(h.status(await h.get('/tagged/1'))).toBe('HIT')
        expect(await h.cache.invalidate({ tags: [tag] })).toBe(2)
        const after = await h.get('/tagged/1')
        expect(h.status(after)).toBe('MISS')
        expect(after.text).toBe('3')
        expect(h.calls()).toBe(3)
      })
    })

    describe('invalidation', () => {
      const productRoutes = () => [
        {
          method: 'GET' as const,
          path: '/products/:id',
          cache: { tags: (req: { params: { id: string } }) => [`product:${req.params.id}`] },
          handler: (r: OriginRequest) => ({ headers: { 'content-type': 'text/plain' }, body: `product ${String(r.params.id)} v${r.call}` }),
        },
        {
          method: 'PUT' as const,
          path: '/products/:id',
          invalidate: (req: { params: { id: string } }) => ({ tags: [`product:${req.params.id}`] }),
          handler: (r: OriginRequest) => {
            if (r.query.has('throw')) throw new Error('mutation failed')
            return { status: Number(r.query.get('status') ?? 200), body: 'updated' }
          },
        },
        // Not `:id`: with app-wide options only, the product tags function sees this route too.
        { method: 'GET' as const, path: '/other/:slug', handler: echo },
      ]

      it('the route invalidate helper drops the entry only after a 2xx mutation', async () => {
        const h = await setup({ defaults: { invalidateAfterUnsafe: false }, routes: productRoutes() })
        expect((await h.get('/products/42')).text).toBe('product 42 v1')
        expect(h.status(await h.get('/products/42'))).toBe('HIT')

        for (const status of [400, 404, 409, 500, 503]) {
          const put = await h.req(`/products/42?status=${status}`, { method: 'PUT' })
          expect(put.status).toBe(status)
          const get = await h.get('/products/42')
          expect(h.status(get)).toBe('HIT')
          expect(get.text).toBe('product 42 v1')
        }

        // A mutation whose handler throws (the framework answers 500) leaves it too.
        expect((await h.req('/products/42?throw=1', { method: 'PUT' })).status).toBe(500)
        expect(h.status(await h.get('/products/42'))).toBe('HIT')

        // A mutation of another product leaves this one.
        expect((await h.req('/products/43', { method: 'PUT' })).status).toBe(200)
        expect(h.status(await h.get('/products/42'))).toBe('HIT')

        const put = await h.req('/products/42', { method: 'PUT' })
        expect(put.status).toBe(200)
        const after = await h.get('/products/42')
        expect(h.status(after)).toBe('MISS')
        expect(after.text).toBe('product 42 v2')
        expect(h.calls('GET /products/:id')).toBe(2)
        expect(h.calls('PUT /products/:id')).toBe(8)
      })

      it('the route invalidate helper soft-purges with soft: true: the next request is answered stale and the entry refreshed', async () => {
        const routes = productRoutes().map((r) =>
          r.method === 'PUT' ? { ...r, invalidate: (req: { params: { id: string } }) => ({ tags: [`product:${req.params.id}`], soft: true }) } : r,
        )
        const h = await setup({ defaults: { invalidateAfterUnsafe: false }, cacheOptions: { staleWhileRevalidate: '1m' }, routes })
        expect((await h.get('/products/42')).text).toBe('product 42 v1')
        expect((await h.req('/products/42', { method: 'PUT' })).status).toBe(200)
        const stale = await h.get('/products/42')
        expect([h.status(stale), stale.text]).toEqual(['STALE', 'product 42 v1'])
        await until(() => h.cache.stats().stored === 2, 5000, 'the refresh after the soft purge')
        const fresh = await h.get('/products/42')
        expect([h.status(fresh), fresh.text]).toEqual(['HIT', 'product 42 v2'])
      })

      describe('after an unsafe request (RFC 9111 §4.4)', () => {
        const pageRoutes = (reply: (r: OriginRequest) => Reply = () => ({ body: 'done' })) => [
          { method: 'GET' as const, path: '/pages/:id', handler: echo },
          { method: 'POST' as const, path: '/pages/:id', handler: reply },
          { method: 'DELETE' as const, path: '/pages/:id', handler: reply },
        ]
        const warmPages = async (h: Awaited<ReturnType<typeof setup>>, paths: readonly string[]) => {
          for (const p of paths) {
            expect(h.status(await h.get(p))).toBe('MISS')
            expect(h.status(await h.get(p))).toBe('HIT')
          }
        }
        const statusesOf = async (h: Awaited<ReturnType<typeof setup>>, paths: readonly string[]) => {
          const out: Record<string, string | undefined> = {}
          for (const p of paths) out[p] = h.status(await h.get(p))
          return out
        }

        it('a 2xx or 3xx answer drops the entries of its URL, and nothing else; an error answer drops nothing', async () => {
          const h = await setup({
            routes: pageRoutes((r) => ({ status: r.method === 'DELETE' ? 303 : Number(r.query.get('status') ?? 200), body: 'done' })),
          })
          await warmPages(h, ['/pages/1', '/pages/2'])
          for (const status of [400, 404, 500, 503]) {
            expect((await h.req(`/pages/1?status=${status}`, { method: 'POST' })).status).toBe(status)
          }
          expect(await statusesOf(h, ['/pages/1', '/pages/2'])).toEqual({ '/pages/1': 'HIT', '/pages/2': 'HIT' })

          // The POST's own URL has a query: only that query's entry would go. This one has none.
          expect((await h.req('/pages/1', { method: 'POST' })).status).toBe(200)
          expect(await statusesOf(h, ['/pages/1', '/pages/2'])).toEqual({ '/pages/1': 'MISS', '/pages/2': 'HIT' })
          // The origin's third GET (the warm-up made two), stored again and answered from the cache.
          const again = await h.get('/pages/1')
          expect([h.status(again), again.text]).toEqual(['HIT', '3 /pages/1'])

          expect((await h.req('/pages/2', { method: 'DELETE' })).status).toBe(303)
          expect(h.status(await h.get('/pages/2'))).toBe('MISS')
          expect(h.calls('GET /pages/:id')).toBe(4)
        })

        it('a POST with a query drops only the entry of that query', async () => {
          const h = await setup({ routes: pageRoutes() })
          await warmPages(h, ['/pages/1?v=1', '/pages/1?v=2', '/pages/1'])
          expect((await h.req('/pages/1?v=1', { method: 'POST' })).status).toBe(200)
          expect(await statusesOf(h, ['/pages/1?v=1', '/pages/1?v=2', '/pages/1'])).toEqual({ '/pages/1?v=1': 'MISS', '/pages/1?v=2': 'HIT', '/pages/1': 'HIT' })
        })

        it('drops the same-origin URLs in Location and Content-Location, never another host\'s', async () => {
          const h = await setup({
            routes: pageRoutes((r) => ({
              status: 201,
              headers: {
                location: String(r.query.get('location')),
                'content-location': String(r.query.get('cl')),
              },
              body: 'created',
            })),
          })
          const paths = ['/pages/1', '/pages/2', '/pages/3', '/pages/4', '/pages/5']
          await warmPages(h, paths)
          const host = new URL(h.app.url).host
          const q = (location: string, cl: string) => `?location=${encodeURIComponent(location)}&cl=${encodeURIComponent(cl)}`
          expect((await h.req(`/pages/9${q('/pages/2', `http://${host}/pages/3`)}`, { method: 'POST' })).status).toBe(201)
          expect((await h.req(`/pages/9${q('http://elsewhere.test/pages/4', '../pages/5')}`, { method: 'POST' })).status).toBe(201)
          expect(await statusesOf(h, paths)).toEqual({ '/pages/1': 'HIT', '/pages/2': 'MISS', '/pages/3': 'MISS', '/pages/4': 'HIT', '/pages/5': 'MISS' })
        })

        it('invalidateAfterUnsafe: false leaves the entries to the routes\' own invalidation', async () => {
          const h = await setup({ defaults: { invalidateAfterUnsafe: false }, routes: pageRoutes() })
          await warmPages(h, ['/pages/1'])
          expect((await h.req('/pages/1', { method: 'POST' })).status).toBe(200)
          expect(h.status(await h.get('/pages/1'))).toBe('HIT')
        })
      })

      const warm = async (h: Awaited<ReturnType<typeof setup>>) => {
        for (const p of ['/products/42', '/products/42?v=1', '/products/43', '/other/42']) {
          expect(h.status(await h.get(p))).toBe('MISS')
          expect(h.status(await h.get(p))).toBe('HIT')
        }
      }
      const statuses = async (h: Awaited<ReturnType<typeof setup>>) => {
        const out: Record<string, string | undefined> = {}
        for (const p of ['/products/42', '/products/42?v=1', '/products/43', '/other/42']) out[p] = h.status(await h.get(p))
        return out
      }

      it('cache.invalidate({ keys }) drops every entry of that path; a key with a query drops only that one', async () => {
        const h = await setup({ routes: productRoutes() })
        await warm(h)
        expect(await h.cache.invalidate({ keys: ['/products/42?v=1'] })).toBe(1)
        expect(await statuses(h)).toEqual({ '/products/42': 'HIT', '/products/42?v=1': 'MISS', '/products/43': 'HIT', '/other/42': 'HIT' })
        expect(await h.cache.invalidate({ keys: ['/products/42'] })).toBe(2)
        expect(await statuses(h)).toEqual({ '/products/42': 'MISS', '/products/42?v=1': 'MISS', '/products/43': 'HIT', '/other/42': 'HIT' })
      })

      it('cache.invalidate({ tags }) drops the entries with that route tag', async () => {
        const h = await setup({ routes: productRoutes() })
        await warm(h)
        expect(await h.cache.invalidate({ tags: ['product:42'] })).toBe(2)
        expect(await statuses(h)).toEqual({ '/products/42': 'MISS', '/products/42?v=1': 'MISS', '/products/43': 'HIT', '/other/42': 'HIT' })
      })

      it('cache.invalidate({ prefixes }) drops every path under the prefix', async () => {
        const h = await setup({ routes: productRoutes() })
        await warm(h)
        expect(await h.cache.invalidate({ prefixes: ['/products/'] })).toBe(3)
        expect(await statuses(h)).toEqual({ '/products/42': 'MISS', '/products/42?v=1': 'MISS', '/products/43': 'MISS', '/other/42': 'HIT' })
      })

      // Fastify's decorator; Express has no app-level helper (cache.invalidate is tested above).
      if (factory.appInvalidate === true) it('the app-level invalidate helper (app.corral.invalidate) drops by tag', async () => {
        const h = await setup({ routes: productRoutes() })
        await warm(h)
        expect(h.app.invalidate).toBeTypeOf('function')
        expect(await h.app.invalidate!({ tags: ['product:43'] })).toBe(1)
        expect(await statuses(h)).toEqual({ '/products/42': 'HIT', '/products/42?v=1': 'HIT', '/products/43': 'MISS', '/other/42': 'HIT' })
      })
    })

    describe('stampede protection', () => {
      it('100 concurrent cold requests cost exactly one origin call', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/hot',
              handler: async (r) => {
                await sleep(50)
                return { headers: { 'content-type': 'application/json' }, body: { json: { call: r.call, payload: 'hot' } } }
              },
            },
          ],
        })
        const responses = await h.many(100, '/hot')
        expect(h.calls()).toBe(1)
        for (const res of responses) {
          expect(res.status).toBe(200)
          expect(res.text).toBe('{"call":1,"payload":"hot"}')
        }
        const byStatus = responses.map((r) => h.status(r))
        expect(byStatus.filter((s) => s === 'MISS')).toHaveLength(1)
        expect(byStatus.filter((s) => s === 'HIT')).toHaveLength(99)
        expect(h.cache.stats().inFlight).toBe(0)
      })

      it.each([
        ['throws', 'throw'],
        ['answers 500', '500'],
      ])('when the leader %s, the waiters go to the origin at once and get their own response', async (_, how) => {
        const h = await setup({
          cacheOptions: { lockTimeout: '5s' },
          routes: [
            {
              method: 'GET',
              path: '/fragile',
              handler: async (r) => {
                if (r.call === 1) {
                  await sleep(60)
                  if (how === 'throw') throw new Error('origin failed')
                  return { status: 500, body: 'leader failed' }
                }
                await sleep(10)
                return { headers: { 'content-type': 'text/plain' }, body: `call-${r.call}` }
              },
            },
          ],
        })
        const started = performance.now()
        const responses = await h.many(20, '/fragile')
        const elapsed = performance.now() - started

        expect(responses.filter((r) => r.status === 500)).toHaveLength(1)
        const ok = responses.filter((r) => r.status === 200)
        expect(ok).toHaveLength(19)
        // Nobody waited for the lock timeout (5 s): they were released when the leader failed.
        expect(elapsed).toBeLessThan(2_000)
        // Every waiter that went to the origin got its own response.
        const fromOrigin = ok.filter((r) => h.status(r) === 'MISS').map((r) => r.text)
        expect(fromOrigin.length).toBeGreaterThan(0)
        expect(new Set(fromOrigin).size).toBe(fromOrigin.length)
        for (const r of ok) expect(r.text).toMatch(/^call-([2-9]|1\d|20)$/)
        expect(h.calls()).toBe(1 + fromOrigin.length)
        // Nothing stranded: no flight left, and the next request is served.
        expect(h.cache.stats().inFlight).toBe(0)
        const next = await h.get('/fragile')
        expect(next.status).toBe(200)
        expect(h.status(next)).toBe('HIT')
      })
    })

    describe('targeted cache-control fields (RFC 9213)', () => {
      const targeted = () => [
        { method: 'GET' as const, path: '/cdn', handler: () => ({ headers: { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' }, body: 'for the cdn' }) },
        { method: 'GET' as const, path: '/surrogate', handler: () => ({ headers: { 'cache-control': 'max-age=60', 'surrogate-control': 'no-store' }, body: 'not here' }) },
      ]

      it('CDN-Cache-Control stores what Cache-Control forbids browsers, and reaches the client unchanged', async () => {
        const h = await setup({ routes: targeted() })
        const miss = await h.get('/cdn')
        expect([h.status(miss), header(miss, 'cache-control'), header(miss, 'cdn-cache-control')]).toEqual(['MISS', 'no-store', 'max-age=60'])
        const hit = await h.get('/cdn')
        expect([h.status(hit), hit.text, header(hit, 'cache-control'), header(hit, 'cdn-cache-control')]).toEqual(['HIT', 'for the cdn', 'no-store', 'max-age=60'])
        expect(h.calls('GET /cdn')).toBe(1)
      })

      it('Surrogate-Control: no-store wins over a fresh Cache-Control; targetedCacheControl: [] turns the fields off', async () => {
        const h = await setup({ routes: targeted() })
        expect(h.status(await h.get('/surrogate'))).toBe('MISS')
        expect(h.status(await h.get('/surrogate'))).toBe('MISS')
        expect(h.calls('GET /surrogate')).toBe(2)

        const off = await setup({ defaults: { targetedCacheControl: [] }, routes: targeted() })
        await off.get('/surrogate')
        expect(off.status(await off.get('/surrogate'))).toBe('HIT')
        await off.get('/cdn')
        expect(off.status(await off.get('/cdn'))).toBe('MISS')
      })
    })

    describe('revalidation of an expired entry (RFC 9111 §4.3)', () => {
      /** A document whose origin answers 304 to the validators it handed out, and records what it was asked. */
      const documentRoute = (seen: (string | undefined)[], answer: (r: OriginRequest) => 'not-modified' | 'changed' = () => 'not-modified') => [
        {
          method: 'GET' as const,
          path: '/doc',
          handler: (r: OriginRequest): Reply => {
            const inm = r.headers['if-none-match']
            const ims = r.headers['if-modified-since']
            const asked = [typeof inm === 'string' ? `inm ${inm}` : '', typeof ims === 'string' ? `ims ${ims}` : ''].filter(Boolean).join(' | ')
            seen.push(asked === '' ? undefined : asked)
            const validator: Record<string, string> = r.query.has('lm') ? { 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' } : { etag: r.call === 1 ? '"v1"' : '"v2"' }
            if ((inm !== undefined || ims !== undefined) && answer(r) === 'not-modified') {
              return { status: 304, headers: { ...validator, 'cache-control': 'max-age=60', 'x-version': 'renewed' } }
            }
            const v = r.call === 1 ? 'first' : 'changed'
            return { headers: { ...validator, 'cache-control': 'max-age=60', 'content-type': 'text/plain', 'x-version': v }, body: `body ${v}` }
          },
        },
      ]

      it('asks the origin with the stored ETag; its 304 renews the entry and the client gets the stored body', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: documentRoute(seen) })
        const first = await h.get('/doc')
        expect(first.text).toBe('body first')
        expect(h.status(await h.get('/doc'))).toBe('HIT')
        h.clock.advance(61_000)

        const renewed = await h.get('/doc')
        expect([renewed.status, renewed.text, header(renewed, 'x-version'), header(renewed, 'content-type')]).toEqual([200, 'body first', 'renewed', header(first, 'content-type')])
        expect(header(renewed, 'content-length')).toBe(String('body first'.length))
        expect(seen).toEqual([undefined, 'inm "v1"'])

        // Stored again, with the 304's fields and freshness: a hit, without the origin.
        const hit = await h.get('/doc')
        expect([h.status(hit), hit.text, header(hit, 'x-version')]).toEqual(['HIT', 'body first', 'renewed'])
        expect(h.calls('GET /doc')).toBe(2)
      })

      it('asks with If-Modified-Since when the entry has only Last-Modified', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: documentRoute(seen) })
        await h.get('/doc?lm=1')
        h.clock.advance(61_000)
        expect((await h.get('/doc?lm=1')).text).toBe('body first')
        // Express adds an ETag of its own; then both validators go.
        expect(seen[0]).toBeUndefined()
        expect(seen[1]).toMatch(/(^| \| )ims Wed, 01 Jan 2025 00:00:00 GMT$/)
        expect(h.status(await h.get('/doc?lm=1'))).toBe('HIT')
      })

      it("a client whose own validator matches the renewed entry gets a 304; the client's validator never reaches the origin", async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: documentRoute(seen) })
        await h.get('/doc')
        h.clock.advance(61_000)
        const res = await h.get('/doc', { 'if-none-match': '"v1"' })
        expect([res.status, res.body.length]).toEqual([304, 0])
        expect(seen).toEqual([undefined, 'inm "v1"'])
        expect(h.status(await h.get('/doc'))).toBe('HIT')
      })

      it('a no-cache response with an ETag is stored and revalidated on every use, never served unasked', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/nc',
              handler: (r) => {
                const inm = r.headers['if-none-match']
                seen.push(typeof inm === 'string' ? inm : undefined)
                const headers = { 'cache-control': 'no-cache, max-age=600', etag: '"nc1"', 'content-type': 'text/plain' }
                return inm === '"nc1"' ? { status: 304, headers } : { headers, body: `body ${r.call}` }
              },
            },
          ],
        })
        const responses = [await h.get('/nc'), await h.get('/nc'), await h.get('/nc')]
        expect(responses.map((r) => [r.status, r.text])).toEqual([[200, 'body 1'], [200, 'body 1'], [200, 'body 1']])
        expect(seen).toEqual([undefined, '"nc1"', '"nc1"'])
        // A client holding the ETag gets a 304 after the origin confirmed it.
        const conditional = await h.get('/nc', { 'If-None-Match': '"nc1"' })
        expect([conditional.status, conditional.body.length]).toEqual([304, 0])
        expect(seen).toEqual([undefined, '"nc1"', '"nc1"', '"nc1"'])
      })

      it('an origin that answers 200 instead replaces the entry', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: documentRoute(seen, () => 'changed') })
        await h.get('/doc')
        h.clock.advance(61_000)
        const res = await h.get('/doc')
        expect([res.status, res.text, header(res, 'x-version')]).toEqual([200, 'body changed', 'changed'])
        const hit = await h.get('/doc')
        expect([h.status(hit), hit.text]).toEqual(['HIT', 'body changed'])
        expect(seen).toEqual([undefined, 'inm "v1"'])
      })
    })

    describe('route options', () => {
      // Fastify's config.cache: false; Express's corral(cache, false) on the route; node:http's
      // handler simply not wrapped.
      if (factory.routeDisable === true) it('a route with caching turned off is never looked up nor stored', async () => {
        const h = await setup({
          routes: [
            { method: 'GET', path: '/live', cache: false, handler: echo },
            { method: 'GET', path: '/cached', handler: echo },
          ],
        })
        const a = await h.get('/live')
        const b = await h.get('/live')
        expect([a.text, b.text]).toEqual(['1 /live', '2 /live'])
        expect(h.status(b)).toBeUndefined()
        await h.get('/cached')
        expect(h.status(await h.get('/cached'))).toBe('HIT')
      })

      it('a route ttl overrides the cache ttl', async () => {
        const h = await setup({
          cacheOptions: { ttl: '5m' },
          routes: [{ method: 'GET', path: '/short', cache: { ttl: '10s' }, handler: echo }],
        })
        await h.get('/short')
        h.clock.advance(9_000)
        expect(h.status(await h.get('/short'))).toBe('HIT')
        h.clock.advance(2_000)
        const expired = await h.get('/short')
        expect(h.status(expired)).toBe('MISS')
        expect(expired.text).toBe('2 /short')
        expect(h.calls()).toBe(2)
      })

      it('bypass(req) skips the cache for the requests it selects', async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/article', cache: { bypass: (req: { headers: Record<string, unknown> }) => req.headers['x-preview'] !== undefined }, handler: echo }],
        })
        expect(h.status(await h.get('/article'))).toBe('MISS')
        const preview = await h.get('/article', { 'X-Preview': '1' })
        expect(h.status(preview)).toBe('BYPASS')
        expect(preview.text).toBe('2 /article')
        const normal = await h.get('/article')
        expect(h.status(normal)).toBe('HIT')
        expect(normal.text).toBe('1 /article')
        expect(h.calls()).toBe(2)
      })

      it('key(req) splits entries by its material', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/dashboard',
              cache: { key: (req: { headers: Record<string, unknown> }) => (req.headers['x-tenant'] as string | undefined) ?? null },
              handler: (r) => ({ body: `${r.call} ${String(r.headers['x-tenant'])}` }),
            },
          ],
        })
        expect((await h.get('/dashboard', { 'X-Tenant': 'acme' })).text).toBe('1 acme')
        expect((await h.get('/dashboard', { 'X-Tenant': 'globex' })).text).toBe('2 globex')
        const again = await h.get('/dashboard', { 'X-Tenant': 'acme' })
        expect(h.status(again)).toBe('HIT')
        expect(again.text).toBe('1 acme')
        expect(h.calls()).toBe(2)
      })

      it('query: false ignores the query string; query: { include } keeps only the listed names', async () => {
        const h = await setup({
          routes: [
            { method: 'GET', path: '/noquery', cache: { query: false }, handler: echo },
          ],
        })
        await h.get('/noquery?a=1')
        const b = await h.get('/noquery?a=2&b=3')
        expect(h.status(b)).toBe('HIT')
        expect(b.text).toBe('1 /noquery?a=1')

        const h2 = await setup({
          routes: [{ method: 'GET', path: '/list', cache: { query: { include: ['page'] } }, handler: echo }],
        })
        await h2.get('/list?page=1&sort=asc')
        expect(h2.status(await h2.get('/list?sort=desc&page=1'))).toBe('HIT')
        expect(h2.status(await h2.get('/list?page=2&sort=asc'))).toBe('MISS')
        expect(h2.calls()).toBe(2)
      })

      it("methods: ['GET'] leaves HEAD requests out of the cache", async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/getonly', cache: { methods: ['GET'] }, handler: echo }] })
        await h.get('/getonly')
        expect(h.status(await h.get('/getonly'))).toBe('HIT')
        const head = await h.req('/getonly', { method: 'HEAD' })
        expect(h.status(head)).toBe('BYPASS')
        expect(h.calls()).toBe(2)
      })

      it('the path is case-sensitive in the key even where the router is not', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/case', handler: echo }] })
        expect((await h.get('/case')).text).toBe('1 /case')
        const upper = await h.get('/CASE')
        expect(upper.text).not.toBe('1 /case')
        const lower = await h.get('/case')
        expect(h.status(lower)).toBe('HIT')
        expect(lower.text).toBe('1 /case')
      })
    })

    describe('other statuses', () => {
      it('a 204 is stored and replayed without a body or Content-Length', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/empty', handler: (r) => ({ status: 204, headers: { 'x-call': String(r.call) } }) }] })
        const miss = await h.get('/empty')
        const hit = await h.get('/empty')
        expect([miss.status, hit.status]).toEqual([204, 204])
        expect([h.status(miss), h.status(hit)]).toEqual(['MISS', 'HIT'])
        expect(hit.body.length).toBe(0)
        expect(hit.headers['content-length']).toBeUndefined()
        expect(hit.headers['x-call']).toBe('1')
        expect(h.calls()).toBe(1)
      })

      it('a 301 is stored with its Location', async () => {
        const h = await setup({ routes: [{ method: 'GET', path: '/old', handler: () => ({ status: 301, headers: { location: '/new' } }) }] })
        const miss = await h.get('/old')
        const hit = await h.get('/old')
        expect([miss.status, hit.status]).toEqual([301, 301])
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers.location).toBe('/new')
        expect(h.calls()).toBe(1)
      })

      it('a 302 is stored when it gives its own freshness, not for the cache ttl; an error never is by default', async () => {
        const h = await setup({
          routes: [
            { method: 'GET', path: '/moved', handler: (r) => ({ status: 302, headers: { location: `/to/${r.call}`, 'cache-control': 'max-age=60' } }) },
            { method: 'GET', path: '/temp', handler: (r) => ({ status: 307, headers: { location: `/to/${r.call}` } }) },
            { method: 'GET', path: '/broken', handler: (r) => ({ status: 503, headers: { 'cache-control': 'max-age=60' }, body: `down ${r.call}` }) },
          ],
        })
        const moved = [await h.get('/moved'), await h.get('/moved')]
        expect(moved.map((r) => [r.status, h.status(r), header(r, 'location')])).toEqual([[302, 'MISS', '/to/1'], [302, 'HIT', '/to/1']])
        const temp = [await h.get('/temp'), await h.get('/temp')]
        expect(temp.map((r) => [r.status, h.status(r)])).toEqual([[307, 'MISS'], [307, 'MISS']])
        const broken = [await h.get('/broken'), await h.get('/broken')]
        expect(broken.map((r) => [r.status, h.status(r), r.text])).toEqual([[503, 'MISS', 'down 1'], [503, 'MISS', 'down 2']])
        expect(h.calls()).toBe(5)
      })

      it('a 103 Early Hints reaches the client before the response, which is stored; a hit carries no interim response', async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/hinted', handler: (r) => ({ earlyHints: { link: '</a.css>; rel=preload; as=style' }, headers: { 'content-type': 'text/plain' }, body: `call ${r.call}` }) }],
        })
        const first = await getWithInterim(h.app.url, '/hinted')
        expect(first.interim.map((i) => [i.status, i.headers.link])).toEqual([[103, '</a.css>; rel=preload; as=style']])
        expect([first.final.status, first.final.text, first.final.headers[h.statusHeader]]).toEqual([200, 'call 1', 'MISS'])
        expect(first.final.headers.link).toBeUndefined()
        const hit = await getWithInterim(h.app.url, '/hinted')
        expect([hit.interim.length, hit.final.status, hit.final.text, hit.final.headers[h.statusHeader]]).toEqual([0, 200, 'call 1', 'HIT'])
        expect(h.calls()).toBe(1)
      })

      it('a 304 from the origin is never stored', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/validated',
              handler: (r): Reply =>
                r.call === 1
                  ? { status: 304, headers: { etag: '"v1"' } }
                  : { headers: { etag: '"v1"', 'content-type': 'text/plain' }, body: `full body ${r.call}` },
            },
          ],
        })
        const first = await h.get('/validated')
        expect(first.status).toBe(304)
        const plain = await h.get('/validated')
        expect(plain.status).toBe(200)
        expect(h.status(plain)).toBe('MISS')
        expect(plain.text).toBe('full body 2')
        const hit = await h.get('/validated')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.text).toBe('full body 2')
        expect(h.calls()).toBe(2)
      })

      it('a conditional request on a cold cache is answered correctly and fills the cache', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/validated',
              handler: (r): Reply =>
                r.headers['if-none-match'] === '"v1"'
                  ? { status: 304, headers: { etag: '"v1"' } }
                  : { headers: { etag: '"v1"', 'content-type': 'text/plain' }, body: `full body ${r.call}` },
            },
          ],
        })
        const cold = await h.get('/validated', { 'If-None-Match': '"v1"' })
        // The origin answered in full (it never saw the validator), and the client's validator
        // matches that fresh response: 304, as Varnish answers (more in guarantees.ts, case 12).
        expect(cold.status).toBe(304)
        expect(h.status(cold)).toBe('MISS')
        const plain = await h.get('/validated')
        expect(plain.status).toBe(200)
        expect(h.status(plain)).toBe('HIT')
        expect(plain.text).toBe('full body 1')
        const conditional = await h.get('/validated', { 'If-None-Match': '"v1"' })
        expect(conditional.status).toBe(304)
        expect(h.status(conditional)).toBe('HIT')
        expect(h.calls()).toBe(1)
      })
    })

    describe('fills that do not complete normally', () => {
      it('an invalidation that lands while the origin is answering wins', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/racing',
              handler: async (r) => {
                await sleep(100)
                return { body: `v${r.call}` }
              },
            },
          ],
        })
        const pending = h.get('/racing')
        await sleep(30)
        await h.cache.invalidate({ keys: ['/racing'] })
        expect((await pending).text).toBe('v1')
        const after = await h.get('/racing')
        expect(h.status(after)).toBe('MISS')
        expect(after.text).toBe('v2')
      })

      it('a client that goes away mid-stream leaves no truncated entry and strands no waiter', async () => {
        const chunks = ['part-1;', 'part-2;', 'part-3;', 'part-4;', 'part-5;', 'part-6']
        const whole = chunks.join('')
        const h = await setup({
          cacheOptions: { lockTimeout: '5s' },
          routes: [{ method: 'GET', path: '/download', handler: () => ({ headers: { 'content-type': 'text/plain' }, body: { stream: chunks, intervalMs: 50 } }) }],
        })
        const leader = getAndAbort(h.app.url, '/download')
        await sleep(20)
        const waiters = h.many(5, '/download')
        expect((await leader).toString()).toBe('part-1;')
        for (const res of await waiters) {
          expect(res.status).toBe(200)
          expect(res.text).toBe(whole)
          // Released when the aborted fill settled, not at the 5 s lock timeout.
          expect(res.ms).toBeLessThan(2_000)
        }
        // One waiter took the lead over; the other four waited for it, not the origin.
        expect(h.calls()).toBe(2)
        await sleep(400)
        const next = await h.get('/download')
        expect(next.text).toBe(whole)
        expect(h.status(next)).toBe('HIT')
        expect(h.cache.stats().inFlight).toBe(0)
      })

      it('a leader whose client goes away while others wait hands the lead to one waiter; the rest wait for it', async () => {
        let open!: () => void
        const gate = new Promise<void>((resolve) => (open = resolve))
        const h = await setup({
          cacheOptions: { lockTimeout: '5s' },
          routes: [
            {
              method: 'GET',
              path: '/gated',
              handler: async (r) => {
                // The first call hangs until the end of the test; its client gives up first.
                if (r.call === 1) await gate
                return { headers: { 'content-type': 'text/plain' }, body: `v${r.call}` }
              },
            },
          ],
        })
        const controller = new AbortController()
        const leader = fetch(`${h.app.url}/gated`, { signal: controller.signal }).catch(() => 'aborted')
        await until(() => h.calls() === 1, 5000, 'the leader at the origin')
        const waiters = h.many(5, '/gated')
        await until(() => h.cache.stats().coalesced === 5, 5000, 'five waiters')
        controller.abort()
        expect(await leader).toBe('aborted')
        for (const res of await waiters) {
          expect(res.status).toBe(200)
          expect(res.text).toBe('v2')
        }
        // Not five origin calls at once: one waiter led, the other four waited for it.
        expect(h.calls()).toBe(2)
        expect(h.cache.stats().inFlight).toBe(0)
        open()
      })

      it('an origin stream that fails mid-body is not stored and releases its waiters', async () => {
        const h = await setup({
          cacheOptions: { lockTimeout: '5s' },
          routes: [
            {
              method: 'GET',
              path: '/flaky',
              handler: () => ({ headers: { 'content-type': 'text/plain' }, body: { stream: ['one;', 'two;', 'three;'], intervalMs: 30, failAtEnd: true } }),
            },
          ],
        })
        const started = performance.now()
        const leader = h.get('/flaky')
        await sleep(10)
        const settled = await Promise.allSettled([leader, ...Array.from({ length: 5 }, () => h.get('/flaky'))])
        // Released when the failed fill settled, not at the 5 s lock timeout.
        expect(performance.now() - started).toBeLessThan(2_000)
        for (const r of settled) {
          // A truncated body must never be served as a complete cached response.
          if (r.status === 'fulfilled') expect(h.status(r.value)).not.toBe('HIT')
        }
        expect(h.cache.stats().inFlight).toBe(0)
        const before = h.calls()
        const next = await Promise.allSettled([h.get('/flaky')])
        if (next[0].status === 'fulfilled') expect(h.status(next[0].value)).not.toBe('HIT')
        expect(h.calls()).toBe(before + 1)
      })

      it('100 concurrent cold requests on a route with its own options cost one origin call', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/hot/:id',
              cache: { ttl: '1m', tags: (req: { params: { id: string } }) => [`hot:${req.params.id}`] },
              handler: async (r) => {
                await sleep(50)
                return { body: `hot ${String(r.params.id)} ${r.call}` }
              },
            },
          ],
        })
        const responses = await h.many(100, '/hot/7')
        expect(h.calls()).toBe(1)
        expect(new Set(responses.map((r) => `${r.status} ${r.text}`))).toEqual(new Set(['200 hot 7 1']))
        expect(await h.cache.invalidate({ tags: ['hot:7'] })).toBe(1)
      })
    })

    describe('response headers', () => {
      it('the cache status header name is configurable', async () => {
        const h = await setup({ cacheOptions: { cacheStatusHeader: 'X-My-Cache' }, routes: [{ method: 'GET', path: '/named', handler: echo }] })
        const miss = await h.get('/named')
        const hit = await h.get('/named')
        expect([miss.headers['x-my-cache'], hit.headers['x-my-cache']]).toEqual(['MISS', 'HIT'])
        expect(miss.headers['x-cache']).toBeUndefined()
        expect(hit.headers['x-cache']).toBeUndefined()
        const bypass = await h.req('/named', { method: 'POST' })
        expect(bypass.headers['x-cache']).toBeUndefined()
      })

      it('hop-by-hop headers (Connection-named, Keep-Alive) are never replayed on a hit', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/hop',
              handler: (r) => ({
                headers: {
                  connection: 'x-hop-secret',
                  'x-hop-secret': 'for-this-connection-only',
                  'keep-alive': 'timeout=99, max=7',
                  'x-end-to-end': 'kept',
                  'content-type': 'text/plain',
                },
                body: `${r.call}`,
              }),
            },
          ],
        })
        const miss = await h.get('/hop')
        expect(miss.text).toBe('1')
        // The origin really sent them, so their absence on the hit is the cache's doing.
        expect(miss.headers['x-hop-secret']).toBe('for-this-connection-only')
        const hit = await h.get('/hop')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.text).toBe('1')
        expect(hit.headers['x-hop-secret']).toBeUndefined()
        expect(header(hit, 'connection') ?? '').not.toContain('x-hop-secret')
        expect(header(hit, 'keep-alive') ?? '').not.toContain('timeout=99')
        expect(header(hit, 'x-end-to-end')).toBe('kept')
        expect(h.calls()).toBe(1)
      })

      it.each(['object', 'flat'] as const)('headers given straight to writeHead (%s) are seen by the cache', async (style) => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/wh-cookie',
              handler: (r) => ({ writeHead: style, headers: { 'set-cookie': [`sid=call-${r.call}`, 'theme=dark'], 'content-type': 'text/plain' }, body: `call-${r.call}` }),
            },
            {
              method: 'GET',
              path: '/wh-private',
              handler: (r) => ({ writeHead: style, headers: { 'cache-control': 'private, max-age=60', 'content-type': 'text/plain' }, body: `call-${r.call}` }),
            },
            {
              method: 'GET',
              path: '/wh-tagged',
              handler: (r) => ({ writeHead: style, headers: { 'cache-tag': 'wh-tag', 'content-type': 'text/plain' }, body: `call-${r.call}` }),
            },
          ],
        })
        const c1 = await h.get('/wh-cookie')
        const c2 = await h.get('/wh-cookie')
        expect([c1.text, c2.text]).toEqual(['call-1', 'call-2'])
        expect(header(c2, 'set-cookie')).toContain('sid=call-2')
        expect(h.status(c2)).toBe('MISS')

        await h.get('/wh-private')
        const p2 = await h.get('/wh-private')
        expect(p2.text).toBe('call-2')
        expect(h.status(p2)).toBe('MISS')

        const t1 = await h.get('/wh-tagged')
        expect(t1.headers['cache-tag']).toBeUndefined()
        expect(h.status(await h.get('/wh-tagged'))).toBe('HIT')
        expect(await h.cache.invalidate({ tags: ['wh-tag'] })).toBe(1)
        expect(h.status(await h.get('/wh-tagged'))).toBe('MISS')
      })

      it('an encoded (gzip) body is replayed byte for byte with its Content-Encoding', async () => {
        const text = 'compressed payload '.repeat(50)
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/gz',
              handler: () => ({
                headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip', vary: 'Accept-Encoding' },
                body: gzipSync(text),
              }),
            },
          ],
        })
        const miss = await rawGet(h.app.url, '/gz', { 'Accept-Encoding': 'gzip' })
        const hit = await rawGet(h.app.url, '/gz', { 'Accept-Encoding': 'gzip' })
        expect(h.status(hit)).toBe('HIT')
        expect(hit.headers['content-encoding']).toBe('gzip')
        expect(gunzipSync(miss.body).toString()).toBe(text)
        expect(gunzipSync(hit.body).toString()).toBe(text)
        expect(hit.body.equals(miss.body)).toBe(true)
        expect(h.calls()).toBe(1)
      })

      it('repeated response headers are replayed as the origin sent them', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/links',
              handler: (r) => ({ headers: { link: ['</a.css>; rel=preload', '</b.js>; rel=preload'], 'x-multi': ['one', 'two'] }, body: `${r.call}` }),
            },
          ],
        })
        const miss = await h.get('/links')
        const hit = await h.get('/links')
        expect(h.status(hit)).toBe('HIT')
        expect(header(hit, 'link')).toBe(header(miss, 'link'))
        expect(header(hit, 'link')).toContain('</b.js>; rel=preload')
        expect(header(hit, 'x-multi')).toBe(header(miss, 'x-multi'))
      })

      it('Cache-Status (RFC 9211) is a valid Structured Field list with this cache last: hit, miss and stored, stale, bypass, not stored', async () => {
        const h = await setup({
          cacheOptions: { staleWhileRevalidate: '1m' },
          routes: [
            { method: 'GET', path: '/cs', handler: () => ({ headers: { 'cache-status': 'Upstream; fwd=uri-miss', 'cache-control': 'max-age=60' }, body: 'ok' }) },
            { method: 'GET', path: '/cs-nostore', handler: () => ({ headers: { 'cache-control': 'no-store' }, body: 'no' }) },
            { method: 'POST', path: '/cs', handler: () => ({ body: 'posted' }) },
          ],
        })
        const members = (res: Res) => parseList(header(res, 'cache-status') ?? '').map(([item, params]) => [String(item), Object.fromEntries(params)])
        const miss = await h.get('/cs')
        expect(members(miss)).toEqual([
          ['Upstream', { fwd: new Token('uri-miss') }],
          ['Corral', { fwd: new Token('uri-miss'), 'fwd-status': 200, stored: true }],
        ])
        // A hit carries this cache's member only: a stored Cache-Status described a forward long past.
        expect(members(await h.get('/cs'))).toEqual([['Corral', { hit: true, ttl: 60 }]])
        h.clock.advance(65_000)
        expect(members(await h.get('/cs'))).toEqual([['Corral', { hit: true, ttl: -5 }]])
        expect(members(await h.get('/cs-nostore'))).toEqual([['Corral', { fwd: new Token('uri-miss'), 'fwd-status': 200, detail: new Token('no-store') }]])
        expect(members(await h.req('/cs', { method: 'POST' }))).toEqual([['Corral', { fwd: new Token('bypass'), 'fwd-status': 200, detail: new Token('method') }]])
      })

      it('cacheStatus names this cache in Cache-Status, and false sends none', async () => {
        const named = await setup({ cacheOptions: { cacheStatus: 'edge-1' }, routes: [{ method: 'GET', path: '/n', handler: echo }] })
        expect(header(await named.get('/n'), 'cache-status')).toBe('edge-1; fwd=uri-miss; fwd-status=200; stored')
        const none = await setup({ cacheOptions: { cacheStatus: false }, routes: [{ method: 'GET', path: '/n', handler: echo }] })
        expect(header(await none.get('/n'), 'cache-status')).toBeUndefined()
        expect(header(await none.get('/n'), 'cache-status')).toBeUndefined()
      })

      it("the origin's own X-Cache header is replaced by the cache's", async () => {
        const h = await setup({
          routes: [{ method: 'GET', path: '/spoof', handler: (r) => ({ headers: { 'x-cache': 'HIT-from-origin' }, body: `${r.call}` }) }],
        })
        const miss = await h.get('/spoof')
        expect.soft(h.status(miss)).toBe('MISS')
        const hit = await h.get('/spoof')
        expect(h.status(hit)).toBe('HIT')
        expect(h.calls()).toBe(1)
      })
    })
  })
}
