import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { RedisGateway } from '../src/stores/redis-gateway.js'
import { RedisInspector } from '../src/stores/redis-inspector.js'

/** A primary whose INFO answers when the test says, and which records WAITs. */
function fakePrimary() {
  let answer: (() => void) | undefined
  const info = new Promise<void>((resolve) => {
    answer = resolve
  })
  const waits: number[] = []
  const node = {
    options: { host: '127.0.0.1', port: 7000 },
    info: async (section: string) => {
      await info
      return section === 'replication' ? '# Replication\r\nrole:master\r\nconnected_slaves:1\r\n' : '# Memory\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n'
    },
    wait: async (n: number) => {
      waits.push(n)
      return n
    },
  }
  const client = Object.assign(new EventEmitter(), { status: 'ready' })
  const gateway = {
    client,
    isClosed: false,
    writeTimeoutMs: 1000,
    nodes: () => [node],
    call: <T>(op: () => Promise<T>) => op(),
    storeError: (err: unknown) => err,
    report: () => undefined,
  } as unknown as RedisGateway
  return { gateway, waits, answerInfo: () => answer?.() }
}

describe('RedisInspector', () => {
  it('an invalidation right after a connection waits for the replicas to be read, then WAITs for them', async () => {
    const p = fakePrimary()
    const inspector = new RedisInspector(p.gateway, false, () => undefined)
    let done = false
    const replicated = inspector.replicated().then(() => {
      done = true
    })
    // INFO has not answered: the replicas are unknown, so nothing is waited for yet, and the invalidation does not resolve.
    await new Promise((r) => setImmediate(r))
    expect([done, p.waits]).toEqual([false, []])
    p.answerInfo()
    await replicated
    expect(p.waits).toEqual([1])
    expect(inspector.expectedReplicas).toBe(1)
    inspector.close()
  })
})
