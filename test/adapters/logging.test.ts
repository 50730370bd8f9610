import { createCache, type CorralLogger } from '@corral/core'
import { corral } from '@corral/express'
import corralPlugin from '@corral/fastify'
import express5 from 'express5'
import type { Request, Response } from 'express'
import fastify5 from 'fastify5'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { runCleanups } from '../helpers/setup.js'

// Logging (issue 12): Fastify reports through the app's logger by default; any app can give
// createCache a pino-compatible logger; operations slower than slowMs are logged with key, route
// and timing.

const cleanups: (() => Promise<void>)[] = []
afterEach(() => runCleanups(cleanups))

/** A pino-compatible logger that keeps what it was given. */
function memoryLogger(): CorralLogger & { lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] } {
  const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = []
  return {
    lines,
    warn: (obj, msg) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  }
}

async function expressApp(cache: ReturnType<typeof createCache>, slowOriginMs: number): Promise<string> {
  const app = express5()
  app.use(corral(cache))
  app.get('/slow/:id', async (req: Request, res: Response) => {
    await new Promise((r) => setTimeout(r, slowOriginMs))
    res.type('text/plain').send(`slow ${req.params.id}`)
  })
  app.get('/broken', corral(cache, { key: () => { throw new Error('no key for you') } }), (_req: Request, res: Response) => void res.send('ok'))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  cleanups.push(() => new Promise((r) => server.close(() => r())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('logging', () => {
  it('Express: createCache({ logger, slowMs }) logs a slow fill with its key, route and timing, and every swallowed error', async () => {
    const logger = memoryLogger()
    const cache = createCache({ ttl: '1m', logger, slowMs: '40ms' })
    cleanups.push(() => cache.close())
    const url = await expressApp(cache, 80)
    await send(url, '/slow/1')
    const slow = logger.lines.filter((l) => l.obj.op === 'fill')
    expect(slow).toHaveLength(1)
    expect(slow[0]).toMatchObject({ level: 'warn', obj: { op: 'fill', url: '/slow/1', route: '*', status: 200, stored: true } })
    expect(slow[0]!.obj.key).toMatch(/^corral:/)
    expect(slow[0]!.obj.durationMs).toBeGreaterThanOrEqual(80 * 0.9)
    expect(slow[0]!.msg).toMatch(/^corral: slow fill \(\d+ ms\)$/)
    // A hit is not slow, and a lookup is never timed by the slow log.
    await send(url, '/slow/1')
    expect(logger.lines.filter((l) => l.obj.op !== undefined && l.obj.op !== 'fill' && l.obj.op !== 'store')).toEqual([])

    expect((await send(url, '/broken')).status).toBe(200)
    const errors = logger.lines.filter((l) => l.obj.code === 'CORRAL_ERR_CALLBACK')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ level: 'warn', msg: expect.stringMatching(/^corral: a route bypass or key function failed/) })
    expect(errors[0]!.obj.err).toBeInstanceOf(Error)
  })

  it('Fastify: a cache without a logger reports through the app logger (app.log); one with its own keeps it', async () => {
    const lines: Record<string, unknown>[] = []
    const app = fastify5({ logger: { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } } })
    const cache = createCache({ ttl: '1m', slowMs: '40ms' })
    cleanups.push(() => cache.close())
    await app.register(corralPlugin, { cache })
    app.get('/slow', async () => {
      await new Promise((r) => setTimeout(r, 80))
      return 'slow'
    })
    app.get('/broken', { config: { cache: { key: () => { throw new Error('no key for you') } } } }, async () => 'ok')
    await app.listen({ port: 0, host: '127.0.0.1' })
    cleanups.push(() => app.close())
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    await send(url, '/slow')
    await send(url, '/broken')
    const slow = lines.find((l) => l.op === 'fill')
    expect(slow).toMatchObject({ level: 40, op: 'fill', route: '/slow', url: '/slow', stored: true, msg: expect.stringMatching(/^corral: slow fill/) })
    expect(lines.find((l) => l.code === 'CORRAL_ERR_CALLBACK')).toMatchObject({ level: 40, msg: expect.stringMatching(/^corral: a route bypass or key function failed/) })

    // A cache given its own logger keeps it.
    const own = memoryLogger()
    const other = createCache({ ttl: '1m', logger: own })
    cleanups.push(() => other.close())
    const app2 = fastify5({ logger: { level: 'warn', stream: { write: () => undefined } } })
    await app2.register(corralPlugin, { cache: other })
    app2.get('/broken', { config: { cache: { key: () => { throw new Error('nope') } } } }, async () => 'ok')
    await app2.ready()
    expect((await app2.inject('/broken')).statusCode).toBe(200)
    expect(own.lines.map((l) => l.obj.code)).toEqual(['CORRAL_ERR_CALLBACK'])
    await app2.close()
  })

  it('refuses a logger without warn and error, and a bad slowMs, naming the option', () => {
    expect(() => createCache({ logger: { info: () => undefined } as never })).toThrow(/options\.logger/)
    expect(() => createCache({ slowMs: 'slow' as never })).toThrow(/options\.slowMs/)
    expect(() => createCache({ plugins: [{ before: () => undefined } as never] })).toThrow(/options\.plugins\[0\]/)
    expect(() => createCache({ plugins: [{ name: 'p', ops: ['lookup', 'nap'] } as never] })).toThrow(/options\.plugins\[0\]\.ops/)
  })
})
