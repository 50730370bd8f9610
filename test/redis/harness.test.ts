import { existsSync } from 'node:fs'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { alive, tryConnect } from '../helpers/processes.js'
import { startRedis, type RedisServer, type StartOptions } from '../helpers/redis-server.js'

// Checks of the harness itself: each test starts its own servers, so crashing or freezing one
// never affects another. Timing bounds are deliberately loose; they only show that the server
// really was blocked, they are not performance assertions.

const started: RedisServer[] = []

async function start(options?: StartOptions): Promise<RedisServer> {
  const server = await startRedis(options)
  started.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()))
})

afterAll(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()))
})

/** Milliseconds a promise takes to settle from now. */
async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now()
  const value = await work
  return { value, ms: performance.now() - t0 }
}

describe('startRedis', () => {
  it('starts a private server on 127.0.0.1 that stores and returns values', async () => {
    const server = await start()
    expect(server.host).toBe('127.0.0.1')
    expect(server.port).not.toBe(6379)
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(server.running).toBe(true)
    expect(server.pid).toBeTypeOf('number')

    const client = server.client()
    await expect(client.set('greeting', 'hello')).resolves.toBe('OK')
    await expect(client.get('greeting')).resolves.toBe('hello')
    // The server is configured as the harness promises.
    await expect(client.config('GET', 'bind')).resolves.toEqual(['bind', '127.0.0.1'])
    await expect(client.config('GET', 'save')).resolves.toEqual(['save', ''])
    await expect(client.config('GET', 'appendonly')).resolves.toEqual(['appendonly', 'no'])
  })

  it('gives two servers different ports and separate data', async () => {
    const [a, b] = await Promise.all([start(), start()])
    expect(a.port).not.toBe(b.port)
    expect(a.pid).not.toBe(b.pid)
    await a.client().set('only-in-a', '1')
    await expect(b.client().exists('only-in-a')).resolves.toBe(0)
  })

  it('passes extra args to redis-server and refuses the ones the harness owns', async () => {
    const server = await start({ args: ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'] })
    const client = server.client()
    await expect(client.config('GET', 'maxmemory')).resolves.toEqual(['maxmemory', String(2 * 1024 * 1024)])
    await expect(client.config('GET', 'maxmemory-policy')).resolves.toEqual(['maxmemory-policy', 'noeviction'])
    await expect(startRedis({ args: ['--port', '6379'] })).rejects.toThrow(/--port is set by the harness/)
  })

  it('reports the server output when redis-server refuses to start', async () => {
    await expect(startRedis({ args: ['--no-such-option', 'x'] })).rejects.toThrow(/exited during start[\s\S]*no-such-option/)
  })
})

describe('kill and restart', () => {
  it('kill() crashes the server: connections are refused and commands fail', async () => {
    const server = await start()
    const client = server.client()
    await client.set('k', 'v')
    const pid = server.pid ?? -1

    await server.kill()
    expect(server.running).toBe(false)
    expect(server.pid).toBeUndefined()
    expect(alive(pid)).toBe(false)
    expect(await tryConnect(server.port)).toBe('ECONNREFUSED')
    await expect(client.get('k')).rejects.toThrow()
    await server.kill() // idempotent
  })

  it('restart() brings it back on the same port with no data', async () => {
    const server = await start()
    const client = server.client()
    await client.set('k', 'v')
    const { port } = server
    const oldPid = server.pid

    await server.kill()
    await server.restart()
    expect(server.running).toBe(true)
    expect(server.port).toBe(port)
    expect(server.pid).not.toBe(oldPid)
    // The client made before the crash reconnects by itself.
    await expect(client.ping()).resolves.toBe('PONG')
    await expect(client.get('k')).resolves.toBeNull()
    await expect(client.dbsize()).resolves.toBe(0)
  })

  it('restart() on a running server kills it first', async () => {
    const server = await start()
    const oldPid = server.pid ?? -1
    await server.client().set('k', 'v')
    await server.restart()
    expect(alive(oldPid)).toBe(false)
    await expect(server.client().get('k')).resolves.toBeNull()
  })
})

describe('blocking the server', () => {
  it.each([
    ['pause(300) blocks every client', (server: RedisServer) => server.pause(300)],
    ['sleep(0.3) blocks the whole server', (server: RedisServer) => server.sleep(0.3)],
  ] as const)('%s for about 300 ms', async (_, block) => {
    const server = await start()
    const client = server.client()
    await client.set('k', 'v')
    await block(server)
    const { value, ms } = await timed(client.get('k'))
    expect(value).toBe('v')
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(3_000)
  })

  it('freeze() holds commands until thaw()', async () => {
    const server = await start()
    const client = server.client()
    await client.set('k', 'v')

    await server.freeze()
    expect(server.running).toBe(true)
    let settledAt: number | undefined
    const get = client.get('k').finally(() => {
      settledAt = performance.now()
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(settledAt).toBeUndefined()

    const thawedAt = performance.now()
    await server.thaw()
    await expect(get).resolves.toBe('v')
    expect(settledAt).toBeGreaterThanOrEqual(thawedAt)
  })

  it('kill() works on a frozen server', async () => {
    const server = await start()
    const pid = server.pid ?? -1
    await server.freeze()
    await server.kill()
    expect(server.running).toBe(false)
    expect(alive(pid)).toBe(false)
    await server.restart()
    await expect(server.client().ping()).resolves.toBe('PONG')
  })

  it('refuses pause() and sleep() while frozen instead of hanging', async () => {
    const server = await start()
    await server.freeze()
    await expect(server.pause(100)).rejects.toThrow(/frozen/)
    await expect(server.sleep(0.1)).rejects.toThrow(/frozen/)
    await server.thaw()
  })
})

describe('stop', () => {
  it('leaves no process, no temp dir and no open clients; is idempotent', async () => {
    const server = await start()
    const client = server.client()
    await client.ping()
    const pid = server.pid ?? -1
    const dir = String(await client.config('GET', 'dir').then((reply) => (reply as string[])[1]))
    expect(existsSync(dir)).toBe(true)

    await server.stop()
    expect(server.running).toBe(false)
    expect(() => process.kill(pid, 0)).toThrow()
    expect(existsSync(dir)).toBe(false)
    expect(client.status).toBe('end')
    await server.stop()
    expect(() => server.client()).toThrow(/stopped/)
    await expect(server.restart()).rejects.toThrow(/stopped/)
  })

  it('stops a frozen server', async () => {
    const server = await start()
    const pid = server.pid ?? -1
    await server.freeze()
    await server.stop()
    expect(alive(pid)).toBe(false)
  })
})
