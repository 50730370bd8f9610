import { randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { makePrimaryKey, pathIndexKey, prefixIndexKey, tagIndexKey } from '@corral/core/store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FLEET_HOST, fileRedis, healthy, instance, xcache, type Instance } from '../helpers/fleet.js'
import { until, type RouteSpec } from '../helpers/scenario.js'
import { runCleanups } from '../helpers/setup.js'
import { assertBuilt, runCli, type CliRun } from './run-cli.js'

// Issue 12, the ops CLI: a real Express 5 app stores entries in a real redis-server, and the built
// `corral` binary, spawned as a child process, inspects, lists and purges them.

const redis = fileRedis()
const { cleanups } = redis
const SIGNING_KEY = 'cli-test-signing-key-0123456789'

const routes: RouteSpec[] = [
  {
    method: 'GET',
    path: '/products/:id',
    // Stale windows change nothing in the key: the route shares the app-wide key rules.
    cache: { staleWhileRevalidate: '1m' },
    handler: (r) => ({
      headers: { 'content-type': 'text/plain', 'cache-tag': `product:${String(r.params.id)} catalog` },
      body: `product ${String(r.params.id)}, origin call ${r.call}`,
    }),
  },
  {
    method: 'GET',
    path: '/greeting',
    handler: (r) => {
      const fr = String(r.headers['accept-language'] ?? '').startsWith('fr')
      return { headers: { 'content-type': 'text/plain', vary: 'Accept-Language', 'content-language': fr ? 'fr' : 'en' }, body: fr ? 'bonjour' : 'hello' }
    },
  },
  { method: 'GET', path: '/about', cache: { tags: ['pages'] }, handler: () => ({ body: 'about us' }) },
]

interface App {
  readonly ns: string
  readonly a: Instance
  /** Runs the CLI against this app's Redis and namespace, with its signing key unless `env` says otherwise. */
  cli(args: readonly string[], env?: Record<string, string>): Promise<CliRun>
}

/**
 * Starts an app with a namespace of its own. Its cleanups go to `owner`: the file's (run after
 * each test), or a describe block's own list, run after its last test.
 */
async function startApp(owner: (() => Promise<void>)[] = cleanups): Promise<App> {
  const ns = `cli-${randomBytes(4).toString('hex')}`
  const a = await instance('A', { cache: { redis: redis.server.url, namespace: ns, signingKeys: [SIGNING_KEY], l2: { timeout: 1000, l1Ttl: '5m' } }, routes }, owner)
  await healthy([a], 5000)
  // Listening on the bus: a purge reaches its L1 only from then on.
  await until(async () => (await listeners(ns)) === 1, 5000, 'the app subscribed to its invalidation bus')
  const env = { CORRAL_REDIS_URL: redis.server.url, CORRAL_NAMESPACE: ns, CORRAL_SIGNING_KEYS: SIGNING_KEY }
  return { ns, a, cli: (args, extra) => runCli(args, { ...env, ...extra }) }
}

async function listeners(ns: string): Promise<number> {
  const reply = (await redis.raw.call('PUBSUB', 'NUMSUB', `${ns}:v1:bus`)) as unknown[]
  return Number(reply[1])
}

/** The app's primary key for a path on the fleet's host. */
function keyOf(ns: string, path: string): string {
  return makePrimaryKey(ns, { method: 'GET', url: path, headers: { host: FLEET_HOST } }).key
}

/** Waits until Redis holds `n` live entries for `path` (the app writes to Redis after answering). */
async function stored(app: App, path: string, n = 1): Promise<void> {
  await until(
    async () => {
      const members = await redis.raw.smembers(pathIndexKey(app.ns, path))
      if (members.length < n) return false
      const alive = await Promise.all(members.map((m) => redis.raw.exists(m.slice(0, m.indexOf(' ')))))
      return alive.filter((x) => x === 1).length >= n
    },
    5000,
    `${n} entries of ${path} in Redis`,
  )
}

/** Fills `path` through the app and waits for its entry in Redis. */
async function fill(app: App, path: string, headers?: Record<string, string>): Promise<void> {
  const res = await app.a.get(path, headers ? { headers } : undefined)
  expect(xcache(res)).toBe('MISS')
  await stored(app, path)
}

/**
 * The app's next answer that is not a HIT from its L1. A HIT before it only means the bus message
 * was not read yet; the first other answer is what the purge left behind. Bounded far below the
 * app's l1Ttl (5 minutes), so only the bus can have reached its L1.
 */
async function nextNonHit(app: App, path: string): Promise<string | undefined> {
  let status: string | undefined
  await until(async () => {
    status = xcache(await app.a.get(path))
    return status !== 'HIT'
  }, 5000, `an answer to ${path} other than HIT`, { every: 10 })
  return status
}

beforeAll(() => assertBuilt())

/** Makes the CLI write `[drained]` to stderr when its event loop empties by itself (not when something ends it with process.exit). */
const DRAINED = { NODE_OPTIONS: "--import=data:text/javascript,process.once('beforeExit',()=>process.stderr.write('[drained]'))" }

describe('corral --help and bad arguments', () => {
  it('prints help for the CLI and for each command, exit 0', async () => {
    const top = await runCli(['--help'])
    expect(top.code).toBe(0)
    for (const cmd of ['stats', 'inspect', 'purge', 'keys']) expect(top.stdout).toContain(cmd)
    const inspect = await runCli(['inspect', '--help'])
    expect(inspect.code).toBe(0)
    expect(inspect.stdout).toContain('--headers')
    expect(inspect.stdout).toContain('Exit codes')
  })

  it.each<[string, string[], string]>([
    ['no command', [], 'missing command'],
    ['an unknown command', ['stat'], "unknown command 'stat'"],
    ['an unknown option', ['stats', '--bogus'], '--bogus'],
    ['an option of another command', ['keys', '--tag', 'x'], '--tag is not an option'],
    ['purge without a selector', ['purge'], '--tag, --key or --prefix'],
    ['a --limit that is not a number', ['keys', '--limit', 'abc'], '--limit'],
    ['a --timeout of 0', ['stats', '--timeout', '0'], '--timeout'],
    ['an option without its value', ['stats', '--namespace'], '--namespace'],
    ['a --redis that is not a redis URL', ['stats', '--redis', 'http://127.0.0.1:6379'], '--redis'],
    ['a bad namespace', ['stats', '--namespace', 'a b'], '--namespace'],
    ['inspect without a URL', ['inspect'], 'needs a URL'],
    ['inspect of a path without --host', ['inspect', '/products/1'], '--host'],
    ['a --prefix without its /', ['purge', '--prefix', 'products'], '--prefix'],
    ['a header line without a colon', ['inspect', 'http://a.test/', '-H', 'Accept-Language fr'], '--headers'],
  ])('%s: exit 2, naming it, before anything is sent to Redis', async (_, args, named) => {
    // A closed port: a command that got as far as connecting would exit 3.
    const run = await runCli(args, { CORRAL_REDIS_URL: `redis://127.0.0.1:${await closedPort()}` })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(named)
    expect(run.stdout).toBe('')
  })

  it('a signing key shorter than 16 bytes is a usage error naming CORRAL_SIGNING_KEYS', async () => {
    const run = await runCli(['stats'], { CORRAL_SIGNING_KEYS: 'short' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('CORRAL_SIGNING_KEYS')
  })
})

describe('Redis unreachable', () => {
  it('a closed port: exit 3 at once', async () => {
    const port = await closedPort()
    const run = await runCli(['stats', '--redis', `redis://127.0.0.1:${port}`, '--timeout', '500'])
    expect(run.code).toBe(3)
    expect(run.stderr).toContain('cannot reach Redis')
    expect(run.ms).toBeLessThan(5000)
  })

  it('a server that accepts and never answers: exit 3 within the timeout', async () => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const sockets = new Set<net.Socket>()
    silent.on('connection', (s) => sockets.add(s))
    try {
      const port = (silent.address() as net.AddressInfo).port
      const run = await runCli(['keys', '--redis', `redis://127.0.0.1:${port}`, '--timeout', '500', '--json'])
      expect(run.code).toBe(3)
      expect(run.stderr).toContain('cannot reach Redis')
      expect(run.json().error.exitCode).toBe(3)
      // 500 ms of deadline plus Node's start-up, far from a hang.
      expect(run.ms).toBeLessThan(4000)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => silent.close(resolve))
    }
  })

  it('exit 3 comes when the error does: nothing left open holds the process until its 1 s safety exit', async () => {
    const port = await closedPort()
    const silent = await silentRedis()
    try {
      for (const [args, url] of [
        [['stats'], `redis://127.0.0.1:${port}`],
        [['purge', '--tag', 'x'], `redis://127.0.0.1:${port}`],
        [['inspect', 'http://a.test/'], `redis://127.0.0.1:${port}`],
        [['keys'], `redis://127.0.0.1:${silent.port}`],
      ] as const) {
        const run = await runCli([...args, '--redis', url, '--timeout', '500'], DRAINED)
        expect(run.code).toBe(3)
        // The event loop emptied by itself: ioredis's socket timer (2 s) used to keep it busy
        // until bin.ts's safety timer ended the process, a second late.
        expect(run.stderr, args.join(' ')).toContain('[drained]')
      }
    } finally {
      await silent.close()
    }
  })

  it('a Redis that answers the handshake, then nothing: exit 3 within --timeout, for every command', async () => {
    // Node's start-up on this machine now.
    const baseline = Math.min((await runCli(['--help'])).ms, (await runCli(['--help'])).ms)
    const hung = await silentRedis({ handshake: true })
    try {
      const url = `redis://127.0.0.1:${hung.port}`
      for (const args of [['keys'], ['stats'], ['inspect', 'http://a.test/p'], ['purge', '--tag', 'x'], ['purge', '--dry-run', '--prefix', '/p']]) {
        const run = await runCli([...args, '--redis', url, '--timeout', '1500', '--json'], DRAINED)
        expect(run.stderr, args.join(' ')).toContain('[drained]')
        // inspect used to take a timed-out read for a value of another type: REJECTED, exit 0.
        expect(run.code, args.join(' ')).toBe(3)
        expect(run.stderr).toMatch(/Redis failed while .*timed out/)
        expect(run.json().error.exitCode).toBe(3)
        if (args[0] === 'purge' && args[1] !== '--dry-run') expect(run.stderr).toContain('nothing was purged')
        // One deadline, not a second one for a QUIT nobody answers.
        expect(run.ms - baseline, args.join(' ')).toBeLessThan(1500 + 1000)
      }
      expect(hung.seen()).toContain('hello')
    } finally {
      await hung.close()
    }
  })
})

describe('inspect', () => {
  let app: App
  const owned: (() => Promise<void>)[] = []
  beforeAll(async () => {
    app = await startApp(owned)
  })
  afterAll(() => runCleanups(owned))

  it('shows the stored entry: status, tags, sizes, TTL, freshness, verified; exit 0', async () => {
    const res = await app.a.get('/products/1')
    expect(xcache(res)).toBe('MISS')
    await stored(app, '/products/1')

    const text = await app.cli(['inspect', `http://${FLEET_HOST}/products/1`])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(keyOf(app.ns, '/products/1'))
    expect(text.stdout).toContain('status 200')
    expect(text.stdout).toContain('product:1, catalog')
    expect(text.stdout).toMatch(/verified \(HMAC/)
    expect(text.stdout).toMatch(/ttl\s+\d+m\d\ds in Redis/)

    const run = await app.cli(['inspect', `http://${FLEET_HOST}/products/1`, '--json'])
    expect(run.code).toBe(0)
    const doc = run.json()
    expect(doc.found).toBe(true)
    expect(doc.key).toBe(keyOf(app.ns, '/products/1'))
    const e = doc.entry
    expect(e).toMatchObject({ kind: 'response', status: 200, integrity: 'verified', signed: true, tags: ['product:1', 'catalog'], url: '/products/1' })
    expect(e.bodyBytes).toBe(res.body.length)
    expect(e.headers['content-type']).toMatch(/^text\/plain/)
    expect(e.bytes).toBeGreaterThan(e.bodyBytes)
    // Fresh for the app's ttl (5m), kept for its stale window (1m) on top.
    expect(e.ttlMs).toBeGreaterThan(5 * 60_000)
    expect(e.ttlMs).toBeLessThanOrEqual(6 * 60_000)
    expect(e.freshness).toMatchObject({ state: 'fresh', staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 })
    expect(e.ageSeconds).toBeGreaterThanOrEqual(0)

    // A path with --host is the same request.
    const byPath = await app.cli(['inspect', '/products/1', '--host', FLEET_HOST, '--json'])
    expect(byPath.json().key).toBe(doc.key)
  })

  it('a URL with nothing stored: exit 1, and --json says found: false', async () => {
    const run = await app.cli(['inspect', `http://${FLEET_HOST}/products/404`])
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('nothing stored')
    const json = await app.cli(['inspect', `http://${FLEET_HOST}/products/404`, '--json'])
    expect(json.code).toBe(1)
    expect(json.json()).toMatchObject({ found: false, key: keyOf(app.ns, '/products/404') })
  })

  it('another host of a stored path: exit 1, pointing at the entry the path index lists', async () => {
    await fill(app, '/products/7')
    const run = await app.cli(['inspect', 'http://elsewhere.test/products/7', '--json'])
    expect(run.code).toBe(1)
    expect(run.json().others).toEqual([{ key: keyOf(app.ns, '/products/7'), url: '/products/7' }])
  })

  it('a Vary marker lists its variants; --headers selects one', async () => {
    for (const lang of ['en', 'fr']) expect(xcache(await app.a.get('/greeting', { headers: { 'accept-language': lang } }))).toBe('MISS')
    await stored(app, '/greeting', 3)

    const run = await app.cli(['inspect', `http://${FLEET_HOST}/greeting`, '--headers', 'Accept-Language: fr', '--json'])
    expect(run.code).toBe(0)
    const doc = run.json()
    expect(doc.entry).toMatchObject({ kind: 'vary', varyOn: ['accept-language'], integrity: 'verified' })
    expect(doc.variants).toHaveLength(2)
    const selected = doc.variants.filter((v: { selected: boolean }) => v.selected)
    expect(selected).toHaveLength(1)
    expect(selected[0]).toMatchObject({ kind: 'response', status: 200, bodyBytes: 'bonjour'.length })
    expect(selected[0].headers['content-language']).toBe('fr')

    const text = await app.cli(['inspect', `http://${FLEET_HOST}/greeting`, '-H', 'Accept-Language: EN'])
    expect(text.stdout).toContain('2 variants')
    expect(text.stdout).toMatch(/variant \d \(selected by the request headers given\)\nkey\s+\S+\nintegrity\s+verified[\s\S]*content-language\s+en/)
  })

  it('a tampered entry is reported REJECTED, never as valid', async () => {
    await fill(app, '/products/2')
    const key = keyOf(app.ns, '/products/2')
    const len = await redis.raw.strlen(key)
    // The last body byte: the envelope still parses, only its MAC gives it away.
    await redis.raw.setrange(key, len - 1, '!')

    const run = await app.cli(['inspect', `http://${FLEET_HOST}/products/2`, '--json'])
    expect(run.code).toBe(0)
    const e = run.json().entry
    expect(e).toMatchObject({ integrity: 'rejected', rejected: 'signature', key })
    expect(e.status).toBeUndefined()
    expect(e.headers).toBeUndefined()
    const text = await app.cli(['inspect', `http://${FLEET_HOST}/products/2`])
    expect(text.stdout).toContain('REJECTED')
    expect(text.stdout).not.toContain('status 200')

    // Without the keys, nothing is called verified.
    const unkeyed = await app.cli(['inspect', `http://${FLEET_HOST}/products/2`, '--json'], { CORRAL_SIGNING_KEYS: '' })
    expect(unkeyed.json().entry.integrity).toBe('unverified')
    // Another instance of the app, whose L1 has no copy, agrees: it refuses the value and refills.
    const b = await instance('B', { cache: { redis: redis.server.url, namespace: app.ns, signingKeys: [SIGNING_KEY], l2: { timeout: 1000 } }, routes }, cleanups)
    await healthy([b], 5000)
    expect(xcache(await b.get('/products/2'))).toBe('MISS')
    expect(b.cache.stats().rejected).toBe(1)
  })

  it('a value planted without a signature is rejected as unsigned', async () => {
    await fill(app, '/products/3')
    const key = keyOf(app.ns, '/products/3')
    const value = (await redis.raw.getBuffer(key)) as Buffer
    // The same envelope with its MAC cut out and the signed flag cleared.
    const unsigned = Buffer.concat([value.subarray(0, 5), Buffer.from([0]), value.subarray(38)])
    await redis.raw.set(key, unsigned, 'PX', 60_000)
    const run = await app.cli(['inspect', `http://${FLEET_HOST}/products/3`, '--json'])
    expect(run.json().entry).toMatchObject({ integrity: 'rejected', rejected: 'unsigned', signed: false })
  })
})

describe('keys', () => {
  let app: App
  const owned: (() => Promise<void>)[] = []
  afterAll(() => runCleanups(owned))
  beforeAll(async () => {
    app = await startApp(owned)
    await fill(app, '/products/1')
    await fill(app, '/products/2')
    await fill(app, '/about')
  })

  it('--prefix lists the entries under it with URL, TTL, size and tags', async () => {
    const run = await app.cli(['keys', '--prefix', '/products/'])
    expect(run.code).toBe(0)
    const lines = run.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^URL\s+KIND\s+TTL\s+SIZE\s+TAGS\s+KEY$/)
    expect(lines[1]).toMatch(new RegExp(`^/products/1\\s+200\\s+\\d+m\\d\\ds\\s+[\\d.]+ (B|KiB)\\s+product:1,catalog\\s+${keyOf(app.ns, '/products/1')}$`))
    expect(lines[2]).toMatch(/^\/products\/2\s+200/)
    expect(run.stdout).not.toContain('/about')
    expect(lines.at(-1)).toBe('2 listed (index sets of the prefixes)')

    const json = (await app.cli(['keys', '--prefix', '/products/', '--json'])).json()
    expect(json.complete).toBe(true)
    expect(json.keys.map((k: { url: string }) => k.url)).toEqual(['/products/1', '/products/2'])
    for (const k of json.keys) {
      expect(k.ttlMs).toBeGreaterThan(0)
      expect(k.bytes).toBeGreaterThan(0)
      expect(k.kind).toBe('response')
    }
  })

  it('without --prefix, a SCAN of the namespace; --limit cuts it and says so', async () => {
    const all = (await app.cli(['keys', '--json'])).json()
    expect(all.keys.map((k: { url: string }) => k.url)).toEqual(['/about', '/products/1', '/products/2'])
    expect(all.keys[0].tags).toEqual(['pages'])
    const cut = await app.cli(['keys', '--limit', '1'])
    expect(cut.code).toBe(0)
    expect(cut.stdout).toContain('PARTIAL')
    expect((await app.cli(['keys', '--limit', '1', '--json'])).json()).toMatchObject({ complete: false })
  })
})

describe('URLs as a browser shows them, and long ones', () => {
  let app: App
  const owned: (() => Promise<void>)[] = []
  const long = `/about?q=${'x'.repeat(14 * 1024)}`
  beforeAll(async () => {
    app = await startApp(owned)
    // Clients send /products/café?q=✓ encoded (an HTTP request line is ASCII).
    expect(xcache(await app.a.get('/products/caf%C3%A9?q=%E2%9C%93'))).toBe('MISS')
    await stored(app, '/products/caf%C3%A9')
    expect(xcache(await app.a.get(long))).toBe('MISS')
    await stored(app, '/about')
  })
  afterAll(() => runCleanups(owned))

  it('inspect of /café finds what the app stored for /caf%C3%A9 (encoded as new URL() does)', async () => {
    const key = makePrimaryKey(app.ns, { method: 'GET', url: '/products/caf%C3%A9?q=%E2%9C%93', headers: { host: FLEET_HOST } }).key
    for (const url of [`http://${FLEET_HOST}/products/café?q=✓`, `http://${FLEET_HOST}/products/caf%C3%A9?q=%E2%9C%93`]) {
      const run = await app.cli(['inspect', url, '--json'])
      expect(run.code, url).toBe(0)
      expect(run.json()).toMatchObject({ found: true, key, path: '/products/caf%C3%A9', canonicalUrl: '/products/caf%C3%A9?q=%E2%9C%93' })
    }
    const byPath = await app.cli(['inspect', '/products/café?q=✓', '--host', FLEET_HOST])
    expect(byPath.code).toBe(0)
    // keys --prefix takes the path as shown too.
    const listed = (await app.cli(['keys', '--prefix', '/products/caf', '--json'])).json()
    expect(listed.keys.map((k: { url: string }) => k.url)).toEqual(['/products/caf%C3%A9?q=%E2%9C%93'])
    expect((await app.cli(['keys', '--prefix', '/products/café', '--json'])).json().keys).toHaveLength(1)
    // And so do purge --key and --prefix.
    for (const args of [['--key', `http://${FLEET_HOST}/products/café`], ['--key', '/products/café?q=✓'], ['--prefix', '/products/café']]) {
      const dry = (await app.cli(['purge', '--dry-run', ...args, '--json'])).json()
      expect(dry.matched, args.join(' ')).toBe(1)
      expect(dry.entries[0].key).toBe(key)
    }
  })

  it('a 14 KB URL is cut in the table, with an ellipsis; --json keeps it whole', async () => {
    const run = await app.cli(['keys'])
    expect(run.code).toBe(0)
    const lines = run.stdout.trim().split('\n')
    // The long URL no longer pads every row to its length.
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(300)
    const row = lines.find((l) => l.startsWith('/about?q=xxx')) ?? ''
    expect(row).toMatch(/^\/about\?q=x+… +200 /)
    expect(row).toContain(keyOf(app.ns, long))
    expect(lines.find((l) => l.startsWith('/products/caf'))).toMatch(/^\/products\/caf%C3%A9\?q=%E2%9C%93 +200 /)
    const json = (await app.cli(['keys', '--json'])).json()
    expect(json.keys.map((k: { url: string }) => k.url)).toContain(long)
    // purge's table too.
    const dry = await app.cli(['purge', '--dry-run', '--key', '/about'])
    expect(dry.stdout).toMatch(/^\/about\?q=x+… +\d+m\d\ds +\S+$/m)
    expect(Math.max(...dry.stdout.split('\n').map((l) => l.length))).toBeLessThan(300)
  })
})

describe('stats', () => {
  it('counts entries, markers, tags and listeners; --limit makes it partial', async () => {
    const app = await startApp()
    await fill(app, '/products/1')
    await fill(app, '/about')
    for (const lang of ['en', 'fr']) await app.a.get('/greeting', { headers: { 'accept-language': lang } })
    await stored(app, '/greeting', 3)

    const run = await app.cli(['stats', '--json'])
    expect(run.code).toBe(0)
    const s = run.json()
    expect(s).toMatchObject({
      namespace: app.ns,
      scan: { complete: true },
      entries: { responses: 4, varyMarkers: 1, unreadable: 0 },
      bytes: { measure: 'STRLEN' },
      tagsIndexed: 3,
      listeners: { channel: `${app.ns}:v1:bus`, count: 1 },
      memory: { safe: true },
    })
    expect(s.bytes.total).toBeGreaterThan(0)
    expect(s.memory.usedBytes).toBeGreaterThan(0)

    const text = await app.cli(['stats'])
    expect(text.stdout).toMatch(/entries\s+4 responses, 1 Vary marker/)
    expect(text.stdout).toMatch(/listeners\s+1 instance on /)
    const partial = await app.cli(['stats', '--limit', '2'])
    expect(partial.stdout).toContain('PARTIAL')
    expect((await app.cli(['stats', '--limit', '2', '--json'])).json().scan).toEqual({ visited: 2, limit: 2, complete: false })
  })
})

describe('purge', () => {
  let app: App
  const owned: (() => Promise<void>)[] = []
  beforeAll(async () => {
    app = await startApp(owned)
  })
  afterAll(() => runCleanups(owned))

  it('--tag removes the entries in Redis and, over the bus, from the running app: its next request is a MISS', async () => {
    await fill(app, '/products/1')
    await fill(app, '/products/2')
    expect(xcache(await app.a.get('/products/1'))).toBe('HIT')
    const calls = app.a.calls('GET /products/:id')

    const run = await app.cli(['purge', '--tag', 'product:1', '--json'])
    expect(run.code).toBe(0)
    const doc = run.json()
    expect(doc).toMatchObject({ removed: 1, soft: false, dryRun: false, listeners: { count: 1 } })
    expect(doc.entries).toEqual([{ key: keyOf(app.ns, '/products/1'), url: '/products/1', ttlMs: -2, outcome: 'removed' }])
    expect(await redis.raw.exists(keyOf(app.ns, '/products/1'))).toBe(0)

    expect(await nextNonHit(app, '/products/1')).toBe('MISS')
    expect(app.a.calls('GET /products/:id')).toBe(calls + 1)
    // The other product was not selected.
    expect(xcache(await app.a.get('/products/2'))).toBe('HIT')
    expect(app.a.calls('GET /products/:id')).toBe(calls + 1)
  })

  it('--soft leaves the entry stale: the next request is answered STALE while it refreshes', async () => {
    await fill(app, '/products/5')
    const key = keyOf(app.ns, '/products/5')
    const calls = app.a.calls('GET /products/:id')

    const run = await app.cli(['purge', '--soft', '--tag', 'product:5'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/soft purge of tag product:5: 1 entry marked stale/)
    expect(run.stdout).toMatch(/\/products\/5\s+softened \(ttl (\d+m)?\d+s\)/)
    // Still in Redis, for its stale window only.
    const pttl = await redis.raw.pttl(key)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(60_000)

    expect(await nextNonHit(app, '/products/5')).toBe('STALE')
    // The stale answer started one background refresh, which stores a fresh entry.
    await until(() => app.a.calls('GET /products/:id') === calls + 1, 5000, 'the background refresh')
    await until(async () => xcache(await app.a.get('/products/5')) === 'HIT', 5000, 'the refreshed entry served')
    expect(app.a.calls('GET /products/:id')).toBe(calls + 1)
  })

  it('--key and --prefix, repeatable; --dry-run lists and purges nothing', async () => {
    await fill(app, '/about')
    for (const lang of ['en', 'fr']) await app.a.get('/greeting', { headers: { 'accept-language': lang } })
    await stored(app, '/greeting', 3)

    const dry = await app.cli(['purge', '--prefix', '/greet', '--key', `http://${FLEET_HOST}/about`, '--dry-run', '--json'])
    expect(dry.code).toBe(0)
    expect(dry.json().entries.map((e: { url: string }) => e.url)).toEqual(['/about', '/greeting', '/greeting', '/greeting'])
    expect(dry.json().removed).toBeUndefined()
    expect(await redis.raw.exists(keyOf(app.ns, '/about'))).toBe(1)

    const run = await app.cli(['purge', '--prefix', '/greet', '--key', '/about', '--json'])
    expect(run.code).toBe(0)
    const doc = run.json()
    expect(doc.removed).toBe(4)
    expect(doc.entries.every((e: { outcome: string }) => e.outcome === 'removed')).toBe(true)
    expect(await nextNonHit(app, '/about')).toBe('MISS')
  })
})

describe('purge: what it reaches, and when it fails', () => {
  it('an index key that is not a set widens the purge to the whole namespace: the dry run and the purge say so, and name the key', async () => {
    const app = await startApp()
    for (const path of ['/products/1', '/products/2', '/about']) await fill(app, path)
    expect(xcache(await app.a.get('/about'))).toBe('HIT')
    // Something Corral did not write, at the index key of the tag purged.
    const foreign = tagIndexKey(app.ns, 'product:1')
    await redis.raw.del(foreign)
    await redis.raw.rpush(foreign, 'x')
    const widened = { scope: 'namespace', indexes: [{ key: foreign, type: 'list' }], foundBy: 'preview' }

    const dry = await app.cli(['purge', '--dry-run', '--tag', 'product:1', '--json'])
    expect(dry.code).toBe(0)
    // Not "0 entries match": every entry of the namespace goes.
    expect(dry.json()).toMatchObject({ dryRun: true, widened, matched: 3, complete: true })
    expect(dry.json().entries.map((e: { url: string }) => e.url)).toEqual(['/about', '/products/1', '/products/2'])
    const text = await app.cli(['purge', '--dry-run', '--soft', '--tag', 'product:1'])
    expect(text.stdout).toMatch(/^dry run: the purge of tag product:1 WIDENS to the whole namespace \S+: 3 entries would be removed, and every instance's L1 cleared; nothing was purged$/m)
    expect(text.stdout).toContain(`why: ${foreign} is a list, not a set`)
    expect(text.stdout).toContain('--soft does not apply to it')
    expect(await redis.raw.exists(keyOf(app.ns, '/about'))).toBe(1)

    const run = await app.cli(['purge', '--tag', 'product:1', '--json'])
    expect(run.code).toBe(0)
    expect(run.json()).toMatchObject({ dryRun: false, widened, removed: 3, listeners: { count: 1 } })
    expect(run.json().entries.map((e: { outcome: string }) => e.outcome)).toEqual(['removed', 'removed', 'removed'])
    expect(await redis.raw.exists(keyOf(app.ns, '/about'))).toBe(0)
    // /about was not selected, yet the app's L1 copy went too: the bus carried the whole namespace.
    expect(await nextNonHit(app, '/about')).toBe('MISS')

    // The text of the purge itself.
    await stored(app, '/about')
    await redis.raw.del(foreign)
    await redis.raw.rpush(foreign, 'x')
    const purged = await app.cli(['purge', '--tag', 'product:1'])
    expect(purged.stdout).toMatch(/^purged tag product:1: WIDENED to the whole namespace \S+, 1 entry removed$/m)
    expect(purged.stdout).toContain(`why: ${foreign} is a list, not a set`)
    expect(purged.stdout).toMatch(/told 1 instance listening on \S+ to clear every entry of the namespace from their L1/)
  })

  it('the dry run counts what the purge removes: members of expired entries are not counted, --limit cuts only the list, --scan-limit makes it PARTIAL', async () => {
    const app = await startApp()
    for (const id of [1, 2, 3]) await fill(app, `/products/${id}`)
    // Index sets outlive their entries: 200 members whose entries expired.
    const dead = Array.from({ length: 200 }, (_, i) => `${app.ns}:v1:${String(i).padStart(43, '0')} /products/gone${i}`)
    await redis.raw.sadd(prefixIndexKey(app.ns, '/products/'), ...dead)

    const dry = await app.cli(['purge', '--dry-run', '--prefix', '/products/', '--limit', '2', '--json'])
    expect(dry.code).toBe(0)
    const doc = dry.json()
    expect(doc).toMatchObject({ matched: 3, complete: true, widened: null, scanned: { unit: 'index members', limit: 100_000 } })
    expect(doc.scanned.visited).toBeGreaterThanOrEqual(203)
    expect(doc.entries).toHaveLength(2)
    const text = await app.cli(['purge', '--dry-run', '--prefix', '/products/', '--limit', '2'])
    expect(text.stdout).toMatch(/^dry run: 3 entries match prefix \/products\/; nothing was purged$/m)
    expect(text.stdout).toContain('(2 of 3 entries listed: --limit 2)')
    expect(text.stdout).not.toContain('PARTIAL')

    const cut = await app.cli(['purge', '--dry-run', '--prefix', '/products/', '--scan-limit', '50', '--json'])
    expect(cut.json()).toMatchObject({ complete: false, scanned: { visited: 50, limit: 50 } })
    expect(cut.json().matched).toBeLessThanOrEqual(3)
    const cutText = await app.cli(['purge', '--dry-run', '--prefix', '/products/', '--scan-limit', '50'])
    expect(cutText.stdout).toMatch(/^dry run: at least \d entr(y|ies) match/m)
    expect(cutText.stdout).toContain('PARTIAL: the count stopped after 50 index members (--scan-limit 50)')

    const run = await app.cli(['purge', '--prefix', '/products/', '--json'])
    expect(run.json()).toMatchObject({ removed: 3, matched: 3 })
  })

  it('a purge that fails says it may have been applied in part and that nothing retries it; exit 3', async () => {
    const ns = `cli-${randomBytes(4).toString('hex')}`
    // The invalidation log is the first thing a purge writes: a user Redis does not let append to
    // it fails the purge once it has begun (a value of another type there no longer does: the
    // store replaces it).
    const user = `cli${randomBytes(4).toString('hex')}`
    await redis.raw.call('ACL', 'SETUSER', user, 'on', '>secret', '~*', '&*', '+@all', '-xadd')
    let run: Awaited<ReturnType<typeof runCli>>
    try {
      const url = redis.server.url.replace('redis://', `redis://${user}:secret@`)
      run = await runCli(['purge', '--tag', 'x', '--json'], { CORRAL_REDIS_URL: url, CORRAL_NAMESPACE: ns })
    } finally {
      await redis.raw.call('ACL', 'DELUSER', user)
    }
    expect(run.code).toBe(3)
    expect(run.stderr).toContain('the purge failed and may have been applied in part')
    expect(run.stderr).toContain('Nothing retries it: run it again')
    expect(run.stderr).toContain('NOPERM')
    // A running app's store retries a failed invalidation; this command has exited.
    expect(run.stderr).not.toContain('runs again')
    expect(run.json().error.message).toContain('may have been applied in part')
  })
})

/**
 * A TCP server on a port of its own that accepts connections and never answers, or, with
 * `handshake`, answers what ioredis sends to connect (HELLO refused, CLIENT SETINFO, INFO with
 * `loading:0`) and then nothing: a Redis that hangs once connected.
 */
async function silentRedis(o: { handshake?: boolean } = {}): Promise<{ port: number; seen(): string[]; close(): Promise<void> }> {
  const names: string[] = []
  const sockets = new Set<net.Socket>()
  const info = '# Server\r\nredis_version:7.2.0\r\nloading:0\r\n'
  const server = net.createServer((socket) => {
    sockets.add(socket)
    let buf = ''
    socket.on('data', (chunk: Buffer) => {
      if (o.handshake !== true) return
      buf += chunk.toString('latin1')
      // Commands arrive as RESP arrays of bulk strings: *N, then $len and the bytes of each.
      for (;;) {
        const parsed = /^\*(\d+)\r\n/.exec(buf)
        if (parsed === null) return
        let at = parsed[0].length
        const args: string[] = []
        for (let i = 0; i < Number(parsed[1]); i++) {
          const len = /^\$(\d+)\r\n/.exec(buf.slice(at))
          if (len === null || buf.length < at + len[0].length + Number(len[1]) + 2) return
          args.push(buf.slice(at + len[0].length, at + len[0].length + Number(len[1])))
          at += len[0].length + Number(len[1]) + 2
        }
        buf = buf.slice(at)
        const name = (args[0] ?? '').toLowerCase()
        names.push(name)
        if (name === 'hello') socket.write("-ERR unknown command 'hello'\r\n")
        else if (name === 'client') socket.write('+OK\r\n')
        else if (name === 'info') socket.write(`$${info.length}\r\n${info}\r\n`)
      }
    })
    socket.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    seen: () => names,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** A port nothing listens on: one the kernel handed out, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}
