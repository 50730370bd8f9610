import { existsSync } from 'node:fs'
import path from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { alive, tryConnect } from '../helpers/processes.js'
import { startSentinelGroup, type SentinelGroup, type StartSentinelOptions } from '../helpers/redis-sentinel.js'
import { until } from '../helpers/scenario.js'

// Checks of the Sentinel harness itself: each test starts its own group (2 servers, 3 sentinels),
// so a failover in one never affects another. Nothing sleeps for a fixed time: every wait polls
// against a deadline derived from the group's sentinel settings plus a margin for a loaded host.

const groups: SentinelGroup[] = []
const ownClients: Redis[] = []

async function start(options?: StartSentinelOptions): Promise<SentinelGroup> {
  const group = await startSentinelGroup(options)
  groups.push(group)
  return group
}

afterEach(async () => {
  for (const client of ownClients.splice(0)) client.disconnect()
  await Promise.all(groups.splice(0).map((group) => group.stop()))
})

/**
 * A bare ioredis Sentinel client, built from nothing but the group's `{ sentinels, name }` (as an
 * application would configure it), with ioredis' own defaults for everything else.
 */
function plainSentinelClient(group: SentinelGroup): Redis {
  const { sentinels, name } = group.clientOptions()
  const client = new Redis({ sentinels, name })
  client.on('error', () => {
    // Expected while the primary is down; commands still reject.
  })
  ownClients.push(client)
  return client
}

/** Slack for a loaded 2-core host on top of the bounds below. */
const MARGIN_MS = 3_000
/** Start (bounded by the harness at 15 s) plus the slowest operation and its client check. */
const TEST_TIMEOUT_MS = 45_000
/** ioredis' default retryStrategy waits at most 5000 ms + 200 ms jitter between reconnects. */
const IOREDIS_DEFAULT_MAX_BACKOFF_MS = 5_200
/** group.client() reconnects (and re-asks the sentinels) at most 500 ms apart. */
const HARNESS_CLIENT_MAX_BACKOFF_MS = 500

/** `[k1, v1, k2, v2, ...]` → { k1: v1, ... } */
function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1])
  return out
}

describe('startSentinelGroup', () => {
  it(
    'starts a primary, a replica and three sentinels that know each other, on private ports',
    async () => {
      const group = await start()
      const [first, second] = group.servers
      if (!first || !second) throw new Error('expected two servers')

      expect(group.name).toBe('corral')
      expect(group.sentinels).toHaveLength(3)
      const ports = [...group.sentinels.map((s) => s.port), first.port, second.port]
      expect(new Set(ports).size).toBe(5)
      expect(ports).not.toContain(6379)
      expect(ports).not.toContain(26379)
      expect(group.sentinels.every((s) => s.host === '127.0.0.1')).toBe(true)
      expect(group.pids()).toHaveLength(5)

      await expect(group.currentPrimaryPort()).resolves.toBe(first.port)
      await expect(group.primary()).resolves.toBe(first)
      await expect(group.replica()).resolves.toBe(second)
      for (let i = 0; i < group.sentinels.length; i++) {
        const master = pairs(await group.sentinelClient(i).call('SENTINEL', 'MASTER', group.name))
        expect(master).toMatchObject({
          ip: '127.0.0.1',
          port: String(first.port),
          flags: 'master',
          quorum: '2',
          'num-slaves': '1',
          'num-other-sentinels': '2',
          'down-after-milliseconds': String(group.downAfterMs),
          'failover-timeout': String(group.failoverTimeoutMs),
          'parallel-syncs': '1',
        })
      }
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'replicates what a Sentinel client writes to the replica',
    async () => {
      const group = await start()
      const [first, second] = group.servers
      if (!first || !second) throw new Error('expected two servers')
      const client = plainSentinelClient(group)

      await expect(client.set('greeting', 'hello')).resolves.toBe('OK')
      // Replication is asynchronous; WAIT returns once the replica has acknowledged the write.
      await expect(client.wait(1, 2_000 + MARGIN_MS)).resolves.toBe(1)
      const onReplica = second.client()
      await expect(onReplica.get('greeting')).resolves.toBe('hello')
      await expect(onReplica.set('x', 'y')).rejects.toThrow(/READONLY/)
      await expect(first.client().get('greeting')).resolves.toBe('hello')
    },
    TEST_TIMEOUT_MS,
  )

  it('refuses options it cannot honour, before starting anything', async () => {
    await expect(startSentinelGroup({ name: 'has space' })).rejects.toThrow(/name must match/)
    await expect(startSentinelGroup({ downAfterMs: 0 })).rejects.toThrow(/downAfterMs must be a positive integer/)
    await expect(startSentinelGroup({ args: ['--replicaof', '127.0.0.1', '1'] })).rejects.toThrow(/--replicaof is set by the harness/)
  })
})

describe('failover', () => {
  it(
    'failover() swaps the roles and a Sentinel client with failoverDetector writes to the new primary',
    async () => {
      const group = await start()
      const [first, second] = group.servers
      if (!first || !second) throw new Error('expected two servers')
      // Without failoverDetector ioredis keeps its connection to the old primary, which accepts
      // writes (lost later) until the sentinels demote it about 10 s later; with it, ioredis
      // reconnects on the sentinels' +switch-master message.
      const client = group.client({ failoverDetector: true })
      await client.set('before', '1')
      await expect(client.wait(1, 2_000 + MARGIN_MS)).resolves.toBe(1)

      const result = await group.failover()
      expect(result).toMatchObject({ from: first.port, to: second.port })
      expect(result.ms).toBeLessThan(group.failoverTimeoutMs + 5_000)
      await expect(group.currentPrimaryPort()).resolves.toBe(second.port)
      await expect(group.primary()).resolves.toBe(second)
      await expect(group.replica()).resolves.toBe(first)
      await expect(second.client().info('replication')).resolves.toMatch(/^role:master\r?$/m)
      expect(first.running).toBe(true)

      // +switch-master has been published by the time failover() resolves: one reconnect.
      const newPrimary = second.client()
      await until(async () => {
        await client.set('after', 'x')
        return (await newPrimary.get('after')) === 'x'
      }, HARNESS_CLIENT_MAX_BACKOFF_MS + MARGIN_MS, 'the client writes to the new primary')
      await expect(client.info('server')).resolves.toMatch(new RegExp(`^tcp_port:${second.port}\\r?$`, 'm'))
      await expect(client.get('before')).resolves.toBe('1')
    },
    TEST_TIMEOUT_MS,
  )

  it(
    'killPrimary() promotes the replica and a plain Sentinel client recovers',
    async () => {
      const group = await start()
      const [first, second] = group.servers
      if (!first || !second) throw new Error('expected two servers')
      const client = plainSentinelClient(group)
      await client.set('before', '1')
      await expect(client.wait(1, 2_000 + MARGIN_MS)).resolves.toBe(1)
      const firstPid = first.pid ?? -1

      const result = await group.killPrimary()
      expect(result).toMatchObject({ from: first.port, to: second.port })
      // Sentinels cannot notice a dead primary before down-after has passed.
      expect(result.ms).toBeGreaterThanOrEqual(group.downAfterMs)
      expect(first.running).toBe(false)
      expect(alive(firstPid)).toBe(false)
      await expect(group.primary()).resolves.toBe(second)
      await expect(second.client().info('replication')).resolves.toMatch(/^role:master\r?$/m)

      // The kill cut the client off; it keeps re-asking the sentinels with ioredis' backoff.
      const newPrimary = second.client()
      await until(async () => {
        await client.set('after', '2')
        return (await newPrimary.get('after')) === '2'
      }, IOREDIS_DEFAULT_MAX_BACKOFF_MS + MARGIN_MS, 'the client writes to the promoted replica')
      await expect(client.get('before')).resolves.toBe('1')
      // Nothing is left to promote until the test restarts the killed server.
      await expect(group.failover()).rejects.toThrow(new RegExp(`server ${first.port} is not running`))
    },
    TEST_TIMEOUT_MS,
  )
})

describe('stop', () => {
  it(
    'leaves no process, no temp dir and no open client; is idempotent',
    async () => {
      const group = await start()
      const pids = group.pids()
      expect(pids).toHaveLength(5)
      expect(pids.every(alive)).toBe(true)
      const dirs = [
        ...(await Promise.all(
          group.sentinels.map(async (_, i) => {
            const info = await group.sentinelClient(i).info('server')
            return path.dirname(/^config_file:(.*?)\r?$/m.exec(info)?.[1] ?? '')
          }),
        )),
        ...(await Promise.all(group.servers.map(async (s) => String(((await s.client().config('GET', 'dir')) as string[])[1])))),
      ]
      expect(dirs).toHaveLength(5)
      expect(dirs.every((dir) => dir.startsWith('/') && existsSync(dir))).toBe(true)
      const client = group.client()
      await client.ping()

      await group.stop()
      expect(pids.filter(alive)).toEqual([])
      expect(group.pids()).toEqual([])
      expect(dirs.filter((dir) => existsSync(dir))).toEqual([])
      expect(client.status).toBe('end')
      for (const { port } of group.sentinels) expect(await tryConnect(port)).toBe('ECONNREFUSED')

      await group.stop()
      expect(() => group.client()).toThrow(/stopped/)
      await expect(group.failover()).rejects.toThrow(/stopped/)
      await expect(group.currentPrimaryPort()).rejects.toThrow(/stopped/)
    },
    TEST_TIMEOUT_MS,
  )
})
