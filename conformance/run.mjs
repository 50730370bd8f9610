// Corral against the HTTP caching test suite (npm package http-cache-tests, cache-tests.fyi).
//
//   npx -y pnpm@10.34.8 conformance            all three adapters, every test; writes conformance/results/
//   node conformance/run.mjs --quick           CI smoke (about 25 s): every test on one adapter, checked
//                                              against the committed results; writes nothing
//   node conformance/run.mjs --only=id[,id] --dump --adapters=node
//                                              debug some tests: every request and response printed
//   node conformance/run.mjs --adapters=express --cache-options='{"setCookie":"strip"}' --out=/tmp/x
//                                              the same run with createCache options of your own
//
// Needs the packages built (dist/). What it starts, all on 127.0.0.1 and free ports, each in a
// process of its own: the suite's origin (lib/origin.mjs), then for each adapter in turn a proxy
// app with Corral in front (lib/proxy.mjs) and the suite's client against it (lib/client.mjs).
// How results are classified and what the columns mean: conformance/README.md.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { classify, cliTests, kindOf, listed } from './lib/classify.mjs'
import { markdown, published } from './lib/report.mjs'
import { suites as loadSuites, suiteVersion } from './lib/suites.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const require = createRequire(import.meta.url)
const ADAPTERS = ['express', 'fastify', 'node']
const QUICK_ADAPTER = 'express'
/** A whole run of the suite against one adapter takes about 20 s; past this it is stuck. */
const CLIENT_TIMEOUT_MS = 180_000
const START_TIMEOUT_MS = 15_000

const log = (msg) => console.log(msg)

// ---- options -------------------------------------------------------------------------------

function parseOptions(argv) {
  const o = { quick: false, dump: false, adapters: undefined, only: undefined, out: undefined, cacheOptions: undefined, help: false }
  for (const arg of argv) {
    const [flag, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    if (flag === '--quick' || flag === '--smoke') o.quick = true
    else if (flag === '--dump') o.dump = true
    else if (flag === '--help' || flag === '-h') o.help = true
    else if (flag === '--adapters' && value) o.adapters = value.split(',')
    else if (flag === '--only' && value) o.only = value.split(',')
    else if (flag === '--out' && value) o.out = value
    else if (flag === '--cache-options' && value) o.cacheOptions = value
    else throw new Error(`unknown option ${arg}`)
  }
  if (o.quick && o.only !== undefined) throw new Error('--quick runs every test; it does not take --only')
  if (o.dump && o.only === undefined) throw new Error('--dump prints the traffic of the --only tests; give --only')
  if (o.cacheOptions !== undefined) {
    const parsed = JSON.parse(o.cacheOptions)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('--cache-options takes a JSON object')
    // The committed results are those of createCache() as it comes.
    if (o.quick || o.out === undefined) throw new Error('--cache-options needs --out=DIR and no --quick')
  }
  for (const a of o.adapters ?? []) if (!ADAPTERS.includes(a)) throw new Error(`unknown adapter ${a} (one of ${ADAPTERS.join(', ')})`)
  o.adapters ??= o.quick ? [QUICK_ADAPTER] : ADAPTERS
  // Only a full run of every test replaces the committed results, unless --out says where.
  o.write = o.out !== undefined || (!o.quick && o.only === undefined)
  o.out ??= join(here, 'results')
  return o
}

let options
try {
  options = parseOptions(process.argv.slice(2))
} catch (err) {
  console.error(`conformance: ${err.message} (--help lists the options)`)
  process.exit(2)
}
if (options.help) {
  log('usage: node conformance/run.mjs [--quick | --smoke] [--adapters=express,fastify,node] [--only=id,...] [--dump] [--out=DIR]')
  log('  (no flags)  every test on every adapter; writes conformance/results/<adapter>.json and latest.md')
  log(`  --quick     CI smoke: every test on ${QUICK_ADAPTER} (or --adapters); exits 1 if the harness broke, or if more`)
  log('              required tests fail or fewer pass than in the committed results; writes nothing unless --out')
  log('  --only      run just these test ids and those they depend on (writes nothing unless --out)')
  log('  --dump      print every request and response of the --only tests as client and origin saw them')
  log("  --cache-options='{...}'  createCache options (JSON) for the proxies; needs --out")
  process.exit(0)
}

for (const pkg of ['core', 'express', 'fastify', 'node']) {
  if (!existsSync(join(root, 'packages', pkg, 'dist', 'index.js'))) {
    console.error(`conformance: packages/${pkg} is not built. Run \`npx -y pnpm@10.34.8 build\` first.`)
    process.exit(2)
  }
}

// ---- processes -----------------------------------------------------------------------------

/**
 * Starts `node <script> ...args`, waits for its {"event":"listening","port":N} line. Later JSON
 * lines are kept as events; other output is kept (the tail) for diagnostics.
 */
function startServer(name, script, args, echo = false) {
  const child = spawn(process.execPath, [join(here, 'lib', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const server = { name, child, events: [], output: [], exit: undefined }
  const keep = (line) => {
    if (echo) console.log(line)
    server.output.push(line)
    if (server.output.length > 50) server.output.shift()
  }
  server.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      server.exit = { code, signal }
      resolve(server.exit)
    })
  })
  createInterface({ input: child.stderr }).on('line', keep)
  server.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event
      try {
        event = JSON.parse(line)
      } catch {
        keep(line)
        return
      }
      if (event.event === 'listening' && server.port === undefined) {
        server.port = event.port
        clearTimeout(timer)
        resolve(event.port)
      } else {
        server.events.push(event)
      }
    })
    server.exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited before listening (code ${code}, signal ${signal}): ${server.output.slice(-10).join('\n')}`))
    })
  })
  return server
}

async function stopServer(server) {
  if (server.exit === undefined) {
    server.child.kill('SIGTERM')
    await server.exited
  }
}

/** The suite's client against `base` (`dump`: ids whose traffic it prints); resolves with its raw results. */
function runClient(base, out, only, dump, timeoutMs) {
  return new Promise((resolve, reject) => {
    const args = [join(here, 'lib', 'client.mjs'), base, out]
    if (only !== undefined) args.push(`--only=${only.join(',')}`)
    if (dump !== undefined) args.push(`--dump=${dump.join(',')}`)
    const child = spawn(process.execPath, args, { stdio: ['ignore', dump !== undefined ? 'inherit' : 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) return reject(new Error(`the suite's client did not finish within ${timeoutMs / 1000} s`))
      if (code !== 0) return reject(new Error(`the suite's client exited with code ${code ?? signal}: ${stderr.trim()}`))
      try {
        resolve(JSON.parse(readFileSync(out, 'utf8')))
      } catch (err) {
        reject(new Error(`the suite's client wrote no results: ${err.message}`))
      }
    })
  })
}

// ---- facts recorded with the results -------------------------------------------------------

function versionOf(pkg) {
  return JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version
}

function corralCommit() {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd: root, encoding: 'utf8' }).trim() !== ''
    return dirty ? `${sha}+changes` : sha
  } catch {
    return 'unknown'
  }
}

const FRAMEWORKS = {
  express: () => ({ name: 'Express', version: versionOf('express5') }),
  fastify: () => ({ name: 'Fastify', version: versionOf('fastify') }),
  node: () => ({ name: 'node:http', version: process.version }),
}

// ---- run -----------------------------------------------------------------------------------

const suites = await loadSuites()
const tests = cliTests(suites)
const testById = new Map(tests.map((t) => [t.id, t]))

/** These tests and, transitively, every test they depend on (else they would count as ⚪️). */
function withDependencies(ids) {
  const selected = new Set()
  const add = (id) => {
    if (selected.has(id)) return
    selected.add(id)
    for (const dep of testById.get(id)?.depends_on ?? []) add(dep)
  }
  ids.forEach(add)
  return [...selected]
}

let only = options.only
if (only !== undefined) {
  const unknown = only.filter((id) => !testById.has(id))
  if (unknown.length > 0) {
    console.error(`conformance: no such test: ${unknown.join(', ')}`)
    process.exit(2)
  }
  only = withDependencies(only)
}
const onlySet = only === undefined ? undefined : new Set(only)

/** Whether a test scripts an origin disconnect at this request (then a proxy error is expected). */
function scriptedDisconnect(testId, reqNum) {
  return testById.get(testId)?.requests?.[Number(reqNum) - 1]?.disconnect === true
}

const tmp = mkdtempSync(join(tmpdir(), 'corral-conformance-'))
const started = Date.now()
const mode = options.quick ? 'quick' : only !== undefined ? 'selected' : 'full'
log(
  `Corral conformance [${mode}]: http-cache-tests ${suiteVersion()}, ${onlySet ? onlySet.size : tests.length} tests on ` +
    `${options.adapters.join(', ')} (about 20 s per adapter for every test)`,
)

const problems = [] // harness breakage: exits non-zero in every mode
const records = []
let origin
try {
  // With --dump, the origin prints what it received and answered for the dumped tests.
  origin = startServer('origin', 'origin.mjs', [], options.dump)
  await origin.ready
  const originUrl = `http://127.0.0.1:${origin.port}`
  log(`origin: ${originUrl}`)

  for (const adapter of options.adapters) {
    const t0 = Date.now()
    const proxy = startServer(`${adapter} proxy`, 'proxy.mjs', [adapter, originUrl, ...(options.cacheOptions === undefined ? [] : [options.cacheOptions])])
    let results
    try {
      await proxy.ready
      results = await runClient(`http://127.0.0.1:${proxy.port}`, join(tmp, `${adapter}.json`), only, options.dump ? options.only : undefined, CLIENT_TIMEOUT_MS)
    } catch (err) {
      problems.push(`${adapter}: ${err.message}`)
      log(`${adapter}: HARNESS ERROR: ${err.message}`)
      await stopServer(proxy)
      continue
    }
    // A proxy that died during the run (Corral or the framework crashed) is recorded, not hidden.
    const exitedDuringRun = proxy.exit !== undefined
    await stopServer(proxy)
    const record = makeRecord(adapter, results, proxy, exitedDuringRun, Date.now() - t0)
    records.push(record)
    if (record.proxy.exit) problems.push(`${adapter}: the proxy exited during the run (${record.proxy.exit})`)
    const missing = (onlySet ? [...onlySet] : tests.map((t) => t.id)).filter((id) => !(id in results))
    if (missing.length > 0) problems.push(`${adapter}: no result for ${missing.length} test(s): ${missing.slice(0, 5).join(', ')}`)
    const setupBroken = Object.entries(results).filter(([, r]) => Array.isArray(r) && /^PUT config resulted in/.test(r[1]))
    if (setupBroken.length > 0) problems.push(`${adapter}: the suite could not configure ${setupBroken.length} test(s) through the proxy: ${setupBroken[0][1][1]}`)
    if (origin.exit !== undefined) {
      problems.push(`the origin exited during the run (code ${origin.exit.code}, signal ${origin.exit.signal}): ${origin.output.slice(-5).join(' / ')}`)
      break
    }
    const c = record.counts
    log(
      `${adapter}: required ✅ ${c.required.pass} ⛔️ ${c.required.fail} ⚪️ ${c.required.dependency_fail} 🔹 ${c.required.setup_fail}; ` +
        `optimal ✅ ${c.optimal.pass} ⚠️ ${c.optimal.optional_fail}; check Y ${c.check.yes} N ${c.check.no}; ` +
        `proxy events ${JSON.stringify(record.proxy.eventCounts)} (${(record.durationMs / 1000).toFixed(1)} s)`,
    )
  }
} catch (err) {
  problems.push(err.message)
  log(`HARNESS ERROR: ${err.message}`)
} finally {
  if (origin) await stopServer(origin)
  rmSync(tmp, { recursive: true, force: true })
}

function makeRecord(adapter, results, proxy, exitedDuringRun, durationMs) {
  const { counts, outcomes } = classify(suites, results, onlySet)
  const events = proxy.events.map((e) => (e.event === 'upstream-error' && scriptedDisconnect(e.testId, e.reqNum) ? { ...e, expected: true } : e))
  const eventCounts = {}
  for (const e of events) {
    const key = e.expected ? `${e.event} (expected)` : e.event
    eventCounts[key] = (eventCounts[key] ?? 0) + 1
  }
  const notAssertions = Object.entries(results)
    .filter(([, r]) => Array.isArray(r) && r[0] !== 'Assertion' && r[0] !== 'Setup')
    .map(([id, r]) => ({ id, name: r[0], message: r[1] }))
  return {
    adapter,
    framework: FRAMEWORKS[adapter](),
    corral: { version: versionOf('../packages/core'), commit: corralCommit(), cache: options.cacheOptions === undefined ? 'createCache() — in memory, no default ttl, app-wide' : `createCache(${options.cacheOptions}) — in memory, app-wide` },
    suite: { name: 'http-cache-tests', version: suiteVersion() },
    node: process.version,
    date: new Date().toISOString(),
    mode,
    durationMs,
    counts,
    failingRequired: listed(suites, results, outcomes, 'required', 'fail'),
    requiredNotReached: ['setup_fail', 'dependency_fail', 'retry', 'harness_fail'].flatMap((o) =>
      listed(suites, results, outcomes, 'required', o).map((t) => ({ ...t, outcome: o, dependsOn: testById.get(t.id).depends_on })),
    ),
    // Results that are not the suite's assertions (a request that failed outright: a connection
    // refused or reset, a timeout). The package's rules count them as failures of their kind.
    errors: notAssertions,
    proxy: {
      exit: exitedDuringRun ? `code ${proxy.exit.code}, signal ${proxy.exit.signal}` : null,
      eventCounts,
      events,
      stderr: proxy.output.slice(-20),
    },
    outcomes,
    results,
  }
}

// ---- results -------------------------------------------------------------------------------

const resultFile = (dir, adapter) => join(dir, `${adapter}.json`)

if (options.quick) {
  // Regression check against the committed full run: no more required tests failing (⛔️), and
  // no fewer passing (a Corral that stopped storing would turn failures into ⚪️, not ⛔️).
  for (const r of records) {
    const file = resultFile(join(here, 'results'), r.adapter)
    if (!existsSync(file)) {
      problems.push(`${r.adapter}: no committed results (${relative(root, file)}) to compare with; run \`pnpm conformance\``)
      continue
    }
    const committed = JSON.parse(readFileSync(file, 'utf8'))
    const before = committed.counts.required
    const now = r.counts.required
    log(`${r.adapter}: required ⛔️ ${now.fail} (committed: ${before.fail}), ✅ ${now.pass} (committed: ${before.pass})`)
    const changed = Object.keys(r.outcomes).filter((id) => kindOf(testById.get(id)) === 'required' && committed.outcomes[id] !== r.outcomes[id])
    for (const id of changed) log(`  ${id}: ${committed.outcomes[id] ?? 'not run'} → ${r.outcomes[id]}`)
    if (now.fail > before.fail) problems.push(`${r.adapter}: ${now.fail} required tests fail, more than the ${before.fail} of ${relative(root, file)}`)
    if (now.pass < before.pass) problems.push(`${r.adapter}: ${now.pass} required tests pass, fewer than the ${before.pass} of ${relative(root, file)}`)
    if (now.fail < before.fail && now.pass >= before.pass) log(`${r.adapter}: better than the committed results: \`pnpm conformance\` records it`)
  }
}

if (options.write && records.length > 0) {
  mkdirSync(options.out, { recursive: true })
  for (const r of records) writeFileSync(resultFile(options.out, r.adapter), `${JSON.stringify(r, null, 2)}\n`)
  // latest.md covers every adapter with a result file there, in the usual order.
  const all = ADAPTERS.filter((a) => existsSync(resultFile(options.out, a))).map((a) => JSON.parse(readFileSync(resultFile(options.out, a), 'utf8')))
  writeFileSync(join(options.out, 'latest.md'), markdown(suites, all, await published(suites)))
  log(`wrote ${records.map((r) => relative(root, resultFile(options.out, r.adapter))).join(', ')} and ${relative(root, join(options.out, 'latest.md'))}`)
}

log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
if (problems.length > 0) {
  console.error(`conformance: the harness did not run cleanly:\n- ${problems.join('\n- ')}`)
  process.exit(1)
}
