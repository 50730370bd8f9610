// Two app processes sharing one Redis, the way a service runs behind a load balancer:
//
//   npx -y pnpm@10.34.8 build && node examples/multi-instance.mjs
//   REDIS_URL=redis://10.0.0.5:6379 node examples/multi-instance.mjs
//
// This process forks itself twice (`app 1`, `app 2`): each child is an Express app with its own
// Corral cache (in-memory L1) on the same Redis (shared L2) and namespace. The products "database"
// lives here in the parent and the apps query it over IPC, so both see the same data. The parent
// then drives a short scenario over HTTP on 127.0.0.1 and prints what each app did.
import { fork } from 'node:child_process'
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createCache } from '@corral/core'
import { corral, invalidate } from '@corral/express'
import express from 'express'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// A load balancer forwards the client's Host, and the Host is part of the cache key: send the same
// one to both apps (they listen on different ports).
const HOST = 'shop.example'
const ORIGIN_MS = 50
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Request/response over a process's IPC channel, both ways: `call(op, ...args)` asks the peer;
 * `handle(op, args)` answers the peer's questions (an error it throws is passed back). Calls
 * waiting when the peer goes away reject.
 */
function channel(peer, handle) {
  let next = 0
  const waiting = new Map()
  peer.on('message', async (m) => {
    if (m.re !== undefined) {
      const w = waiting.get(m.re)
      waiting.delete(m.re)
      if (m.error === undefined) w?.resolve(m.value)
      else w?.reject(new Error(m.error))
      return
    }
    let reply
    try {
      reply = { re: m.id, value: await handle(m.op, m.args) }
    } catch (err) {
      reply = { re: m.id, error: err instanceof Error ? err.message : String(err) }
    }
    if (peer.connected) peer.send(reply)
  })
  peer.on('disconnect', () => {
    for (const w of waiting.values()) w.reject(new Error('the other process went away'))
    waiting.clear()
  })
  return (op, ...args) =>
    new Promise((resolve, reject) => {
      if (!peer.connected) return reject(new Error('the other process went away'))
      const id = next++
      waiting.set(id, { resolve, reject })
      peer.send({ id, op, args })
    })
}

// ---- an app process -------------------------------------------------------------------------

async function runApp(name, namespace) {
  let originCalls = 0
  let server
  const cache = createCache({ redis: REDIS_URL, namespace, ttl: '5m' })
  const call = channel(process, async (op) => {
    if (op === 'stats') return { originCalls, ...cache.stats() }
    if (op === 'health') return cache.health()
    if (op === 'close') {
      await new Promise((r) => server.close(r))
      await cache.close()
      setImmediate(() => process.disconnect())
      return true
    }
    if (op === 'clear') return cache.clear()
  })
  const db = (op, ...args) => call(`db.${op}`, ...args)

  const app = express()
  app.use(express.json())
  app.get('/products/:id', corral(cache, { tags: (req) => [`product:${req.params.id}`] }), async (req, res) => {
    originCalls++
    const price = await db('get', req.params.id)
    await sleep(ORIGIN_MS) // the rest of a slow page
    res.json({ id: req.params.id, price, servedBy: `${name}, origin call #${originCalls}` })
  })
  app.put('/products/:id', invalidate(cache, (req) => ({ tags: [`product:${req.params.id}`] })), async (req, res) => {
    await db('set', req.params.id, req.body.price)
    res.json({ ok: true })
  })
  server = app.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  await call('ready', server.address().port)
}

// ---- the parent: starts both apps and drives the scenario -----------------------------------

async function main() {
  const namespace = `corral-example-${process.pid}`
  const db = new Map([['42', 19.99], ['7', 5.0]])

  /** Forks one app process; resolves with its base URL and a way to ask it things. */
  function start(name) {
    const child = fork(fileURLToPath(import.meta.url), ['app', name, namespace], { stdio: 'inherit' })
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)))
      const ask = channel(child, async (op, args) => {
        if (op === 'db.get') return db.get(args[0]) ?? null
        if (op === 'db.set') return void db.set(args[0], args[1])
        if (op === 'ready') {
          child.removeAllListeners('exit')
          resolve({ name, child, ask, url: `http://127.0.0.1:${args[0]}` })
        }
      })
    })
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 200 })
  function request(app, path, { method = 'GET', json } = {}) {
    const payload = json === undefined ? undefined : JSON.stringify(json)
    return new Promise((resolve, reject) => {
      const headers = { host: HOST, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) }
      const req = http.request(`${app.url}${path}`, { method, headers, agent }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode, cache: res.headers['x-cache'], age: res.headers.age, text, body: JSON.parse(text) })
        })
      })
      req.on('error', reject)
      req.end(payload)
    })
  }
  const originCalls = async (app) => (await app.ask('stats')).originCalls

  const apps = await Promise.all([start('app 1'), start('app 2')])
  const [one, two] = apps
  try {
    console.log(`Corral multi-instance example: two Express processes, one Redis (${REDIS_URL}), namespace ${namespace}`)
    console.log(`each app: createCache({ redis, namespace, ttl: '5m' }); the origin takes ~${ORIGIN_MS} ms\n`)
    // The apps connect to Redis in the background: give them a moment before the first request.
    let first
    for (const t0 = performance.now(); performance.now() - t0 < 2000; await sleep(20)) {
      first = await one.ask('health')
      if (first.status === 'ok' && (await two.ask('health')).status === 'ok') break
    }
    if (first.status !== 'ok') {
      console.log(`(Redis is not answering: ${first.store?.l2?.roundTrip?.error}. The apps still serve, each from its own memory.)\n`)
    }

    console.log('1. GET /products/42 on app 1')
    const miss = await request(one, '/products/42')
    console.log(`   ${miss.cache}  ${miss.text}`)
    // Writes to Redis happen after the response, in the background. A health check goes over the
    // same connection, after that write: once it answers, the entry is in Redis.
    await one.ask('health')

    console.log('2. the same request on app 2')
    const shared = await request(two, '/products/42')
    console.log(`   ${shared.cache}   ${shared.text}`)
    console.log(
      shared.cache === 'HIT'
        ? `   (Age ${shared.age}; app 2's origin calls: ${await originCalls(two)}: the entry came from Redis)\n`
        : `   (app 2's origin calls: ${await originCalls(two)}: without Redis each app fills its own cache)\n`,
    )

    console.log('3. 100 concurrent GET /products/7 on a cold key, 50 on each app')
    const before = [await originCalls(one), await originCalls(two)]
    const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => request(apps[i % 2], '/products/7')))
    const calls = [(await originCalls(one)) - before[0], (await originCalls(two)) - before[1]]
    const tally = {}
    for (const r of burst) tally[r.cache] = (tally[r.cache] ?? 0) + 1
    console.log(`   origin calls: ${calls[0] + calls[1]} in total (app 1: ${calls[0]}, app 2: ${calls[1]})`)
    console.log(`   X-Cache: ${Object.entries(tally).map(([k, v]) => `${k} ${v}`).join(', ')}; bodies: ${new Set(burst.map((r) => r.text)).size} distinct\n`)

    console.log('4. PUT /products/42 {"price": 17.5} on app 1 (its route invalidates the tag product:42)')
    const entriesBefore = (await two.ask('stats')).entries
    const t0 = performance.now()
    await request(one, '/products/42', { method: 'PUT', json: { price: 17.5 } })
    // The PUT's response waits for L1 and Redis; the other apps hear about it over pub/sub.
    let dropped = false
    while (!dropped && performance.now() - t0 < 2000) {
      dropped = (await two.ask('stats')).entries < entriesBefore
      if (!dropped) await sleep(1)
    }
    console.log(dropped
      ? `   app 2 dropped its in-memory copy ${(performance.now() - t0).toFixed(1)} ms after the PUT was sent`
      : '   app 2 did not hear about it within 2 s: without Redis it serves its own copy until the entry expires')
    const fresh = await request(two, '/products/42')
    console.log(`   GET /products/42 on app 2: ${fresh.cache}  ${fresh.text}\n`)

    console.log('5. health()')
    for (const app of apps) {
      const h = await app.ask('health')
      const l2 = h.store?.l2 ?? {}
      console.log(
        `   ${app.name}: ${h.status}; L1 ${h.entries} entr${h.entries === 1 ? 'y' : 'ies'} (${(h.bytes / 1024).toFixed(1)} KiB); Redis ${l2.connection}, ` +
          `breaker ${l2.breaker}, round trip ${l2.roundTrip?.ok ? `${l2.roundTrip.ms} ms` : `failed (${l2.roundTrip?.error})`}`,
      )
    }
    const s = [await one.ask('stats'), await two.ask('stats')]
    console.log(`   stats: ${s.map((x, i) => `app ${i + 1} hits ${x.hits}, misses ${x.misses}, coalesced ${x.coalesced}, errors ${x.errors}`).join('; ')}`)

    try {
      await one.ask('clear')
      console.log(`\ncleared namespace ${namespace} from Redis`)
    } catch (err) {
      console.log(`\ncould not clear namespace ${namespace} from Redis (${err.message}); its entries expire with their TTL`)
    }
  } finally {
    agent.destroy()
    await Promise.all(
      apps.map(async (app) => {
        if (app.child.exitCode !== null) return
        const exited = new Promise((r) => app.child.once('exit', r))
        // A child that has not closed its server and cache within 5 s is killed (this child only).
        const timer = setTimeout(() => app.child.kill('SIGKILL'), 5000)
        await app.ask('close').catch(() => undefined)
        await exited
        clearTimeout(timer)
      }),
    )
  }
}

if (process.argv[2] === 'app') await runApp(process.argv[3], process.argv[4])
else await main()
