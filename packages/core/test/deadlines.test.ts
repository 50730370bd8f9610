import { describe, expect, it } from 'vitest'
import { Deadlines } from '../src/stores/deadlines.js'

// One timer for the deadlines of every Redis call (src/stores/deadlines.ts).

function expiring(d: Deadlines, ms: number, log: string[], name: string): { deadline: ReturnType<Deadlines['add']>; expired: Promise<number> } {
  let deadline!: ReturnType<Deadlines['add']>
  const expired = new Promise<number>((resolve) => {
    deadline = d.add(ms, () => {
      log.push(name)
      resolve(performance.now())
    })
  })
  return { deadline, expired }
}

describe('Deadlines', () => {
  it('expires a call no earlier than its deadline, and a settled one never', async () => {
    const d = new Deadlines()
    const log: string[] = []
    const began = performance.now()
    const a = expiring(d, 30, log, 'a')
    const b = expiring(d, 30, log, 'b')
    b.deadline.settled = true
    const c = expiring(d, 30, log, 'c')
    expect(await a.expired).toBeGreaterThanOrEqual(began + 30)
    await c.expired
    expect(log).toEqual(['a', 'c'])
  })

  it('a shorter deadline begun after a longer one expires first (the timer is moved forward)', async () => {
    const d = new Deadlines()
    const log: string[] = []
    const long = expiring(d, 400, log, 'long')
    const short = expiring(d, 10, log, 'short')
    await short.expired
    expect(log).toEqual(['short'])
    await long.expired
    expect(log).toEqual(['short', 'long'])
  })

  it('10,000 calls at once: every one that did not answer expires, none that did', async () => {
    const d = new Deadlines()
    const log: string[] = []
    const calls = Array.from({ length: 10_000 }, (_, i) => expiring(d, i % 2 === 0 ? 20 : 60, log, String(i)))
    calls.forEach((c, i) => {
      if (i % 3 === 0) c.deadline.settled = true
    })
    await Promise.all(calls.filter((_, i) => i % 3 !== 0).map((c) => c.expired))
    const expected = calls.map((_, i) => i).filter((i) => i % 3 !== 0)
    expect(log.map(Number).sort((x, y) => x - y)).toEqual(expected)
    // Those with the shorter deadline all expired before any with the longer one.
    const firstLong = log.findIndex((n) => Number(n) % 2 === 1)
    expect(log.slice(firstLong).every((n) => Number(n) % 2 === 1)).toBe(true)
  })

  it('keeps working once its queues have emptied', async () => {
    const d = new Deadlines()
    const log: string[] = []
    await expiring(d, 5, log, 'first').expired
    const answered = expiring(d, 5, log, 'answered')
    answered.deadline.settled = true
    await expiring(d, 15, log, 'second').expired
    expect(log).toEqual(['first', 'second'])
  })
})
