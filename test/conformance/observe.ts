import diagnostics from 'node:diagnostics_channel'
import { CallbackError, CHANNEL_NAMES, type CacheEvent, type CachePlugin, type CorralError, type Operation } from '@corral/core'
import { describe, expect, it } from 'vitest'
import { until, type AdapterFactory, type OriginRequest, type Reply } from '../helpers/scenario.js'
import type { Harness, HarnessSpec } from '../helpers/setup.js'

/** Every hook call a recording plugin saw: which hook, and the event (the same object in before and after). */
interface Call {
  readonly hook: 'before' | 'after'
  readonly event: CacheEvent
  /** What the event said when the hook ran (before: no result yet). */
  readonly snapshot: Readonly<Record<string, unknown>>
}

function recorder(name = 'recorder', ops?: readonly Operation[]): CachePlugin & { calls: Call[]; ofOp(op: Operation): CacheEvent[] } {
  const calls: Call[] = []
  return {
    name,
    ...(ops === undefined ? {} : { ops }),
    calls,
    before(event) {
      calls.push({ hook: 'before', event, snapshot: { ...event } })
    },
    after(event) {
      calls.push({ hook: 'after', event, snapshot: { ...event } })
    },
    ofOp(op) {
      return calls.filter((c) => c.hook === 'after' && c.event.op === op).map((c) => c.event)
    },
  }
}

const product = (r: OriginRequest): Reply => ({ headers: { 'content-type': 'text/plain', 'cache-tag': `p-${r.params.id}` }, body: `product ${r.params.id}` })

/**
 * Observation (issue 12): plugins see every operation with timings, a plugin that throws fails
 * nothing, diagnostics_channel subscribers see the same operations, and the status header can be
 * turned off; on every adapter.
 */
export function runObserve(setup: (spec: HarnessSpec) => Promise<Harness>, factory: AdapterFactory): void {
  describe('observation: plugins, diagnostics channels', () => {
    it('a plugin sees lookup, fill, store and invalidate, before and after, with key, route, outcome and timing', async () => {
      const plugin = recorder()
      const h = await setup({ cacheOptions: { plugins: [plugin] }, routes: [{ method: 'GET', path: '/obs/:id', cache: { name: 'product' }, handler: product }] })
      const miss = await h.get('/obs/1')
      const hit = await h.get('/obs/1')
      expect([h.status(miss), h.status(hit), hit.text]).toEqual(['MISS', 'HIT', 'product 1'])

      // Every event went through before, then after, as one object; after has its duration.
      const befores = plugin.calls.filter((c) => c.hook === 'before').map((c) => c.event)
      const afters = plugin.calls.filter((c) => c.hook === 'after').map((c) => c.event)
      expect(new Set(befores)).toEqual(new Set(afters))
      for (const e of afters) {
        expect(e.durationMs).toBeGreaterThanOrEqual(0)
        expect(Number.isFinite(e.startedAt)).toBe(true)
      }
      for (const c of plugin.calls.filter((c) => c.hook === 'before')) expect(c.snapshot.durationMs).toBe(0)

      // One lookup per request counts it (Express's route middleware looks again, marked `again`).
      const lookups = plugin.ofOp('lookup').filter((e) => e.op === 'lookup' && !e.again)
      expect(lookups.map((e) => e.op === 'lookup' && e.result)).toEqual(['miss', 'hit'])
      // The route's name labels its lookups (an app-wide Express lookup first is '*').
      const last = plugin.ofOp('lookup').filter((e) => e.op === 'lookup' && e.result === 'hit').at(-1)
      // Express with app.use and a route's own middleware answers hits app-wide, before routing: '*'.
      const hitRoute = factory.name.includes('app.use + route') ? '*' : 'product'
      expect(last).toMatchObject({ op: 'lookup', route: hitRoute, method: 'GET', url: '/obs/1', collapsed: false })
      const key = last?.op === 'lookup' ? last.key : undefined
      expect(key).toMatch(/^corral:/)

      const [fill] = plugin.ofOp('fill')
      expect(plugin.ofOp('fill')).toHaveLength(1)
      expect(fill).toMatchObject({ op: 'fill', key, route: 'product', url: '/obs/1', status: 200, stored: true, bytes: 'product 1'.length, background: false })
      const [store] = plugin.ofOp('store')
      expect(store).toMatchObject({ op: 'store', key, route: 'product', bytes: 'product 1'.length, result: 'stored' })
      // The store ran inside the fill: it began after the fill and ended before the fill's end.
      expect(store!.startedAt).toBeGreaterThanOrEqual(fill!.startedAt)
      expect(store!.startedAt + store!.durationMs).toBeLessThanOrEqual(fill!.startedAt + fill!.durationMs + 1e-6)

      expect(await h.cache.invalidate({ tags: ['p-1'] })).toBe(1)
      expect(plugin.ofOp('invalidate')).toEqual([expect.objectContaining({ op: 'invalidate', source: 'local', tags: ['p-1'], keys: [], soft: false, all: false, removed: 1 })])
      expect(h.status(await h.get('/obs/1'))).toBe('MISS')
    })

    it('a response not stored is a fill with its reason; a bypass is a lookup with its reason', async () => {
      const plugin = recorder('r', ['lookup', 'fill'])
      const h = await setup({
        cacheOptions: { plugins: [plugin] },
        routes: [{ method: 'GET', path: '/private', handler: () => ({ headers: { 'cache-control': 'private' }, body: 'mine' }) }],
      })
      await h.get('/private')
      await h.get('/private', { authorization: 'Bearer x' })
      expect(plugin.ofOp('fill')).toEqual([expect.objectContaining({ status: 200, stored: false, reason: 'private', bytes: 0 })])
      const bypass = plugin.ofOp('lookup').filter((e) => e.op === 'lookup' && e.result === 'bypass' && !e.again)
      expect(bypass).toEqual([expect.objectContaining({ reason: 'authorization', key: undefined })])
      // A plugin that asked for lookup and fill only gets nothing else.
      expect(new Set(plugin.calls.map((c) => c.event.op))).toEqual(new Set(['lookup', 'fill']))
    })

    it('a stale hit reports the background refresh (revalidate) and the fill of its replay', async () => {
      const plugin = recorder('r', ['revalidate', 'fill'])
      const h = await setup({
        cacheOptions: { plugins: [plugin], staleWhileRevalidate: '1m' },
        routes: [{ method: 'GET', path: '/swr', handler: (r) => ({ headers: { 'cache-control': 'max-age=10' }, body: `v${r.call}` }) }],
      })
      await h.get('/swr')
      h.clock.advance(11_000)
      expect(h.status(await h.get('/swr'))).toBe('STALE')
      await until(() => plugin.ofOp('revalidate').length === 1, 5000, 'the refresh to end')
      expect(plugin.ofOp('revalidate')[0]).toMatchObject({ op: 'revalidate', url: '/swr', trigger: 'stale', result: 'stored' })
      expect(plugin.ofOp('fill').map((e) => e.op === 'fill' && [e.background, e.stored])).toEqual([
        [false, true],
        [true, true],
      ])
    })

    it('a plugin that throws in every hook fails no request, and is reported, naming it', async () => {
      const errors: CorralError[] = []
      const boom: CachePlugin = {
        name: 'boom',
        before() {
          throw new Error('before failed')
        },
        after() {
          throw new Error('after failed')
        },
      }
      const h = await setup({
        cacheOptions: { plugins: [boom], onError: (e) => errors.push(e) },
        routes: [{ method: 'GET', path: '/obs/:id', handler: product }],
      })
      const miss = await h.get('/obs/2')
      const hit = await h.get('/obs/2')
      expect([miss.status, h.status(miss), miss.text, hit.status, h.status(hit), hit.text]).toEqual([200, 'MISS', 'product 2', 200, 'HIT', 'product 2'])
      expect(await h.cache.invalidate({ tags: ['p-2'] })).toBe(1)
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.every((e) => e instanceof CallbackError && /^plugin boom: (before|after)\(\w+(\.\w+)?\) threw/.test(e.message))).toBe(true)
      expect(new Set(errors.map((e) => e.message.match(/\((.+)\)/)?.[1]))).toEqual(new Set(['lookup', 'fill', 'store', 'invalidate']))
      expect(h.cache.stats().errors).toBe(errors.length)
    })

    it('a plugin that freezes the event fails no request: the operation goes on with a copy, and it is reported', async () => {
      const errors: CorralError[] = []
      const freezer: CachePlugin = { name: 'freezer', before: (e) => void Object.freeze(e) }
      const h = await setup({ cacheOptions: { plugins: [freezer], onError: (e) => errors.push(e) }, routes: [{ method: 'GET', path: '/obs/:id', handler: product }] })
      const answers = [await h.get('/obs/3'), await h.get('/obs/3'), await h.get('/obs/3', { authorization: 'Bearer x' })]
      expect(answers.map((r) => `${r.status} ${h.status(r)} ${r.text}`)).toEqual(['200 MISS product 3', '200 HIT product 3', '200 BYPASS product 3'])
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.every((e) => e instanceof CallbackError && /froze or sealed the \w+ event/.test(e.message))).toBe(true)
    })

    it('a diagnostics_channel subscriber sees lookups and fills on the tracing channels, in tracePromise order', async () => {
      const seen: string[] = []
      const url = `/dc/${factory.name.replace(/\W+/g, '-')}`
      const handlers = (op: 'lookup' | 'fill') => {
        const mine = (e: CacheEvent): boolean => 'url' in e && e.url === url
        return {
          start: (e: unknown) => void (mine(e as CacheEvent) && seen.push(`${op}:start`)),
          end: (e: unknown) => void (mine(e as CacheEvent) && seen.push(`${op}:end`)),
          asyncStart: (e: unknown) => void (mine(e as CacheEvent) && seen.push(`${op}:asyncStart`)),
          asyncEnd: (e: unknown) => {
            const ev = e as CacheEvent
            if (mine(ev)) seen.push(`${op}:asyncEnd${ev.op === 'fill' ? `:${ev.stored}` : ''}`)
          },
          error: (e: unknown) => void (mine(e as CacheEvent) && seen.push(`${op}:error`)),
        }
      }
      const lookup = diagnostics.tracingChannel(CHANNEL_NAMES.lookup)
      const fill = diagnostics.tracingChannel(CHANNEL_NAMES.fill)
      const l = handlers('lookup')
      const f = handlers('fill')
      lookup.subscribe(l)
      fill.subscribe(f)
      try {
        const h = await setup({ routes: [{ method: 'GET', path: '/dc/:name', handler: () => ({ body: 'x' }) }] })
        await h.get(url)
        await until(() => seen.includes('fill:asyncEnd:true'), 5000, 'the fill to end')
        await h.get(url)
        // The in-memory store answers in the same turn: a lookup starts and ends, and the miss's fill
        // starts within it and goes on past it (its end, then asyncStart and asyncEnd when stored).
        expect(seen.slice(0, 4)).toEqual(['lookup:start', 'fill:start', 'fill:end', 'lookup:end'])
        expect(seen.filter((s) => s.startsWith('fill'))).toEqual(['fill:start', 'fill:end', 'fill:asyncStart', 'fill:asyncEnd:true'])
        expect(seen.slice(-2)).toEqual(['lookup:start', 'lookup:end'])
      } finally {
        lookup.unsubscribe(l)
        fill.unsubscribe(f)
      }
    })

    it("a route whose options change the key counts each request once (Express's app-wide lookup before it is superseded, not a miss)", async () => {
      const plugin = recorder('r', ['lookup', 'fill'])
      const h = await setup({
        cacheOptions: { plugins: [plugin] },
        routes: [{ method: 'GET', path: '/keyed/:id', cache: { key: () => ['keyed'] }, handler: product }],
      })
      const statuses = [h.status(await h.get('/keyed/1')), h.status(await h.get('/keyed/1')), h.status(await h.get('/keyed/1'))]
      expect(statuses).toEqual(['MISS', 'HIT', 'HIT'])
      expect(h.calls()).toBe(1)
      expect(h.cache.stats()).toMatchObject({ misses: 1, hits: 2, stored: 1 })
      // Fills an app-wide lookup started and a route's own lookup superseded store nothing, and say why.
      const fills = plugin.ofOp('fill').map((e) => (e.op === 'fill' ? (e.stored ? 'stored' : e.reason) : ''))
      expect(fills.filter((f) => f !== 'superseded')).toEqual(['stored'])
      // They never reached the origin: not counted as responses not stored.
      expect(h.cache.stats().notStored.superseded).toBeUndefined()
      // The request is counted by the lookup that decided it: a later one names the one it replaces.
      const lookups = plugin.ofOp('lookup').filter((e) => e.op === 'lookup')
      const counted = lookups.length - lookups.filter((e) => e.op === 'lookup' && e.replaces !== undefined).length
      expect(counted).toBe(3)
      const final = lookups.filter((e) => !lookups.some((l) => l.op === 'lookup' && l.replaces === e))
      expect(final.map((e) => e.op === 'lookup' && e.result)).toEqual(['miss', 'hit', 'hit'])
    })

    it('cacheStatusHeader: false sends no X-Cache; Cache-Status still says what happened', async () => {
      const h = await setup({ cacheOptions: { cacheStatusHeader: false }, routes: [{ method: 'GET', path: '/quiet', handler: () => ({ body: 'q' }) }] })
      const miss = await h.get('/quiet')
      const hit = await h.get('/quiet')
      expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual([undefined, undefined])
      expect(String(miss.headers['cache-status'])).toMatch(/^Corral; fwd=uri-miss/)
      expect(String(hit.headers['cache-status'])).toMatch(/^Corral; hit/)
    })
  })
}
