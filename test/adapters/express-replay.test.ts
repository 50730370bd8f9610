import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createCache } from '@corral/core'
import { corral, warm } from '@corral/express'
import express4 from 'express4'
import express5 from 'express5'
import { describe, expect, it } from 'vitest'
import { until } from '../helpers/scenario.js'

// How background refreshes and warming reach an Express app (packages/express/src/replay.ts):
// through the handler of the server that received the request, so that a sub-app mounted by a
// Router (which has no `parent`) is refreshed with the URL a client used, and without
// light-my-request's Express detection, which re-points Express's shared prototypes for good.

/* eslint-disable @typescript-eslint/no-explicit-any */
type ExpressLib = (() => any) & Record<string, any>

async function listen(app: any): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }) }
}

describe.each<[string, ExpressLib, 4 | 5]>([
  ['express4', express4 as unknown as ExpressLib, 4],
  ['express5', express5 as unknown as ExpressLib, 5],
])('%s: replays', (_, express, major) => {
  it('a sub-app mounted by a Router is refreshed under the URL the client used, with its own page', async () => {
    let clock = 1_000_000
    const cache = createCache({ now: () => clock })
    const docs = express()
    docs.get(major === 5 ? '/*path' : '/*', corral(cache, { ttl: '1s', staleWhileRevalidate: '1h' }), (req: any, res: any) => res.send(`page ${req.path}`))
    // Another page the sub-app serves at the full URL: the wrong answer a replay into the sub-app would store.
    docs.get('/docs/intro', (_req: any, res: any) => res.send('the wrong page'))
    const router = express.Router()
    router.use('/docs', docs)
    const app = express()
    app.use(router)
    const server = await listen(app)
    const get = async () => {
      const r = await fetch(`${server.url}/docs/intro`)
      return `${r.headers.get('x-cache')} ${await r.text()}`
    }
    expect(await get()).toBe('MISS page /intro')
    clock += 5_000
    expect(await get()).toBe('STALE page /intro')
    await until(() => cache.stats().stored === 2, 5000, 'the refresh')
    expect(await get()).toBe('HIT page /intro')
    await server.close()
    await cache.close()
  })

  it("leaves Express's prototypes alone: real responses of every kind still work after refreshes and warming", async () => {
    let clock = 1_000_000
    const cache = createCache({ now: () => clock })
    const requestProto = Object.getPrototypeOf(express.request)
    const responseProto = Object.getPrototypeOf(express.response)
    const app = express()
    app.use(corral(cache, { ttl: '1s', staleWhileRevalidate: '1h' }))
    app.get('/json', (_req: any, res: any) => res.json({ ok: true }))
    // A redirect is stored only with its own freshness.
    app.get('/go', (_req: any, res: any) => res.set('cache-control', 'max-age=1').redirect('/json'))
    app.get('/stream', (_req: any, res: any) => {
      res.write('a')
      res.end('b')
    })
    const server = await listen(app)
    for (const p of ['/json', '/go', '/stream']) await fetch(server.url + p, { redirect: 'manual' }).then((r) => r.arrayBuffer())
    clock += 5_000
    for (const p of ['/json', '/go', '/stream']) await fetch(server.url + p, { redirect: 'manual' }).then((r) => r.arrayBuffer())
    await until(() => cache.stats().revalidations === 3 && cache.stats().stored === 6, 5000, 'three refreshes')
    expect((await warm(app, cache, ['/json', '/stream'])).stored).toEqual(['/json', '/stream'])
    expect(Object.getPrototypeOf(express.request)).toBe(requestProto)
    expect(Object.getPrototypeOf(express.response)).toBe(responseProto)
    expect(requestProto).toBe(http.IncomingMessage.prototype)
    expect(responseProto).toBe(http.ServerResponse.prototype)
    clock += 5_000
    const json = await fetch(server.url + '/json?fresh=1')
    expect([json.status, await json.json()]).toEqual([200, { ok: true }])
    const go = await fetch(server.url + '/go?fresh=1', { redirect: 'manual' })
    expect([go.status, go.headers.get('location')]).toEqual([302, '/json'])
    expect(await (await fetch(server.url + '/stream?fresh=1')).text()).toBe('ab')
    await server.close()
    await cache.close()
  })
})
