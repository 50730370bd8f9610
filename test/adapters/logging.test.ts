import { createCache, type CorralLogger } from '@corral/core'
import { corral } from '@corral/express'
import corralPlugin from '@corral/fastify'
import express5 from 'express5'
import type { Request, Response } from 'express'
import fastify5 from 'fastify5'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { until } from '../helpers/scenario.js'
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
    // Logged when it passed slowMs (still running), then when it ended, with its outcome.
    expect(logger.lines.filter((l) => l.obj.op === 'fill').map((l) => l.msg?.replace(/\d+ ms\)/, 'N ms)'))).toEqual(['corral: slow fill, still running after 40 ms', 'corral: slow fill (N ms)'])
    const slow = logger.lines.filter((l) => l.obj.op === 'fill' && /^corral: slow fill \(/.test(l.msg ?? ''))
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
    const slow = lines.find((l) => l.op === 'fill' && /^corral: slow fill \(/.test(String(l.msg)))
    expect(slow).toMatchObject({ level: 40, op: 'fill', route: '/slow', url: '/slow', stored: true, msg: expect.stringMatching(/^corral: slow fill/) })
    // Through the request's own logger: the line carries its request id.
    expect(slow?.reqId).toEqual(expect.any(String))
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

  it('a fill that hangs is logged once it passes slowMs, still running, and Fastify warns through app.log only', async () => {
    const logger = memoryLogger()
    const cache = createCache({ ttl: '1m', logger, slowMs: '50ms' })
    cleanups.push(() => cache.close())
    const app = express5()
    app.use(corral(cache))
    let release: () => void = () => undefined
    app.get('/hang', (_req: Request, res: Response) => {
      release = () => void res.send('late')
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    cleanups.push(() => new Promise((r) => server.close(() => r())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const pending = send(url, '/hang')
    await until(() => logger.lines.some((l) => l.obj.op === 'fill'), 5000, 'the still-running log')
    expect(logger.lines.find((l) => l.obj.op === 'fill')).toMatchObject({ level: 'warn', obj: { url: '/hang', route: '*' }, msg: 'corral: slow fill, still running after 50 ms' })
    release()
    expect((await pending).text).toBe('late')
    // And once more when it ends, with its outcome.
    await until(() => logger.lines.filter((l) => l.obj.op === 'fill').length === 2, 5000, 'the fill to end')
    expect(logger.lines.filter((l) => l.obj.op === 'fill')[1]).toMatchObject({ obj: { stored: true, status: 200 }, msg: expect.stringMatching(/^corral: slow fill \(\d+ ms\)$/) })

    // Fastify: a cache without onError or logger reports to app.log, not to process warnings too.
    const warnings: string[] = []
    const onWarning = (w: Error): void => void warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      const lines: Record<string, unknown>[] = []
      const f = fastify5({ logger: { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } } })
      const quiet = createCache({ ttl: '1m' })
      cleanups.push(() => quiet.close())
      await f.register(corralPlugin, { cache: quiet })
      f.get('/broken', { config: { cache: { key: () => { throw new Error('nope') } } } }, async () => 'ok')
      await f.ready()
      expect((await f.inject('/broken')).statusCode).toBe(200)
      await new Promise((r) => setImmediate(r))
      expect(lines.filter((l) => l.code === 'CORRAL_ERR_CALLBACK')).toHaveLength(1)
      expect(warnings.filter((w) => w.includes('key function failed'))).toEqual([])
      await f.close()
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('refuses a logger without warn and error, and a bad slowMs, naming the option', () => {
    expect(() => createCache({ logger: { info: () => undefined } as never })).toThrow(/options\.logger/)
    expect(() => createCache({ slowMs: 'slow' as never })).toThrow(/options\.slowMs/)
    expect(() => createCache({ plugins: [{ before: () => undefined } as never] })).toThrow(/options\.plugins\[0\]/)
    expect(() => createCache({ plugins: [{ name: 'p', ops: ['lookup', 'nap'] } as never] })).toThrow(/options\.plugins\[0\]\.ops/)
  })
})
