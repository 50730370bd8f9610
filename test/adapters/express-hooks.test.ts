import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createCache } from '@corral/core'
import { corral } from '@corral/express'
import express4 from 'express4'
import express5 from 'express5'
import { describe, expect, it } from 'vitest'

// How Corral hooks an Express response (packages/core/src/adapter/node-response.ts): by the
// prototype Express gives every response, with each response carrying only its tap; and, where a
// response does not run those hooks, by hooks of its own, so that nothing is stored wrong or lost.

/* eslint-disable @typescript-eslint/no-explicit-any */

async function listen(app: any): Promise<{ get: (path: string) => Promise<string>; close: () => Promise<void> }> {
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    get: async (path) => {
      const r = await fetch(url + path)
      return `${r.headers.get('x-cache')} ${await r.text()}`
    },
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }),
  }
}

describe('Express responses hooked by their prototype', () => {
  it('a sub-app of another copy of Express: the first response, written without the hooks, is not stored; from then on responses get their own hooks', async () => {
    const cache = createCache({ ttl: '1m' })
    let calls = 0
    const sub = (express4 as any)()
    sub.get('/legacy', (_req: any, res: any) => res.send(`legacy ${++calls}`))
    const app = (express5 as any)()
    app.use(corral(cache))
    app.get('/own', (_req: any, res: any) => res.send('own'))
    const router = (express5 as any).Router()
    router.use(sub)
    app.use(router)
    const server = await listen(app)
    // Express 4 points the response at its own prototypes, which lack Express 5's hooks.
    expect(await server.get('/legacy')).toBe('null legacy 1')
    expect(cache.stats().stored).toBe(0)
    expect(await server.get('/legacy')).toBe('MISS legacy 2')
    expect(await server.get('/legacy')).toBe('HIT legacy 2')
    expect(await server.get('/own')).toBe('MISS own')
    expect(await server.get('/own')).toBe('HIT own')
    expect(calls).toBe(2)
    await server.close()
    await cache.close()
  })

  it.each([
    ['express4', express4],
    ['express5', express5],
  ])('%s: a middleware before Corral that wraps write and end (as compression does) gets hooks of the response own', async (_, express: any) => {
    const cache = createCache({ ttl: '1m' })
    let calls = 0
    let wrapped = 0
    const app = express()
    app.use((_req: any, res: any, next: () => void) => {
      const end = res.end
      res.end = function (this: unknown, ...args: unknown[]) {
        wrapped++
        return end.apply(this, args)
      }
      next()
    })
    app.use(corral(cache))
    app.get('/a', (_req: any, res: any) => res.send(`a ${++calls}`))
    const server = await listen(app)
    expect(await server.get('/a')).toBe('MISS a 1')
    expect(await server.get('/a')).toBe('HIT a 1')
    expect(wrapped).toBe(2)
    expect(calls).toBe(1)
    await server.close()
    await cache.close()
  })

  it('responses of an app without Corral, of the same copy of Express, pass through the hooks unchanged', async () => {
    const cache = createCache({ ttl: '1m' })
    const cached = (express5 as any)()
    cached.use(corral(cache))
    cached.get('/a', (_req: any, res: any) => res.send('a'))
    const plain = (express5 as any)()
    plain.get('/b', (_req: any, res: any) => {
      res.write('b1 ')
      res.end('b2')
    })
    const one = await listen(cached)
    const two = await listen(plain)
    expect(await one.get('/a')).toBe('MISS a')
    expect(await two.get('/b')).toBe('null b1 b2')
    expect(await two.get('/b')).toBe('null b1 b2')
    expect(await one.get('/a')).toBe('HIT a')
    await one.close()
    await two.close()
    await cache.close()
  })
})
