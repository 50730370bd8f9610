import { createCache } from '@corral/core'
import express5 from 'express5'
import fastify5 from 'fastify5'
import { afterEach, describe, expect, it } from 'vitest'
import { expressFactory } from '../helpers/express.js'
import { fastifyFactory } from '../helpers/fastify.js'
import { exposeGc, settledHeap } from '../helpers/heap.js'
import { quickGet } from '../helpers/http.js'
import type { AdapterFactory } from '../helpers/scenario.js'
import { runCleanups } from '../helpers/setup.js'

// Issue 8, case 4, over HTTP: "app.use(corral(cache)) and 9,990 long URLs that 404 cost +140 MB"
// of heap under an 8 MB maxBytes. Every byte Corral keeps per key is now bounded by maxBytes.

const MiB = 1024 * 1024
const cleanups: (() => Promise<void>)[] = []
afterEach(() => runCleanups(cleanups))

const ADAPTERS: AdapterFactory[] = [expressFactory('express5', express5, 5, 'app'), fastifyFactory('fastify5', fastify5)]

describe.each(ADAPTERS)('heap under 9,900 long URLs that 404: $name', (factory) => {
  it('grows by less than maxBytes (8 MiB)', async () => {
    const gc = exposeGc()
    const maxBytes = 8 * MiB
    const cache = createCache({ ttl: '1m', maxBytes })
    cleanups.push(() => cache.close())
    // Express: no route matches, so app.use(corral(cache)) sees every request and Express answers
    // 404. Fastify caches per route: a catch-all route answers 404.
    const app = await factory.createApp({
      cache,
      routes: factory.name.startsWith('fastify') ? [{ method: 'GET', path: '/*', handler: () => ({ status: 404, body: 'not here' }) }] : [],
    })
    cleanups.push(() => app.close())
    const padding = 'a'.repeat(14 * 1024)
    const send = async (from: number, to: number): Promise<void> => {
      let next = from
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < to) {
          const res = await quickGet(app.url, `/missing/${padding}/${next++}`)
          expect(res.status).toBe(404)
        }
      }))
    }
    // Warm up the server, the agent and the JIT, so the baseline holds what every request needs.
    await send(0, 200)
    const before = settledHeap(gc)
    // 9,700 more: 9,900 in all, under the 10,000 URLs after which the old per-route memo started over.
    await send(200, 9_900)
    const grown = settledHeap(gc) - before
    expect(grown).toBeLessThan(maxBytes)
    expect(cache.stats().overheadBytes).toBeLessThanOrEqual(maxBytes / 16)
  }, 60_000)
})
