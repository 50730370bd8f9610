// The bench: `npx -y pnpm@10.34.8 bench` from the repository root (installs, builds, then runs
// this), or `node bench/run.mjs [flags]` after a build. Flags: lib/options.mjs, or --help.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { ratioChart } from './lib/chart.mjs'
import { canPin } from './lib/cpu.mjs'
import { chooseLoadgen } from './lib/load.mjs'
import { machineInfo } from './lib/machine.mjs'
import { parseOptions } from './lib/options.mjs'
import { collectTargets, markdown } from './lib/report.mjs'
import { scenarios } from './scenarios/index.mjs'

const log = (msg) => console.log(msg)
const started = performance.now()

let options
try {
  options = parseOptions(process.argv.slice(2), scenarios.map((s) => s.id))
} catch (err) {
  console.error(`bench: ${err.message}`)
  process.exit(2)
}
if (options.help) {
  console.log('usage: node bench/run.mjs [--quick | --smoke] [--rounds=N] [--warmup=S] [--duration=S] [--connections=N]')
  console.log('                          [--only=id,...] [--loadgen=auto|wrk|autocannon] [--out=DIR] [--profile]')
  console.log(`scenarios: ${scenarios.map((s) => s.id).join(', ')}. Details: bench/README.md`)
  process.exit(0)
}

try {
  await import('@corral/core')
  await import('@corral/express')
  await import('@corral/fastify')
} catch (err) {
  console.error(`bench: the Corral packages are not built (${err.message}).\nRun it as \`npx -y pnpm@10.34.8 bench\`, which installs and builds first.`)
  process.exit(2)
}

if (!canPin) log('warning: taskset or a second core is missing; servers and load generator are not pinned')
const loadgen = chooseLoadgen(options.loadgen, log)
const profileDir = options.profile ? join(options.out, 'profiles') : undefined
if (profileDir) mkdirSync(profileDir, { recursive: true })
let profiles = 0

const ctx = {
  ...options,
  loadgen,
  log,
  /** Node flags for a server: CPU profiles of Corral servers (corral, corral-l2) when --profile is given. */
  nodeFlags(mode) {
    if (profileDir === undefined || !mode.server.cache.startsWith('corral')) return []
    return ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${mode.id}-${++profiles}.cpuprofile`]
  },
}

log(
  `Corral bench: ${options.only.join(', ')} — ${options.rounds} round(s) × (${options.warmup} s warm-up + ${options.duration} s), ` +
    `${options.connections} connections, ${loadgen.tool} ${loadgen.version}${options.smoke ? ' [smoke]' : options.quick ? ' [quick]' : ''}`,
)
const results = []
let failed = false
for (const scenario of scenarios.filter((s) => options.only.includes(s.id))) {
  const t = performance.now()
  log(`\n== ${scenario.title} (${scenario.id})`)
  const entry = { id: scenario.id, title: scenario.title, about: scenario.about }
  try {
    Object.assign(entry, await scenario.run(ctx))
  } catch (err) {
    failed = true
    entry.error = err.message
    log(`  FAILED: ${err.stack ?? err.message}`)
  }
  entry.seconds = Math.round((performance.now() - t) / 100) / 10
  log(`  (${entry.seconds} s)`)
  results.push(entry)
}

const startedAt = new Date(Date.now() - (performance.now() - started)).toISOString()
const run = {
  format: 1,
  startedAt,
  wallSeconds: Math.round((performance.now() - started) / 100) / 10,
  partial: !options.full,
  settings: {
    rounds: options.rounds,
    warmup: options.warmup,
    duration: options.duration,
    connections: options.connections,
    smoke: options.smoke,
    quick: options.quick,
    only: options.only,
    stampedeSizes: options.stampedeSizes,
    memoryEntries: options.memoryEntries,
  },
  ...machineInfo(loadgen),
  targets: collectTargets(results),
  scenarios: results,
}

mkdirSync(join(options.out, 'runs'), { recursive: true })
const json = JSON.stringify(run, null, 2) + '\n'
const stamp = startedAt.replace(/[:.]/g, '-')
writeFileSync(join(options.out, 'runs', `${stamp}.json`), json)
writeFileSync(join(options.out, 'latest.json'), json)
const charted = results.map((s) => ({ title: s.title, comparisons: s.comparisons ?? [] }))
writeFileSync(join(options.out, 'latest.svg'), ratioChart(charted, { title: `Corral vs peers: ratios, median of ${options.rounds} round(s)${run.partial ? ' (partial run)' : ''}` }))
writeFileSync(join(options.out, 'latest.md'), markdown(run, 'latest.svg'))

log('\n== Targets')
for (const t of run.targets) log(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.text}: ${t.measured}`)
log(`\n${run.targets.filter((t) => t.met).length} of ${run.targets.length} targets met; ${run.wallSeconds} s in all.`)
log(`Results: ${join(options.out, 'latest.md')} (and .json, .svg)`)
if (profileDir) log(`CPU profiles: ${profileDir} (summarise one with: node bench/lib/profile-top.mjs <file>)`)
// Numbers are never judged here: only a scenario that could not run fails the bench.
process.exit(failed ? 1 : 0)
