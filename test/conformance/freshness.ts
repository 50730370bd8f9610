import { OriginError, type CorralError } from '@corral/core'
import { describe, expect, it } from 'vitest'
import type { Res } from '../helpers/http.js'
import { signal, until, type AdapterFactory, type OriginRequest, type Reply } from '../helpers/scenario.js'
import type { Harness, HarnessSpec } from '../helpers/setup.js'

const header = (res: Res, name: string): string | undefined => {
  const v = res.headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/** Generous bound for a background refresh to land: far above a loopback round trip and an in-memory store. */
const REFRESH_MS = 5000

/**
 * Freshness (issue 11): stale-while-revalidate with one background refresh, stale-if-error, and
 * the directives that forbid serving stale, run against every adapter by runAdapterSuite.
 */
export function runFreshness(setup: (spec: HarnessSpec) => Promise<Harness>, _factory: AdapterFactory): void {
  describe('freshness: stale entries (RFC 5861)', () => {
    it('50 concurrent requests on a stale entry are answered at once from it, one origin call refreshes it, and the next request is fresh', async () => {
      const gate = signal()
      const seen: (string | undefined)[] = []
      const h = await setup({
        routes: [
          {
            method: 'GET',
            path: '/swr',
            handler: async (r: OriginRequest): Promise<Reply> => {
              seen.push(typeof r.headers.cookie === 'string' ? r.headers.cookie : undefined)
              // The refresh waits until every stale answer is in: none of them can have waited for it.
              if (r.call === 2) await gate.promise
              return { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=60, stale-while-revalidate=60' }, body: `version ${r.call}` }
            },
          },
        ],
        cacheOptions: { cookies: 'ignore' },
      })
      expect((await h.get('/swr')).text).toBe('version 1')
      h.clock.advance(61_000)

      const stale = await h.many(50, '/swr', { headers: { cookie: 'sid=secret' } })
      expect(new Set(stale.map((r) => `${r.status} ${h.status(r)} ${r.text}`))).toEqual(new Set(['200 STALE version 1']))
      expect(stale.every((r) => Number(header(r, 'age')) >= 61)).toBe(true)
      gate.resolve()
      await until(() => h.cache.stats().stored === 2, REFRESH_MS, 'the background refresh to store')
      const fresh = await h.get('/swr')
      expect([h.status(fresh), fresh.text, header(fresh, 'age')]).toEqual(['HIT', 'version 2', '0'])
      expect(h.calls()).toBe(2)
      // The refresh carried no cookie, though the requests that found the entry stale had one.
      expect(seen).toEqual([undefined, undefined])
      expect(h.cache.stats()).toMatchObject({ stale: 50, revalidations: 1, revalidationFailures: 0 })
    })

    it('the route option staleWhileRevalidate applies where the response is silent; a refresh answered 304 keeps the body', async () => {
      const h = await setup({
        cacheOptions: { staleWhileRevalidate: '30s' },
        routes: [
          {
            method: 'GET',
            path: '/etagged',
            handler: (r: OriginRequest): Reply =>
              r.headers['if-none-match'] === '"e1"'
                ? { status: 304, headers: { etag: '"e1"', 'cache-control': 'max-age=60', 'x-renewed': `call ${r.call}` } }
                : { headers: { etag: '"e1"', 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, body: `body ${r.call}` },
          },
        ],
      })
      await h.get('/etagged')
      h.clock.advance(70_000)
      const stale = await h.get('/etagged')
      expect([h.status(stale), stale.text]).toEqual(['STALE', 'body 1'])
      await until(() => h.cache.stats().stored === 2, REFRESH_MS, 'the renewed entry')
      const renewed = await h.get('/etagged')
      expect([h.status(renewed), renewed.text, header(renewed, 'age'), header(renewed, 'x-renewed')]).toEqual(['HIT', 'body 1', '0', 'call 2'])
      // Past the stale window, a request waits for the origin again.
      h.clock.advance(60_000 + 31_000)
      expect(h.status(await h.get('/etagged'))).toBe('MISS')
    })

    it('stale-if-error: a 500, a thrown error and a 502 from a failed upstream are answered with the stale entry; nothing of the error is kept', async () => {
      const errors: CorralError[] = []
      let mode: 'ok' | '500' | 'throw' | '502' = 'ok'
      const h = await setup({
        cacheOptions: { onError: (e) => errors.push(e) },
        routes: [
          {
            method: 'GET',
            path: '/sie',
            handler: (r: OriginRequest): Reply => {
              if (mode === 'throw') throw new Error('database down')
              if (mode !== 'ok') return { status: Number(mode), headers: { 'content-type': 'text/html', 'x-error': 'yes', 'content-security-policy': "default-src 'none'" }, body: `<h1>error ${r.call}</h1>` }
              return { headers: { 'content-type': 'text/plain', 'cache-control': 'max-age=60, stale-if-error=600', 'x-version': `${r.call}` }, body: `good ${r.call}` }
            },
          },
        ],
      })
      const first = await h.get('/sie')
      h.clock.advance(61_000)
      for (const m of ['500', 'throw', '502'] as const) {
        mode = m
        const res = await h.get('/sie')
        expect([res.status, h.status(res), res.text, header(res, 'x-version'), header(res, 'content-type')], m).toEqual([200, 'STALE', 'good 1', '1', header(first, 'content-type')])
        expect(header(res, 'x-error'), m).toBeUndefined()
        expect(header(res, 'content-security-policy'), m).toBeUndefined()
        expect(header(res, 'content-length'), m).toBe(String('good 1'.length))
        // RFC 9211: it went forward because the entry was stale, the origin failed, the stale entry answered.
        expect(header(res, 'cache-status'), m).toBe(`Corral; fwd=stale; fwd-status=${m === '502' ? 502 : 500}; ttl=-1; detail=stale-if-error`)
      }
      expect(errors.filter((e) => e instanceof OriginError)).toHaveLength(3)
      expect(h.cache.stats().notStored['origin-error']).toBe(3)
      // The origin recovers: its answer is stored and served.
      mode = 'ok'
      const recovered = await h.get('/sie')
      expect([h.status(recovered), recovered.text]).toEqual(['MISS', 'good 5'])
      expect(h.status(await h.get('/sie'))).toBe('HIT')
      // Past the window, the error reaches the client.
      h.clock.advance(61_000 + 601_000)
      mode = '500'
      const late = await h.get('/sie')
      expect([late.status, h.status(late)]).toEqual([500, 'MISS'])
    })

    it('must-revalidate is never served stale, whatever the route or the response says', async () => {
      let fail = false
      const h = await setup({
        cacheOptions: { staleWhileRevalidate: '1h', staleIfError: '1h' },
        routes: [
          {
            method: 'GET',
            path: '/strict',
            handler: (r: OriginRequest): Reply =>
              fail
                ? { status: 503, body: 'down' }
                : { headers: { 'cache-control': 'max-age=60, must-revalidate, stale-while-revalidate=600, stale-if-error=600' }, body: `v${r.call}` },
          },
        ],
      })
      await h.get('/strict')
      h.clock.advance(61_000)
      const next = await h.get('/strict')
      expect([h.status(next), next.text]).toEqual(['MISS', 'v2'])
      h.clock.advance(61_000)
      fail = true
      const down = await h.get('/strict')
      expect([down.status, h.status(down), down.text]).toEqual([503, 'MISS', 'down'])
      expect(h.cache.stats().stale).toBe(0)
    })

    it('refreshAfter: a hit on an entry older than it is answered from the entry and refreshes it in the background', async () => {
      const h = await setup({
        cacheOptions: { refreshAfter: '10s' },
        routes: [{ method: 'GET', path: '/raw', handler: (r: OriginRequest): Reply => ({ headers: { 'cache-control': 'max-age=60' }, body: `v${r.call}` }) }],
      })
      await h.get('/raw')
      h.clock.advance(5_000)
      expect((await h.get('/raw')).text).toBe('v1')
      expect(h.calls()).toBe(1)
      h.clock.advance(6_000)
      const due = await h.get('/raw')
      expect([h.status(due), due.text]).toEqual(['HIT', 'v1'])
      await until(() => h.cache.stats().stored === 2, REFRESH_MS, 'the refresh after write')
      const next = await h.get('/raw')
      expect([h.status(next), next.text, header(next, 'age')]).toEqual(['HIT', 'v2', '0'])
      expect(h.cache.stats()).toMatchObject({ earlyRefreshes: 1, revalidations: 1, revalidationFailures: 0 })
    })

    it('earlyRefresh (XFetch) with an injected random source: a hot key under steady load never misses, refreshed about once per lifetime', async () => {
      // A seeded generator (mulberry32): the same run every time.
      let seed = 42
      const random = (): number => {
        seed = (seed + 0x6d2b79f5) | 0
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
        return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
      }
      let h: Harness | undefined
      h = await setup({
        cacheOptions: { earlyRefresh: { beta: 2 }, random },
        routes: [
          {
            method: 'GET',
            path: '/hot',
            handler: (r: OriginRequest): Reply => {
              // Each origin call takes 200 ms on the cache's clock.
              h?.clock.advance(200)
              return { headers: { 'cache-control': 'max-age=10' }, body: `v${r.call}` }
            },
          },
        ],
      })
      const harness = h
      await harness.get('/hot')
      const statuses: string[] = []
      // 50 s of steady load, a request every 100 ms: five lifetimes of the entry.
      for (let i = 0; i < 500; i++) {
        harness.clock.advance(100)
        statuses.push(harness.status(await harness.get('/hot')) ?? '')
        const s = harness.cache.stats()
        // Let a refresh that started land before the next request, as it would between two on a busy server.
        await until(() => harness.cache.stats().stored === 1 + s.revalidations - s.revalidationFailures, REFRESH_MS, 'the early refresh')
      }
      expect(new Set(statuses)).toEqual(new Set(['HIT']))
      const s = harness.cache.stats()
      // Refreshed about once per lifetime, never far from expiry.
      expect(s.earlyRefreshes).toBeGreaterThanOrEqual(5)
      expect(s.earlyRefreshes).toBeLessThanOrEqual(10)
      expect(s.misses).toBe(1 + s.revalidations)
    })

    it('warm() fills entries through the app and reports what was stored, what was not and why, and what failed', async () => {
      const h = await setup({
        routes: [
          { method: 'GET', path: '/w/:id', handler: (r: OriginRequest): Reply => (r.params.id === 'broken' ? { status: 500, body: 'no' } : { headers: { 'cache-control': 'max-age=60' }, body: `page ${String(r.params.id)} for ${r.hostname}` }) },
          { method: 'GET', path: '/private', handler: (): Reply => ({ headers: { 'cache-control': 'private, max-age=60' }, body: 'mine' }) },
        ],
      })
      const report = await h.app.warm(['/w/1', 'http://shop.example/w/2', { url: '/w/3', headers: { host: 'other.example' } }, '/w/broken', '/private', 'ftp://x/y'], {
        concurrency: 2,
        headers: { host: 'shop.example' },
      })
      expect(report.stored.sort()).toEqual(['/w/1', '/w/3', 'http://shop.example/w/2'].sort())
      expect(report.notStored.sort((a, b) => a.url.localeCompare(b.url))).toEqual([
        { url: '/private', reason: 'private', status: 200 },
        { url: '/w/broken', reason: 'status', status: 500 },
      ])
      expect(report.failed.map((f) => f.url)).toEqual(['ftp://x/y'])
      expect(h.cache.stats().warmed).toBe(3)
      // Warmed for the host clients send: hits without the origin.
      const calls = h.calls()
      const hit = await h.get('/w/1', { host: 'shop.example' })
      expect([h.status(hit), hit.text]).toEqual(['HIT', 'page 1 for shop.example'])
      expect([h.status(await h.get('/w/2', { host: 'shop.example' })), h.status(await h.get('/w/3', { host: 'other.example' }))]).toEqual(['HIT', 'HIT'])
      expect(h.calls()).toBe(calls)
      // Warming again fetches again: what it stores is new.
      expect((await h.app.warm(['/w/1'], { headers: { host: 'shop.example' } })).stored).toEqual(['/w/1'])
      expect(h.calls()).toBe(calls + 1)
      // An absolute URL's host wins over the options' host; one string is one URL.
      expect((await h.app.warm(['http://a.example/w/5'], { headers: { host: 'shop.example' } })).stored).toEqual(['http://a.example/w/5'])
      expect(h.status(await h.get('/w/5', { host: 'a.example' }))).toBe('HIT')
      expect((await h.app.warm('/w/6' as never, { headers: { host: 'shop.example' } })).stored).toEqual(['/w/6'])
    })

    it('warm() gives up a URL whose handler never answers at lockTimeout, reports it, and goes on', async () => {
      const h = await setup({
        cacheOptions: { lockTimeout: '200ms' },
        routes: [
          { method: 'GET', path: '/hang', handler: (): Promise<Reply> => new Promise<Reply>(() => undefined) },
          { method: 'GET', path: '/fine', handler: (): Reply => ({ headers: { 'cache-control': 'max-age=60' }, body: 'fine' }) },
        ],
      })
      const report = await h.app.warm(['/hang', '/fine'], { concurrency: 1 })
      expect(report.stored).toEqual(['/fine'])
      expect(report.failed.map((f) => [f.url, /no answer within 200 ms/.test(f.error)])).toEqual([['/hang', true]])
      expect(h.cache.stats().inFlight).toBe(0)
    })

    it('soft purge marks entries stale instead of removing them: served stale once, refreshed in the background; a hard invalidation still removes them', async () => {
      const versions = new Map<string, number>()
      const h = await setup({
        routes: [
          {
            method: 'GET',
            path: '/soft/:id',
            handler: (r: OriginRequest): Reply => {
              const id = String(r.params.id)
              versions.set(id, (versions.get(id) ?? 0) + 1)
              return {
                headers: { 'cache-tag': `item-${id}`, 'cache-control': id === 'plain' ? 'max-age=600' : 'max-age=600, stale-while-revalidate=60' },
                body: `${id} v${versions.get(id)}`,
              }
            },
          },
        ],
      })
      for (const id of ['a', 'b', 'plain']) await h.get(`/soft/${id}`)
      expect(await h.cache.invalidate({ tags: ['item-a', 'item-plain'], soft: true })).toBe(2)
      const stale = await h.get('/soft/a')
      expect([h.status(stale), stale.text]).toEqual(['STALE', 'a v1'])
      await until(() => h.cache.stats().stored === 4, REFRESH_MS, 'the refresh of the soft-purged entry')
      expect((await h.get('/soft/a')).text).toBe('a v2')
      // Untouched by the purge.
      expect(h.status(await h.get('/soft/b'))).toBe('HIT')
      // No stale window: soft-purged is simply expired, and the next request waits for the origin.
      const plain = await h.get('/soft/plain')
      expect([h.status(plain), plain.text]).toEqual(['MISS', 'plain v2'])
      // Soft, then hard: gone.
      await h.cache.invalidate({ tags: ['item-b'], soft: true })
      expect(await h.cache.invalidate({ tags: ['item-b'] })).toBe(1)
      expect(h.status(await h.get('/soft/b'))).toBe('MISS')
    })

    it('a refresh whose origin never answers is given up at lockTimeout: its fill stores nothing, nobody waits on it, the stale entry serves', async () => {
      const errors: CorralError[] = []
      const h = await setup({
        cacheOptions: { lockTimeout: '200ms', onError: (e) => errors.push(e) },
        routes: [
          {
            method: 'GET',
            path: '/hangs',
            // The refresh never answers (the handler keeps its request, as a hung one does).
            handler: (r: OriginRequest): Promise<Reply> | Reply =>
              r.call === 1 ? { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600' }, body: 'v1' } : new Promise<Reply>(() => undefined),
          },
        ],
      })
      await h.get('/hangs')
      h.clock.advance(61_000)
      expect((await h.get('/hangs')).text).toBe('v1')
      await until(() => h.cache.stats().revalidationFailures === 1, REFRESH_MS, 'the refresh to be given up')
      expect(h.cache.stats().inFlight).toBe(0)
      expect(errors.some((e) => e instanceof OriginError && /no answer within 200 ms/.test(String((e.cause as Error)?.message)))).toBe(true)
      const still = await h.get('/hangs')
      expect([h.status(still), still.text]).toEqual(['STALE', 'v1'])
    })

    it('a soft purge that lands while a refresh runs is not a failure: the next stale hit refreshes again', async () => {
      const gate = signal()
      let version = 1
      const h = await setup({
        routes: [
          {
            method: 'GET',
            path: '/racing',
            handler: async (r: OriginRequest): Promise<Reply> => {
              const v = version
              if (r.call === 2) await gate.promise
              return { headers: { 'cache-tag': 'racing', 'cache-control': 'max-age=60, stale-while-revalidate=600' }, body: `v${v}` }
            },
          },
        ],
      })
      await h.get('/racing')
      h.clock.advance(61_000)
      expect(h.status(await h.get('/racing'))).toBe('STALE')
      await until(() => h.calls() === 2, REFRESH_MS, 'the refresh to reach the origin')
      version = 2
      await h.cache.invalidate({ tags: ['racing'], soft: true })
      gate.resolve()
      await until(() => h.cache.stats().notStored.invalidated === 1, REFRESH_MS, 'the refresh to be dropped by the purge')
      expect(h.cache.stats().revalidationFailures).toBe(0)
      expect(h.status(await h.get('/racing'))).toBe('STALE')
      await until(() => h.cache.stats().stored === 2, REFRESH_MS, 'the next refresh')
      expect((await h.get('/racing')).text).toBe('v2')
    })

    it('a refresh that cannot reach the same key (a key function reading a header it does not carry) is reported as failed', async () => {
      const errors: CorralError[] = []
      const h = await setup({
        cacheOptions: { onError: (e) => errors.push(e) },
        routes: [
          {
            method: 'GET',
            path: '/tenant',
            cache: { key: (req: { headers: Record<string, string | undefined> }) => req.headers['x-tenant'] ?? null },
            handler: (r: OriginRequest): Reply => ({ headers: { 'cache-control': 'max-age=60, stale-while-revalidate=600' }, body: `tenant ${String(r.headers['x-tenant'])}` }),
          },
        ],
      })
      await h.get('/tenant', { 'x-tenant': 'a' })
      h.clock.advance(61_000)
      const stale = await h.get('/tenant', { 'x-tenant': 'a' })
      expect([h.status(stale), stale.text]).toEqual(['STALE', 'tenant a'])
      await until(() => h.cache.stats().revalidationFailures === 1, REFRESH_MS, 'the refresh to be reported')
      expect(errors.some((e) => e instanceof OriginError && /key/.test(String((e.cause as Error)?.message)))).toBe(true)
      // Tenant a never gets what the refresh stored under its own key.
      expect((await h.get('/tenant', { 'x-tenant': 'a' })).text).toBe('tenant a')
    })

    it('stale-if-error answers HEAD and Range requests too, without the error or its cookie', async () => {
      let fail = false
      const errors: CorralError[] = []
      const h = await setup({
        cacheOptions: { onError: (e) => errors.push(e) },
        routes: [
          {
            method: 'GET',
            path: '/sie-head',
            handler: (): Reply =>
              fail ? { status: 500, headers: { 'set-cookie': 'sess=secret' }, body: 'error' } : { headers: { 'cache-control': 'max-age=60, stale-if-error=600', 'content-type': 'text/plain' }, body: 'good body' },
          },
        ],
      })
      await h.get('/sie-head')
      h.clock.advance(61_000)
      fail = true
      const head = await h.req('/sie-head', { method: 'HEAD' })
      expect([head.status, h.status(head), header(head, 'set-cookie'), header(head, 'content-length')]).toEqual([200, 'STALE', undefined, '9'])
      const range = await h.get('/sie-head', { Range: 'bytes=0-3' })
      expect([range.status, h.status(range), header(range, 'set-cookie'), range.text]).toEqual([200, 'STALE', undefined, 'good body'])
      expect(errors.filter((e) => e instanceof OriginError)).toHaveLength(2)
    })

    it('a refresh that fails keeps the stale entry until its window ends, and is not tried again at once', async () => {
      const errors: CorralError[] = []
      let fail = false
      const h = await setup({
        cacheOptions: { onError: (e) => errors.push(e) },
        routes: [
          {
            method: 'GET',
            path: '/flaky',
            handler: (r: OriginRequest): Reply =>
              fail ? { status: 500, body: 'broken' } : { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=120' }, body: `v${r.call}` },
          },
        ],
      })
      await h.get('/flaky')
      h.clock.advance(61_000)
      fail = true
      expect((await h.get('/flaky')).text).toBe('v1')
      await until(() => h.cache.stats().revalidationFailures === 1, REFRESH_MS, 'the failed refresh')
      expect(errors.some((e) => e instanceof OriginError)).toBe(true)
      const calls = h.calls()
      for (let i = 0; i < 5; i++) expect(h.status(await h.get('/flaky'))).toBe('STALE')
      expect(h.calls()).toBe(calls)
      expect(h.cache.stats().revalidations).toBe(1)
    })
  })
}
