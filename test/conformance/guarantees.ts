import { CallbackError, ConfigError, type CorralError } from '@corral/core'
import { describe, expect, it } from 'vitest'
import { getPartial } from '../helpers/http.js'
import { signal, until, type AdapterFactory, type Reply } from '../helpers/scenario.js'
import type { Harness, HarnessSpec } from '../helpers/setup.js'

/**
 * What an attacker and an operator found on main (issue "Never wrong, never unbounded"), one
 * test per HTTP-level case, run against every adapter by runAdapterSuite: a wrong response is
 * never served, a failing callback never fails a request, and both frameworks behave the same.
 */
export function runGuarantees(setup: (spec: HarnessSpec) => Promise<Harness>, factory: AdapterFactory): void {
  describe('never wrong (issue 8)', () => {
    describe('1. a body shorter than its Content-Length', () => {
      const full = Buffer.alloc(2000, 0x61)
      const half = Buffer.alloc(1000, 0x61)

      it('is not stored: the next client gets a complete response from the origin, never a complete-looking HIT', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/trunc',
              handler: (r): Reply => ({
                headers: { 'content-type': 'text/plain', 'content-length': '2000' },
                body: { stream: [r.call === 1 ? half : full] },
              }),
            },
          ],
        })
        const cut = await getPartial(h.app.url, '/trunc', 1000)
        expect(cut.status).toBe(200)
        expect(cut.complete).toBe(false)
        const next = await h.get('/trunc')
        expect(h.status(next)).toBe('MISS')
        expect(next.body.equals(full)).toBe(true)
        const hit = await h.get('/trunc')
        expect(h.status(hit)).toBe('HIT')
        expect(hit.body.equals(full)).toBe(true)
        expect(h.calls()).toBe(2)
        expect(h.cache.stats().notStored.truncated).toBe(1)
      })

      it('is never handed to the requests waiting for it: each asks the origin', async () => {
        const waiting = signal()
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/trunc-wait',
              handler: (r): Reply => ({
                headers: { 'content-type': 'text/plain', 'content-length': '2000' },
                // The leader writes half, waits until the others queue behind it, then ends short.
                body: r.call === 1 ? { stream: [half.subarray(0, 500), half.subarray(500)], before: () => waiting.promise } : { stream: [full] },
              }),
            },
          ],
        })
        const leader = getPartial(h.app.url, '/trunc-wait', 1000)
        await until(() => h.calls() === 1, 5000, 'the leading origin call')
        const waiters = h.many(5, '/trunc-wait')
        await until(() => h.cache.stats().coalesced >= 5, 5000, 'five requests waiting for the leader')
        waiting.resolve()
        expect((await leader).complete).toBe(false)
        for (const res of await waiters) {
          expect(res.status).toBe(200)
          expect(res.body.equals(full)).toBe(true)
        }
        expect(h.cache.stats().notStored.truncated).toBe(1)
      })

      it('a whole body sent with a wrong Content-Length is stored only where the framework sends it whole, with its real length', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/declared',
              // Express's writeHead sends the declared 2000 and then 1000 bytes; Fastify, which
              // writes the header for a whole payload itself, sends 1000 and says 1000.
              handler: (r): Reply => ({ headers: { 'content-type': 'text/plain', 'content-length': '2000' }, body: r.call === 1 ? half : full, writeHead: 'object' }),
            },
          ],
        })
        const first = await getPartial(h.app.url, '/declared', 1000)
        const second = await h.get('/declared')
        if (first.complete) {
          expect(h.status(second)).toBe('HIT')
          expect(second.body.equals(half)).toBe(true)
          expect(second.headers['content-length']).toBe('1000')
        } else {
          expect(h.status(second)).toBe('MISS')
          expect(second.body.equals(full)).toBe(true)
        }
      })
    })

    describe('5. a GET with a body (fat GET)', () => {
      it('bypasses the cache: one client’s body is never answered to another, and the plain GET is cached apart', async () => {
        const h = await setup({
          parseJson: true,
          routes: [
            {
              method: 'GET',
              path: '/search',
              handler: (r) => ({
                headers: { 'content-type': 'text/plain' },
                body: `term:${(r.body as { term?: string } | undefined)?.term ?? 'none'} call:${r.call}`,
              }),
            },
          ],
        })
        const attacker = await h.req('/search', { body: { term: 'ATTACKER' } })
        expect(attacker.status).toBe(200)
        expect(h.status(attacker)).toBe('BYPASS')
        // Whether the framework reads GET bodies or not, the victim gets its own answer.
        const reads = attacker.text.startsWith('term:ATTACKER')
        const victim = await h.req('/search', { body: { term: 'victim' } })
        expect(h.status(victim)).toBe('BYPASS')
        expect(victim.text).toBe(`term:${reads ? 'victim' : 'none'} call:2`)
        const plain = await h.get('/search')
        expect(h.status(plain)).toBe('MISS')
        expect(plain.text).toBe('term:none call:3')
        expect(h.status(await h.get('/search'))).toBe('HIT')
        const again = await h.req('/search', { body: { term: 'other' } })
        expect(h.status(again)).toBe('BYPASS')
        expect(again.text).toBe(`term:${reads ? 'other' : 'none'} call:4`)
        expect(h.calls()).toBe(4)
      })
    })

    describe('6. a leader that hangs past lockTimeout', () => {
      it('hands the lead to exactly one waiter; the others wait for it and are answered from its entry', async () => {
        const release = signal()
        const h = await setup({
          cacheOptions: { lockTimeout: '200ms' },
          routes: [
            {
              method: 'GET',
              path: '/hung',
              handler: async (r) => {
                if (r.call === 1) await release.promise
                return { headers: { 'content-type': 'text/plain' }, body: r.call === 1 ? 'hung leader' : `call-${r.call}` }
              },
            },
          ],
        })
        const leader = h.get('/hung')
        await until(() => h.calls() === 1, 5000, 'the leading origin call')
        // 49 waiters, all served while the first call is still hung (it waits for `release`).
        const waiters = await h.many(49, '/hung')
        expect(release.done).toBe(false)
        expect(h.calls()).toBe(2)
        for (const res of waiters) {
          expect(res.status).toBe(200)
          expect(res.text).toBe('call-2')
        }
        expect(waiters.filter((r) => h.status(r) === 'MISS')).toHaveLength(1)
        release.resolve()
        const slow = await leader
        expect(slow.text).toBe('hung leader')
        expect(h.calls()).toBe(2)
        expect(h.cache.stats().inFlight).toBe(0)
      })
    })

    describe('8. a route callback that fails', () => {
      const cases: [string, Record<string, unknown>][] = [
        ['a key function that throws', { key: () => { throw new Error('key boom') } }],
        ['a key function that returns a BigInt', { key: () => 10n }],
        ['a key function that returns undefined inside an array', { key: () => [undefined] }],
        ['a key function that returns a Date', { key: () => new Date(0) }],
        ['a bypass function that throws', { bypass: () => { throw new Error('bypass boom') } }],
      ]
      it.each(cases)('%s: the request bypasses the cache with a 200 from the origin, and a CallbackError is reported', async (_, options) => {
        const errors: CorralError[] = []
        const h = await setup({
          cacheOptions: { onError: (e) => errors.push(e) },
          routes: [{ method: 'GET', path: '/cb', cache: options, handler: (r) => ({ headers: { 'content-type': 'text/plain' }, body: `call-${r.call}` }) }],
        })
        for (const n of [1, 2]) {
          const res = await h.get('/cb')
          expect(res.status).toBe(200)
          expect(h.status(res)).toBe('BYPASS')
          expect(res.text).toBe(`call-${n}`)
        }
        expect(errors.length).toBeGreaterThanOrEqual(2)
        for (const e of errors) expect(e).toBeInstanceOf(CallbackError)
      })

      it('a tags function that throws: the response is served whole and not stored; a CallbackError is reported', async () => {
        const errors: CorralError[] = []
        const h = await setup({
          cacheOptions: { onError: (e) => errors.push(e) },
          routes: [
            {
              method: 'GET',
              path: '/tags-cb',
              cache: { tags: () => { throw new Error('tags boom') } },
              handler: (r) => ({ headers: { 'content-type': 'text/plain' }, body: `call-${r.call}` }),
            },
          ],
        })
        for (const n of [1, 2]) {
          const res = await h.get('/tags-cb')
          expect(res.status).toBe(200)
          expect(h.status(res)).toBe('MISS')
          expect(res.text).toBe(`call-${n}`)
        }
        expect(errors).toHaveLength(2)
        for (const e of errors) expect(e).toBeInstanceOf(CallbackError)
      })
    })

    describe('10. invalidation selectors', () => {
      const catalogue = (invalidate: Parameters<typeof setup>[0]['routes'][number]['invalidate']) => [
        {
          method: 'GET' as const,
          path: '/items/:id',
          handler: (r: { call: number; params: Readonly<Record<string, unknown>> }) => ({
            headers: { 'content-type': 'text/plain', 'cache-tag': `item:${String(r.params.id)}` },
            body: `item ${String(r.params.id)} call ${r.call}`,
          }),
        },
        { method: 'PUT' as const, path: '/items/:id', invalidate, handler: () => ({ status: 204 }) },
      ]

      it('an async selector function is awaited: the entry is gone once the mutation has answered', async () => {
        // Only the route's helper may drop it: the invalidation after an unsafe request is off here.
        const h = await setup({
          defaults: { invalidateAfterUnsafe: false },
          routes: catalogue(async (req: { params: Record<string, string> }) => {
            await new Promise((resolve) => setImmediate(resolve))
            return { tags: [`item:${req.params.id}`] }
          }),
        })
        await h.get('/items/1')
        expect(h.status(await h.get('/items/1'))).toBe('HIT')
        expect((await h.req('/items/1', { method: 'PUT' })).status).toBe(204)
        const after = await h.get('/items/1')
        expect(h.status(after)).toBe('MISS')
        expect(after.text).toBe('item 1 call 2')
      })

      it('static selectors work as they are given', async () => {
        const h = await setup({ routes: catalogue({ tags: ['item:1'] }) })
        await h.get('/items/1')
        await h.get('/items/2')
        await h.req('/items/9', { method: 'PUT' })
        expect(h.status(await h.get('/items/1'))).toBe('MISS')
        expect(h.status(await h.get('/items/2'))).toBe('HIT')
      })

      it.each<[string, unknown]>([
        ['a typo (key instead of keys)', { key: ['/items/1'] }],
        ['keys as a string', { keys: '/items/1' }],
        ['a key without its leading slash', { keys: ['items/1'] }],
        ['a number', 5],
      ])('%s is refused when the app starts, with a ConfigError', async (_, spec) => {
        await expect(setup({ routes: catalogue(spec as never) })).rejects.toBeInstanceOf(ConfigError)
      })

      it('a selector function that rejects: the mutation still answers, nothing is invalidated, a CallbackError is reported', async () => {
        const errors: CorralError[] = []
        const h = await setup({
          cacheOptions: { onError: (e) => errors.push(e) },
          defaults: { invalidateAfterUnsafe: false },
          routes: catalogue(() => Promise.reject(new Error('lookup failed'))),
        })
        await h.get('/items/1')
        expect((await h.req('/items/1', { method: 'PUT' })).status).toBe(204)
        expect(h.status(await h.get('/items/1'))).toBe('HIT')
        expect(errors).toHaveLength(1)
        expect(errors[0]).toBeInstanceOf(CallbackError)
      })
    })

    describe('11. bracket notation in the query', () => {
      it('?sort[]=-date&sort=price and ?sort=price&sort[]=-date never share an entry', async () => {
        const h = await setup({
          routes: [
            {
              method: 'GET',
              path: '/list',
              handler: (r) => ({ headers: { 'content-type': 'application/json' }, body: { json: { query: r.parsedQuery, call: r.call } } }),
            },
          ],
        })
        const a = await h.get('/list?sort[]=-date&sort=price')
        const b = await h.get('/list?sort=price&sort[]=-date')
        expect(h.status(a)).toBe('MISS')
        expect(h.status(b)).toBe('MISS')
        expect(JSON.parse(b.text).call).toBe(2)
        const a2 = await h.get('/list?sort[]=-date&sort=price')
        const b2 = await h.get('/list?sort=price&sort[]=-date')
        expect([h.status(a2), h.status(b2)]).toEqual(['HIT', 'HIT'])
        expect(a2.text).toBe(a.text)
        expect(b2.text).toBe(b.text)
        // Parameters that no parser merges still share, whatever their order.
        const c = await h.get('/list?b=1&sort[]=-date&a=2&sort=price')
        const d = await h.get('/list?a=2&sort[]=-date&b=1&sort=price')
        expect(h.status(c)).toBe('MISS')
        expect(h.status(d)).toBe('HIT')
        expect(h.calls()).toBe(3)
      })
    })

    describe('12. a conditional request on a cold cache', () => {
      const validated = (seen: (string | undefined)[], stream = false) => [
        {
          method: 'GET' as const,
          path: '/v',
          handler: (r: { call: number; headers: Readonly<Record<string, string | string[] | undefined>> }): Reply => {
            seen.push(r.headers['if-none-match'] as string | undefined)
            const text = `full body ${r.call}`
            return {
              headers: { 'content-type': 'text/plain', etag: '"v1"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT' },
              body: stream ? { stream: [text.slice(0, 4), text.slice(4)] } : text,
            }
          },
        },
      ]

      it.each([
        ['a whole body', false],
        ['a streamed body', true],
      ])('whose validator matches the fresh response gets a 304, and the entry is stored (%s)', async (_, stream) => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: validated(seen, stream) })
        const cold = await h.get('/v', { 'If-None-Match': '"v1"' })
        expect(cold.status).toBe(304)
        expect(h.status(cold)).toBe('MISS')
        expect(cold.body.length).toBe(0)
        expect(cold.headers.etag).toBe('"v1"')
        // The origin answered in full, so the response could be stored for everyone.
        expect(seen).toEqual([undefined])
        const plain = await h.get('/v')
        expect(plain.status).toBe(200)
        expect(h.status(plain)).toBe('HIT')
        expect(plain.text).toBe('full body 1')
        const again = await h.get('/v', { 'If-None-Match': 'W/"v1"' })
        expect(again.status).toBe(304)
        expect(h.status(again)).toBe('HIT')
        expect(h.calls()).toBe(1)
      })

      it('If-Modified-Since matching Last-Modified gets a 304 too; a validator that does not match gets the full 200', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: validated(seen) })
        const stale = await h.get('/v', { 'If-None-Match': '"v0"' })
        expect(stale.status).toBe(200)
        expect(stale.text).toBe('full body 1')
        await h.cache.clear()
        const since = await h.get('/v', { 'If-Modified-Since': 'Wed, 02 Jan 2030 00:00:00 GMT' })
        expect(since.status).toBe(304)
        expect(h.status(since)).toBe('MISS')
        expect(h.calls()).toBe(2)
      })

      it('50 concurrent cold conditional requests cost one origin call and all get a 304', async () => {
        const seen: (string | undefined)[] = []
        const h = await setup({ routes: validated(seen) })
        const all = await h.many(50, '/v', { headers: { 'If-None-Match': '"v1"' } })
        for (const res of all) expect(res.status).toBe(304)
        expect(h.calls()).toBe(1)
      })
    })
  })

  void factory
}
