// Command-line flags (each also settable as an environment variable CORRAL_BENCH_<NAME>):
//   --quick            2 rounds × (1 s warm-up + 2 s), for a look in about three minutes
//   --smoke            1 round × 1 s of a representative subset of every scenario (CI)
//   --rounds=N         rounds of every mode (default 3)
//   --warmup=S         seconds of load before each measured window (default 2)
//   --duration=S       measured seconds per mode and round (default 5)
//   --connections=N    keep-alive connections of the load generator (default 64)
//   --only=a,b         scenario ids to run (express-hit, fastify-hit, miss-path, stampede, memory, l2-hit, expiry-cliff,
//                      observe, compression)
//   --loadgen=T        auto (wrk, installed if missing, else autocannon) | wrk | autocannon
//   --out=DIR          where latest.{json,md,svg} go (default bench/results for a full run,
//                      bench/results/partial for --quick, --smoke, --only or changed settings)
//   --profile          write a CPU profile of every Corral server to <out>/profiles
import { fileURLToPath } from 'node:url'

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url))
const FULL = { rounds: 3, warmup: 2, duration: 5, connections: 64 }

function flag(argv, name) {
  const prefix = `--${name}=`
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(prefix))
  if (hit !== undefined) return hit === `--${name}` ? 'true' : hit.slice(prefix.length)
  return process.env[`CORRAL_BENCH_${name.toUpperCase()}`]
}

function positiveInt(value, name, fallback) {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < (name === 'warmup' ? 0 : 1)) throw new Error(`--${name} must be a whole number, got ${value}`)
  return n
}

const truthy = (v) => v !== undefined && v !== '0' && v !== 'false'

export function parseOptions(argv, scenarioIds) {
  const known = ['quick', 'smoke', 'rounds', 'warmup', 'duration', 'connections', 'only', 'loadgen', 'out', 'profile', 'help']
  for (const a of argv) {
    const name = a.replace(/^--/, '').split('=')[0]
    if (!a.startsWith('--') || !known.includes(name)) throw new Error(`unknown argument ${a}; flags: ${known.map((k) => `--${k}`).join(' ')}`)
  }
  const smoke = truthy(flag(argv, 'smoke'))
  const quick = truthy(flag(argv, 'quick'))
  const base = smoke ? { rounds: 1, warmup: 0, duration: 1, connections: 64 } : quick ? { rounds: 2, warmup: 1, duration: 2, connections: 64 } : FULL
  const o = {
    help: truthy(flag(argv, 'help')),
    smoke,
    quick,
    rounds: positiveInt(flag(argv, 'rounds'), 'rounds', base.rounds),
    warmup: positiveInt(flag(argv, 'warmup'), 'warmup', base.warmup),
    duration: positiveInt(flag(argv, 'duration'), 'duration', base.duration),
    connections: positiveInt(flag(argv, 'connections'), 'connections', base.connections),
    loadgen: flag(argv, 'loadgen') ?? 'auto',
    profile: truthy(flag(argv, 'profile')),
    // A disturbed throughput run is tried again (lib/measure.mjs); a smoke run never waits.
    attempts: smoke ? 1 : 3,
    quietWaitMs: smoke ? 0 : 15_000,
    stampedeSizes: smoke ? [200] : [200, 1000],
    memoryEntries: smoke ? 5_000 : 100_000,
  }
  if (!['auto', 'wrk', 'autocannon'].includes(o.loadgen)) throw new Error(`--loadgen must be auto, wrk or autocannon, got ${o.loadgen}`)
  const only = flag(argv, 'only')
  o.only = only === undefined ? scenarioIds : only.split(',').map((s) => s.trim()).filter(Boolean)
  for (const id of o.only) if (!scenarioIds.includes(id)) throw new Error(`--only: no scenario ${id}; there are ${scenarioIds.join(', ')}`)
  const full = !smoke && !quick && o.only.length === scenarioIds.length && ['rounds', 'warmup', 'duration', 'connections'].every((k) => o[k] === FULL[k])
  o.full = full
  o.out = flag(argv, 'out') ?? (full ? RESULTS : `${RESULTS}partial/`)
  return o
}
