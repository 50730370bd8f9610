import * as http from 'node:http'
import { randomBytes } from 'node:crypto'
import express5 from 'express5'
import fastify5 from 'fastify5'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { CacheHealth, Duration } from '@corral/core'
import { expressFactory } from '../helpers/express.js'
import { fastifyFactory } from '../helpers/fastify.js'
import { FLEET_HOST, instance, xcache, type Instance } from '../helpers/fleet.js'
import { between, formatSummary, startLoad, summarize, type Load, type Sample } from '../helpers/load.js'
import { startSentinelGroup, type Failover, type Redis, type RedisServer, type SentinelGroup } from '../helpers/redis-sentinel.js'
import { sleep, until, type AdapterFactory, type RouteSpec, type UntilOptions } from '../helpers/scenario.js'
import { runCleanups } from '../helpers/setup.js'

// Corral on Redis Sentinel (createCache({ redis: { sentinels, name } })) while the primary changes:
// a SENTINEL FAILOVER and a SIGKILLed primary, under a steady load on two app instances (Express 5
// and Fastify 5) that share the Sentinel group; then invalidations made during a failover.
//
// Each test has its own group (two data servers, three sentinels), started side by side before the
// tests so that their start-up is paid once. Nothing sleeps for correctness: every wait polls
// against a deadline derived from Corral's settings (l2.timeout, lockTimeout, reconnect backoff,
// breaker cooldown) or the harness's (down-after, failover-timeout, settle). The only sleeps set
// the length of measurement windows (baseline, after) and the pace of the invalidations.

const EXPRESS: AdapterFactory = expressFactory('express5', express5, 5, 'route')
const FASTIFY: AdapterFactory = fastifyFactory('fastify5', fastify5)

/** Time the origin takes per call. */
const ORIGIN_MS = 2
/** `l2.timeout`: deadline of an L2 read (writes, invalidation steps and health checks get 4×). */
const L2_TIMEOUT = 50
/** `lockTimeout`: longest wait for another instance's origin call on the same key. */
const LOCK_TIMEOUT = 400
/** cache.ts MAX_WAITS: how many times one request may wait for another's fill before it goes to the origin. */
const MAX_WAITS = 2
/**
 * Slack for the event loop, GC and a busy 2-core machine (two apps, two load generators and the
 * test run in this one process; the suite must pass with a core taken by a busy loop).
 */
const SLACK_MS = 400
/**
 * The most a request may take while the primary changes. A lookup is an L2 read (≤ l2.timeout),
 * then, on a miss, the fleet lock (≤ l2.timeout); if another instance holds the lock, the request
 * waits for that instance's "stored" message, which the switch may lose: at most lockTimeout.
 * After each of at most MAX_WAITS such waits it looks again, and then a last read and the origin.
 * Nothing else waits: ioredis' offline queue is off, so while the client reconnects every call
 * answers at once. (ioredis' defaults would queue commands for the whole switch: seconds.)
 */
const LATENCY_BOUND = ORIGIN_MS + (2 * MAX_WAITS + 1) * L2_TIMEOUT + MAX_WAITS * LOCK_TIMEOUT + SLACK_MS
/** Corral's own client (redis-client.ts): reconnects (and re-asks the sentinels) at most 2 s apart. */
const CLIENT_BACKOFF_CAP_MS = 2_000
/** The breaker's default cooldown: an open circuit lets a probe through after this. */
const BREAKER_COOLDOWN_MS = 1_000
/** Slack for a loaded 2-core host on top of the bounds below (as in sentinel-harness.test.ts). */
const MARGIN_MS = 3_000
/**
 * After the sentinels agree on the new primary (failover() / killPrimary() resolved; +switch-master
 * has been published), how soon L2 must serve hits again: one reconnect of Corral's client (a
 * failoverDetector reconnects at once on +switch-master; after a kill it is retrying with its
 * backoff), a breaker cooldown if the switch opened the circuit, and the margin.
 */
const RESUME_BOUND_MS = CLIENT_BACKOFF_CAP_MS + BREAKER_COOLDOWN_MS + MARGIN_MS
/** How long health() may take to report both instances 'ok' once L2 works again (it polls). */
const HEALTHY_BOUND_MS = RESUME_BOUND_MS
/** Re-check L1 against L2 every second in the load tests, so L2 is read throughout the switch. */
const L1_TTL_LOAD: Duration = '1s'
/**
 * In the invalidation test L1 entries outlive the test: an instance may only drop its copies
 * because it was told (pub/sub) or because its message connection reconnected (it clears L1), never
 * because they aged out.
 */
const L1_TTL_LONG: Duration = '10m'

const BASELINE_MS = 1_500
/** The first requests fill the cache from cold: the baseline starts after them. */
const WARM_UP_MS = 300
const AFTER_MS = 1_000
const CONCURRENCY = 6
const THINK_MS = 2

/** Hot: a few paths every request loop keeps hitting. Cold: short-lived (max-age=1) entries refilled all the time. */
const HOT = 4
const COLD = 12
const PATHS: readonly string[] = Array.from({ length: COLD }, (_, i) => [
  `/hot/${i % HOT}`,
  `/cold/${i}`,
  `/hot/${(i + 1) % HOT}`,
  ...(i % 3 === 2 ? ['/uncached'] : []),
]).flat()
/** Requested on both instances with the same Host, so their fills race for the fleet lock. */
const SHARED_PATHS: readonly string[] = Array.from({ length: 6 }, (_, i) => `/cold/s${i}`)

// ---- the app -------------------------------------------------------------------------------

const NO_HEADERS: Readonly<Record<string, string>> = {}
const PROBE_HEADERS: Readonly<Record<string, string>> = { 'cache-control': 'no-store' }

function routes(name: string): RouteSpec[] {
  return [
    {
      method: 'GET',
      path: '/hot/:id',
      cache: { tags: (req: { params: { id: string } }) => [`hot:${req.params.id}`] },
      handler: async (r) => {
        await sleep(ORIGIN_MS)
        return { body: { json: { kind: 'hot', id: String(r.params.id), by: name, call: r.call } } }
      },
    },
    {
      method: 'GET',
      path: '/cold/:id',
      cache: {},
      handler: async (r) => {
        await sleep(ORIGIN_MS)
        return { headers: { 'cache-control': 'public, max-age=1' }, body: { json: { kind: 'cold', id: String(r.params.id), by: name, call: r.call } } }
      },
    },
    {
      method: 'GET',
      path: '/fresh/:id',
      cache: {},
      handler: (r) => ({ body: { json: { kind: 'fresh', id: String(r.params.id), by: name, call: r.call } } }),
    },
    {
      // Entries for the invalidation test. A request with `x-probe` gets a `no-store` answer: it
      // shows whether the cache (L1 or L2) still has the entry without storing a new one, so the
      // other instance can be probed afterwards.
      method: 'GET',
      path: '/items/:id',
      cache: { tags: (req: { params: { id: string } }) => [`item:${req.params.id}`] },
      handler: (r) => ({
        headers: r.headers['x-probe'] === undefined ? NO_HEADERS : PROBE_HEADERS,
        body: { json: { kind: 'item', id: String(r.params.id), by: name, call: r.call } },
      }),
    },
    {
      method: 'GET',
      path: '/uncached',
      handler: async (r) => {
        await sleep(ORIGIN_MS)
        return { headers: { 'cache-control': 'no-store' }, body: { json: { kind: 'uncached', by: name, call: r.call } } }
      },
    },
  ]
}

// ---- set-up and teardown -------------------------------------------------------------------

const cleanups: (() => Promise<void>)[] = []
const loads: { stop(): Promise<unknown> }[] = []
let groups: Record<'failover' | 'kill' | 'invalidation' | 'window', SentinelGroup> | undefined

beforeAll(async () => {
  // Independent groups, started side by side (each takes 2-3 s, mostly waiting for hellos).
  const started = await Promise.allSettled([
    startSentinelGroup({ name: 'corral-failover' }),
    startSentinelGroup({ name: 'corral-kill' }),
    startSentinelGroup({ name: 'corral-inval' }),
    startSentinelGroup({ name: 'corral-window' }),
  ])
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s) => s.status === 'rejected')
  if (failed !== undefined || ok.length !== started.length) {
    await Promise.all(ok.map((g) => g.stop()))
    throw failed?.reason ?? new Error('a sentinel group did not start')
  }
  const [failover, kill, invalidation, window] = ok as [SentinelGroup, SentinelGroup, SentinelGroup, SentinelGroup]
  groups = { failover, kill, invalidation, window }
}, 40_000)

afterEach(async () => {
  for (const l of loads.splice(0)) await l.stop()
  await runCleanups(cleanups)
})

afterAll(async () => {
  await runCleanups(cleanups)
  if (groups !== undefined) await Promise.all(Object.values(groups).map((g) => g.stop()))
  if (notes.length > 0) console.log(`Sentinel failover (latency bound per request ${LATENCY_BOUND} ms)\n${notes.join('\n')}`)
})

function group(name: keyof NonNullable<typeof groups>): SentinelGroup {
  if (groups === undefined) throw new Error('the sentinel groups did not start')
  return groups[name]
}

/** Instance `name` on namespace `ns` of the group, with the L2 deadlines this file is about. */
function start(name: string, factory: AdapterFactory, g: SentinelGroup, ns: string, l1Ttl: Duration): Promise<Instance> {
  const cache = { namespace: ns, redis: g.clientOptions(), lockTimeout: LOCK_TIMEOUT, l2: { timeout: L2_TIMEOUT, l1Ttl } }
  return instance(name, { cache, routes: routes(name), factory }, cleanups)
}

/** An Express 5 instance (A) and a Fastify 5 instance (B) on one namespace of the group, connected and subscribed. */
async function pair(g: SentinelGroup, l1Ttl: Duration): Promise<{ ns: string; a: Instance; b: Instance; admin: Redis }> {
  const ns = `sent-${randomBytes(6).toString('hex')}`
  const a = await start('A', EXPRESS, g, ns, l1Ttl)
  const b = await start('B', FASTIFY, g, ns, l1Ttl)
  // A client of the harness's own that follows the primary (for NUMSUB, SCAN, WAIT).
  const admin = g.client({ failoverDetector: true })
  await until(async () => {
    const health = await Promise.all([a, b].map((i) => i.cache.health()))
    if (!health.every((h) => h.status === 'ok')) return false
    const reply = (await admin.pubsub('NUMSUB', `${ns}:v1:bus`, `${ns}:v1:fill`)) as (string | number)[]
    return Number(reply[1]) === 2 && Number(reply[3]) === 2
  }, 10_000, 'both instances healthy and subscribed to the bus and fill channels', POLL)
  return { ns, a, b, admin }
}

// ---- helpers -------------------------------------------------------------------------------

/** Polls of the instances and the group: every 25 ms, so that they add little to the load measured. */
const POLL: UntilOptions = { every: 25 }

type L2Health = {
  ok: boolean
  breaker: string
  connection: string
  pendingInvalidations: number
  lastError: { message: string } | null
  roundTrip: { ok: boolean; ms: number; error?: string }
}

function l2Of(h: CacheHealth): L2Health {
  const store = h.store as { l2?: L2Health } | null
  if (store?.l2 === undefined) throw new Error(`health() has no l2 report: ${JSON.stringify(h)}`)
  return store.l2
}

interface HealthSample {
  readonly t: number
  readonly instance: string
  readonly status: string
  readonly connection: string
  readonly pending: number
}

/** Polls every instance's health() back to back until stopped; resolves with what it saw. */
function watchHealth(instances: readonly Instance[]): { stop(): Promise<HealthSample[]> } {
  const seen: HealthSample[] = []
  let stopped = false
  const loop = async (i: Instance): Promise<void> => {
    while (!stopped) {
      const h = await i.cache.health()
      const l2 = l2Of(h)
      seen.push({ t: performance.now(), instance: i.name, status: h.status, connection: l2.connection, pending: l2.pendingInvalidations })
      await sleep(50)
    }
  }
  const loops = instances.map(loop)
  const handle = {
    async stop() {
      stopped = true
      await Promise.all(loops)
      return seen.sort((x, y) => x.t - y.t)
    },
  }
  loads.push(handle)
  return handle
}

/** The window in which any instance's health was not 'ok', from `from` on. */
function degradedWindow(seen: readonly HealthSample[], from: number): { first: number; last: number } | undefined {
  const bad = seen.filter((s) => s.t >= from && s.status !== 'ok')
  if (bad.length === 0) return undefined
  return { first: (bad[0] as HealthSample).t, last: (bad[bad.length - 1] as HealthSample).t }
}

interface SharedSample extends Sample {
  readonly instance: string
}

/**
 * Request loops that alternate between the instances on the same paths with the shared Host, so
 * both instances' fills of one key race for the fleet lock (the load helper sends its own Host).
 */
function startSharedLoad(instances: readonly Instance[], paths: readonly string[], concurrency: number): { stop(): Promise<SharedSample[]> } {
  const samples: SharedSample[] = []
  const agents = instances.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }))
  let stopped = false
  let n = 0
  const one = (k: number, path: string): Promise<SharedSample> => {
    const target = new URL((instances[k] as Instance).app.url)
    const name = (instances[k] as Instance).name
    return new Promise((resolve) => {
      const start = performance.now()
      let settled = false
      const done = (s: { status: number; cache: string | undefined; error?: string }): void => {
        if (settled) return
        settled = true
        resolve({ path, instance: name, start, ms: performance.now() - start, ...s })
      }
      const req = http.get({ host: target.hostname, port: target.port, path, agent: agents[k], headers: { host: FLEET_HOST } }, (res) => {
        res.resume()
        res.on('end', () => {
          const v = res.headers['x-cache']
          done({ status: res.statusCode ?? 0, cache: Array.isArray(v) ? v.join(', ') : v })
        })
        res.on('error', (err) => done({ status: 0, cache: undefined, error: err.message }))
      })
      req.setTimeout(10_000, () => req.destroy(new Error('no response within 10000 ms')))
      req.on('error', (err) => done({ status: 0, cache: undefined, error: err.message }))
    })
  }
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const i = n++
      samples.push(await one(i % instances.length, paths[Math.floor(i / instances.length) % paths.length] as string))
      if (!stopped) await sleep(THINK_MS)
    }
  }
  const loops = Array.from({ length: concurrency }, loop)
  const handle = {
    async stop() {
      stopped = true
      await Promise.all(loops)
      for (const agent of agents) agent.destroy()
      return samples
    },
  }
  loads.push(handle)
  return handle
}

function startInstanceLoad(i: Instance): Load {
  const l = startLoad({ url: i.app.url, paths: PATHS, concurrency: CONCURRENCY, thinkMs: THINK_MS })
  loads.push(l)
  return l
}

async function stopLoad<T>(l: { stop(): Promise<T> }): Promise<T> {
  const at = loads.indexOf(l)
  if (at !== -1) loads.splice(at, 1)
  return l.stop()
}

/** A server of the group by port, and a client to it (closed by the server's stop()). */
function serverAt(g: SentinelGroup, port: number): RedisServer {
  const s = g.servers.find((x) => x.port === port)
  if (s === undefined) throw new Error(`no server of the group on port ${port}`)
  return s
}

/** Whether `server` holds an entry (not just an index member) for `path` in namespace `ns`. */
async function entryOn(client: Redis, ns: string, path: string): Promise<boolean> {
  const members = await client.smembers(`${ns}:v1:i:p:${path}`)
  for (const m of members) {
    const key = m.slice(0, m.indexOf(' '))
    if (key !== '' && (await client.exists(key)) === 1) return true
  }
  return false
}

/**
 * Fills a fresh key on A, then asks B for it, until B answers it from L2 (a HIT without calling
 * its origin) and the entry is on the new primary. Resolves with the time that took and how many
 * keys it used.
 */
async function l2Resumes(a: Instance, b: Instance, ns: string, newPrimary: Redis, within: number): Promise<{ ms: number; tries: number }> {
  let tries = 0
  const ms = await until(async () => {
    const path = `/fresh/${++tries}`
    const filled = await a.get(path)
    if (filled.status !== 200) throw new Error(`A answered ${filled.status} for ${path}`)
    const bCalls = b.calls('GET /fresh/:id')
    const res = await b.get(path)
    if (res.status !== 200) throw new Error(`B answered ${res.status} for ${path}`)
    if (xcache(res) !== 'HIT' || b.calls('GET /fresh/:id') !== bCalls) return false
    // B may have read it from the old primary: only the new one counts.
    return entryOn(newPrimary, ns, path)
  }, within, 'a fresh key filled on A to be a HIT on B, from the new primary', POLL)
  return { ms, tries }
}

/** Every request answered 2xx, with no connection error, and none slower than the bound. */
function expectServedWell(what: string, samples: readonly Sample[], marks: Readonly<Record<string, number>>, loopMaxMs: number): void {
  expect(samples.length, what).toBeGreaterThan(0)
  const failed = samples.filter((s) => s.error !== undefined || s.status < 200 || s.status > 299)
  expect(failed.slice(0, 5), `${what}: ${failed.length} of ${samples.length} requests failed`).toEqual([])
  const at = (t: number) => Object.entries(marks).map(([name, m]) => `${name}${t >= m ? '+' : '-'}${Math.round(Math.abs(t - m))}`).join(' ')
  const slow = samples.filter((s) => s.ms > LATENCY_BOUND).sort((x, y) => y.ms - x.ms)
  expect(
    slow.slice(0, 5).map((s) => ({ path: s.path, ms: Math.round(s.ms), cache: s.cache, at: at(s.start) })),
    `${what}: ${slow.length} of ${samples.length} requests took longer than ${LATENCY_BOUND} ms (event loop blocked up to ${Math.round(loopMaxMs)} ms)`,
  ).toEqual([])
  expect(samples.filter((s) => s.path === '/uncached' && s.cache === 'HIT'), `${what}: /uncached answered from the cache`).toEqual([])
}

const notes: string[] = []
const f1 = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(1))

// ---- 1 and 2: a change of primary under load ------------------------------------------------

interface SwitchRun {
  readonly fo: Failover
  /** performance.now() when the trigger was sent (SENTINEL FAILOVER or SIGKILL). */
  readonly tTrigger: number
  /** performance.now() when the sentinels agreed on the new primary. */
  readonly tSwitched: number
  /** performance.now() when both instances were healthy again and L2 served B a hit from the new primary. */
  readonly tRecovered: number
}

async function underLoad(kind: 'failover' | 'kill'): Promise<void> {
  const g = group(kind)
  const { ns, a, b } = await pair(g, L1_TTL_LOAD)
  const la = startInstanceLoad(a)
  const lb = startInstanceLoad(b)
  const shared = startSharedLoad([a, b], SHARED_PATHS, 2)
  const t0 = la.now()
  const health = watchHealth([a, b])
  await sleep(BASELINE_MS)

  const callsBefore = { a: a.calls(), b: b.calls() }
  const fo = kind === 'failover' ? await g.failover() : await g.killPrimary()
  const tSwitched = performance.now()
  const tTrigger = tSwitched - fo.ms
  const newPrimary = serverAt(g, fo.to).client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
  const resumed = await l2Resumes(a, b, ns, newPrimary, RESUME_BOUND_MS)
  const healthyAfter = await until(
    async () => (await Promise.all([a, b].map((i) => i.cache.health()))).every((h) => h.status === 'ok'),
    HEALTHY_BOUND_MS,
    'both instances healthy after the switch',
    POLL,
  )
  const tRecovered = performance.now()
  const run: SwitchRun = { fo, tTrigger, tSwitched, tRecovered }
  await sleep(AFTER_MS)

  const [samplesA, samplesB, sharedSamples, seen] = await Promise.all([stopLoad(la), stopLoad(lb), stopLoad(shared), health.stop()])
  const loopMaxMs = Math.max(la.loopDelayMaxMs(), lb.loopDelayMaxMs())
  const all: Sample[] = [...samplesA, ...samplesB, ...sharedSamples]
  const marks = { trigger: run.tTrigger, switched: run.tSwitched, recovered: run.tRecovered }
  const degraded = degradedWindow(seen, run.tTrigger)
  const windows: [string, Sample[]][] = [
    ['baseline', between(all, t0 + WARM_UP_MS, run.tTrigger)],
    ['switch', between(all, run.tTrigger, run.tRecovered)],
    ['after', between(all, run.tRecovered)],
  ]
  // Numbers first, so that a failing run still reports them.
  for (const [name, samples] of windows) notes.push(`${kind.padEnd(8)} ${name.padEnd(8)} ${formatSummary(summarize(samples))}`)
  const base = summarize(windows[0]?.[1] ?? [])
  const during = summarize(windows[1]?.[1] ?? [])
  notes.push(
    `${kind.padEnd(8)} sentinels agreed after ${fo.ms} ms; instances degraded ${
      degraded === undefined ? 'never' : `from trigger+${Math.round(degraded.first - run.tTrigger)} to trigger+${Math.round(degraded.last - run.tTrigger)} ms`
    }; L2 hit from the new primary ${Math.round(resumed.ms)} ms after the switch (${resumed.tries} fresh keys), both healthy ${Math.round(healthyAfter)} ms later; ` +
      `added during the switch: p99 ${f1(during.p99 - base.p99)} ms, max ${f1(during.max - base.max)} ms; event loop blocked up to ${Math.round(loopMaxMs)} ms; ` +
      `origin calls A ${a.calls()} B ${b.calls()} (${a.calls() - callsBefore.a} / ${b.calls() - callsBefore.b} from the failover call on)`,
  )

  // 0 non-2xx, 0 connection errors, and no request slower than the L2 deadlines allow: on each
  // instance's own load and on the shared paths.
  expectServedWell(`${kind} A`, samplesA, marks, loopMaxMs)
  expectServedWell(`${kind} B`, samplesB, marks, loopMaxMs)
  expectServedWell(`${kind} shared`, sharedSamples, marks, loopMaxMs)
  expect(windows.map(([name, s]) => [name, s.length > 0])).toEqual([
    ['baseline', true],
    ['switch', true],
    ['after', true],
  ])
  // Hot paths kept being answered from the cache through the switch, on both instances.
  for (const [name, samples] of [['A', samplesA], ['B', samplesB]] as const) {
    const hot = between(samples, run.tTrigger, run.tRecovered).filter((s) => s.path.startsWith('/hot/'))
    expect(hot.length, `${name}: hot requests during the switch`).toBeGreaterThan(0)
    expect(hot.filter((s) => s.cache !== 'HIT').length, `${name}: hot requests not answered from the cache during the switch`).toBeLessThan(
      hot.length / 10,
    )
  }
  // Origin calls: the uncached route once per request; the hot ones a handful of times in all
  // (each instance fills each once and again after each L1 clear it cannot answer from L2), not
  // once per request.
  for (const [i, samples] of [[a, samplesA], [b, samplesB]] as const) {
    expect(i.calls('GET /uncached')).toBe(samples.filter((s) => s.path === '/uncached').length)
    const hotRequests = samples.filter((s) => s.path.startsWith('/hot/')).length
    expect(i.calls('GET /hot/:id'), `${i.name}: hot origin calls of ${hotRequests} requests`).toBeLessThan(hotRequests / 20)
  }
  // The hits resumed within the bound (also enforced by the waits above), measured from the
  // sentinels' agreement, and the switch itself within what the harness allows.
  expect(resumed.ms).toBeLessThan(RESUME_BOUND_MS)
  const switchBound = kind === 'failover' ? g.failoverTimeoutMs + 5_000 : g.downAfterMs + 2 * g.failoverTimeoutMs + 5_000
  expect(fo.ms).toBeLessThan(switchBound)
  // The primary really changed (and l2Resumes found B's hit on the new one).
  expect(fo.from).not.toBe(fo.to)
}

describe('Redis Sentinel: a change of primary under load (Express 5 + Fastify 5 instances)', () => {
  it('SENTINEL FAILOVER: no failed request, latency bounded by the L2 deadlines, L2 hits from the new primary within seconds', async () => {
    await underLoad('failover')
  }, 45_000)

  it('primary SIGKILLed: no failed request, latency bounded by the L2 deadlines, L2 hits from the promoted replica within seconds', async () => {
    await underLoad('kill')
  }, 45_000)
})

// ---- 3: invalidations made during a failover ------------------------------------------------
//
// Both tests below FAIL with Corral as it is (a real bug, not a flaky test): an invalidation that
// runs while the sentinels have already promoted the replica (REPLICAOF NO ONE) but not yet
// announced it (+switch-master, up to ~1 s later: the INFO period during a failover) is applied to
// the old primary only. It resolves (XADD, sweep and PUBLISH all succeed there: it is still
// role:master, with no replica connected), and everything it did is discarded when the sentinels
// make the old primary a replica. The new primary still holds the entries and their index
// members, so once the instances reconnect to it (and clear L1 after the pub/sub gap) they serve
// the invalidated entries as HITs from L2 until the entries' own TTL. Invalidations that were
// rejected in the same failover are replayed correctly. See redis-invalidation.ts run()/drain():
// nothing checks that the writes reached a replica (e.g. WAIT) before resolving.

/** Tagged entries filled on both instances before the failover, each invalidated during it. */
const ITEMS = 60
/** Entries filled the same way and never invalidated: they must still be hits (the probe can see one). */
const CONTROLS = 6
/** Pace of the invalidations while the failover runs (they spread over ~ITEMS × this). */
const INVALIDATION_EVERY_MS = 40

interface Invalidation {
  readonly item: number
  readonly issued: number
  settled?: number
  outcome: 'pending' | 'resolved' | 'rejected'
  code?: string
  removed?: number
}

describe('Redis Sentinel: invalidations during a failover', () => {
  it('every entry invalidated during a SENTINEL FAILOVER is a MISS on both instances once the group settles; none stays pending', async () => {
    const g = group('invalidation')
    const { ns, a, b, admin } = await pair(g, L1_TTL_LONG)
    const items = Array.from({ length: ITEMS }, (_, i) => `/items/${i}`)
    const controls = Array.from({ length: CONTROLS }, (_, i) => `/items/c${i}`)

    // Fill on A, wait until Redis has it, then read on B (an L2 hit, now in B's L1) and on A again (L1).
    for (const path of [...items, ...controls]) expect(xcache(await a.get(path)), `A ${path}`).toBe('MISS')
    await until(async () => {
      for (const path of [...items, ...controls]) if (!(await entryOn(admin, ns, path))) return false
      return true
    }, 5_000, 'every entry written to Redis', POLL)
    for (const path of [...items, ...controls]) expect(xcache(await b.get(path)), `B ${path}`).toBe('HIT')
    for (const path of [...items, ...controls]) expect(xcache(await a.get(path)), `A ${path}`).toBe('HIT')
    expect(a.calls('GET /items/:id')).toBe(ITEMS + CONTROLS)
    expect(b.calls('GET /items/:id')).toBe(0)
    // The replica (the primary-to-be) has every entry: a write then WAIT on the same stream.
    await admin.set(`${ns}:test:marker`, '1')
    expect(await admin.wait(1, 5_000)).toBe(1)
    const replica = await g.replica()
    const onReplica = replica.client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
    for (const path of [...items, ...controls]) expect(await entryOn(onReplica, ns, path), `${path} on the replica`).toBe(true)

    const health = watchHealth([a, b])
    const records: Invalidation[] = []
    const promises: Promise<unknown>[] = []
    const invalidate = (item: number): void => {
      const r: Invalidation = { item, issued: performance.now(), outcome: 'pending' }
      records.push(r)
      promises.push(
        a.cache.invalidate({ tags: [`item:${item}`] }).then(
          (removed) => {
            r.settled = performance.now()
            r.outcome = 'resolved'
            r.removed = removed
          },
          (err: unknown) => {
            r.settled = performance.now()
            r.outcome = 'rejected'
            r.code = (err as { code?: string }).code ?? String(err)
          },
        ),
      )
    }

    // Invalidate one entry every INVALIDATION_EVERY_MS while the failover runs, and whatever is
    // left at once when the sentinels agree (before the group settles, still "during" it).
    let switched = false
    const failover = g.failover().finally(() => {
      switched = true
    })
    let next = 0
    while (!switched && next < ITEMS) {
      invalidate(next++)
      await sleep(INVALIDATION_EVERY_MS)
    }
    const fo = await failover
    const tSwitched = performance.now()
    const tTrigger = tSwitched - fo.ms
    const duringCount = next
    while (next < ITEMS) invalidate(next++)

    // The group settles (the old primary is made a replica of the new one), both instances are
    // healthy and have nothing left to replay.
    await g.settle()
    const tSettled = performance.now()
    const healthyAfter = await until(async () => {
      const hs = await Promise.all([a, b].map((i) => i.cache.health()))
      return hs.every((h) => h.status === 'ok' && l2Of(h).pendingInvalidations === 0)
    }, HEALTHY_BOUND_MS, 'both instances healthy with no pending invalidation', POLL)
    // No promise stays pending: every one has settled by now (each step has a deadline).
    await until(() => records.every((r) => r.outcome !== 'pending'), RESUME_BOUND_MS, 'every invalidation promise settled', POLL)
    await Promise.all(promises)
    const seen = await health.stop()

    // What the instances and Redis hold now, for the report and the failure message.
    const primary = await g.primary()
    const onPrimary = primary.client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
    const stillInRedis: number[] = []
    for (let i = 0; i < ITEMS; i++) if (await entryOn(onPrimary, ns, `/items/${i}`)) stillInRedis.push(i)

    // Probe B first, then A: a probe is answered no-store, so it leaves nothing behind for the other.
    const served: { item: number; instance: string; cache: string | undefined; age: unknown; rec: Invalidation | undefined }[] = []
    for (const i of [b, a]) {
      for (let item = 0; item < ITEMS; item++) {
        const before = i.calls('GET /items/:id')
        const res = await i.get(`/items/${item}`, { headers: { 'x-probe': '1' } })
        expect(res.status).toBe(200)
        const fromCache = i.calls('GET /items/:id') === before
        if (fromCache || xcache(res) !== 'MISS') {
          served.push({ item, instance: i.name, cache: xcache(res), age: res.headers.age, rec: records.find((r) => r.item === item) })
        }
      }
    }
    const controlsServed: string[] = []
    for (const i of [b, a]) {
      for (const path of controls) {
        const before = i.calls('GET /items/:id')
        const res = await i.get(path, { headers: { 'x-probe': '1' } })
        if (xcache(res) === 'HIT' && i.calls('GET /items/:id') === before) controlsServed.push(`${i.name} ${path}`)
      }
    }

    const resolved = records.filter((r) => r.outcome === 'resolved')
    const rejected = records.filter((r) => r.outcome === 'rejected')
    const lastRejection = Math.max(...rejected.map((r) => r.settled ?? 0), tTrigger)
    const replayedAt = seen.find((s) => s.instance === 'A' && s.t > lastRejection && s.pending === 0 && s.status === 'ok')?.t
    const rel = (t: number | undefined) => (t === undefined ? '-' : `${Math.round(t - tTrigger)}`)
    const slowest = Math.max(...records.map((r) => (r.settled ?? Number.NaN) - r.issued))
    notes.push(
      `invalidation: failover agreed after ${fo.ms} ms, settled ${Math.round(tSettled - tSwitched)} ms later, healthy and nothing pending ${Math.round(healthyAfter)} ms after that; ` +
        `${records.length} invalidations (${duringCount} before the sentinels agreed): ${resolved.length} resolved, ${rejected.length} rejected ` +
        `(${[...new Set(rejected.map((r) => r.code))].join(', ') || 'none'}); slowest promise ${f1(slowest)} ms; ` +
        `pending replayed at trigger+${rel(replayedAt)} ms (last rejection at trigger+${rel(rejected.length > 0 ? lastRejection : undefined)} ms); ` +
        `still in Redis after settle: ${stillInRedis.length}; served from the cache after settle: ${served.length} (${served.map((s) => `${s.instance}:${s.item}`).join(' ')})`,
    )
    const detail = served.slice(0, 10).map((s) => ({
      item: s.item,
      on: s.instance,
      xcache: s.cache,
      age: s.age,
      inRedis: stillInRedis.includes(s.item),
      invalidation: s.rec === undefined ? 'none' : `${s.rec.outcome}${s.rec.code ? ` ${s.rec.code}` : ''}, issued trigger+${rel(s.rec.issued)} settled trigger+${rel(s.rec.settled)} ms (sentinels agreed at trigger+${fo.ms})`,
    }))

    expect(records).toHaveLength(ITEMS)
    expect(records.filter((r) => r.outcome === 'pending')).toEqual([])
    for (const r of rejected) expect(['CORRAL_ERR_STORE', 'CORRAL_ERR_STORE_UNAVAILABLE']).toContain(r.code)
    // The heart of it: not one invalidated entry is answered from L1 or L2 on either instance.
    expect(detail, `${served.length} probes of invalidated entries were answered from the cache`).toEqual([])
    expect(stillInRedis).toEqual([])
    // The probe can see a hit: entries nobody invalidated are still served from the cache.
    expect(controlsServed).toHaveLength(2 * CONTROLS)
    expect(fo.from).not.toBe(fo.to)
  }, 50_000)

  // The failing case above, reduced to one entry and one invalidation made at the worst moment. A
  // failover promotes the replica (REPLICAOF NO ONE) first and announces it (+switch-master, which
  // is what makes ioredis' failoverDetector reconnect) only once it has seen the promotion in the
  // replica's INFO, polled every second: for up to a second the old primary still takes writes,
  // and everything written to it then is dropped when the sentinels make it a replica. An
  // invalidation run in that window must not resolve as done (or, if it does, must be run again
  // on the new primary); either way, once the instances are on the new primary with nothing
  // pending, the entry must be gone.
  it('an invalidation made after the replica was promoted but before +switch-master is not lost', async () => {
    const g = group('window')
    const { ns, a, b, admin } = await pair(g, L1_TTL_LONG)
    const path = '/items/w'
    expect(xcache(await a.get(path))).toBe('MISS')
    await until(() => entryOn(admin, ns, path), 5_000, 'the entry written to Redis', POLL)
    expect(xcache(await b.get(path))).toBe('HIT')
    await admin.set(`${ns}:test:marker`, '1')
    expect(await admin.wait(1, 5_000)).toBe(1)
    const oldPrimary = await g.primary()
    const promoted = await g.replica()
    const onPromoted = promoted.client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
    const onOld = oldPrimary.client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
    expect(await entryOn(onPromoted, ns, path)).toBe(true)

    let agreed = false
    const failover = g.failover().finally(() => {
      agreed = true
    })
    // The sentinels have sent REPLICAOF NO ONE: the replica is a primary, nobody has been told yet.
    await until(async () => /^role:master\r?$/m.test(await onPromoted.info('replication')), g.failoverTimeoutMs + MARGIN_MS, 'the replica to be promoted', POLL)
    const inWindow = !agreed
    const outcome = await a.cache.invalidate({ tags: ['item:w'] }).then(
      (removed) => `resolved (${removed} removed)`,
      (err: unknown) => `rejected ${(err as { code?: string }).code ?? String(err)}`,
    )
    const fo = await failover
    const newPrimary = serverAt(g, fo.to).client({ disableClientInfo: true, connectTimeout: 1_000, commandTimeout: 1_000 })
    // Both instances on the new primary (a fresh key crosses from A to B through it), healthy, nothing to replay.
    await l2Resumes(a, b, ns, newPrimary, RESUME_BOUND_MS)
    await until(async () => {
      const hs = await Promise.all([a, b].map((i) => i.cache.health()))
      return hs.every((h) => h.status === 'ok' && l2Of(h).pendingInvalidations === 0)
    }, HEALTHY_BOUND_MS, 'both instances healthy with no pending invalidation', POLL)

    const where = {
      invalidation: outcome,
      madeBeforeTheSentinelsAgreed: inWindow,
      entryOnOldPrimary: await entryOn(onOld, ns, path),
      entryOnNewPrimary: await entryOn(newPrimary, ns, path),
    }
    notes.push(`window: ${JSON.stringify(where)}`)
    const probes: Record<string, string | undefined> = {}
    for (const i of [b, a]) {
      const before = i.calls('GET /items/:id')
      const res = await i.get(path, { headers: { 'x-probe': '1' } })
      probes[i.name] = i.calls('GET /items/:id') === before ? `${xcache(res)} without an origin call` : xcache(res)
    }
    expect(inWindow, 'the invalidation was not made in the window (the test needs it there)').toBe(true)
    expect({ ...where, probes }).toEqual({ ...where, entryOnNewPrimary: false, probes: { B: 'MISS', A: 'MISS' } })
  }, 30_000)
})
