// Throughput measurement: every mode runs once per round, in the same order each round
// (A B C, A B C, ...), so slow drifts of the machine hit every mode alike. Each run is a fresh
// server on the server core: start, check it answers as the mode expects, warm up, measure.
import { cpuBusySeconds, SERVER_CPU, waitForQuiet } from './cpu.mjs'
import { runLoad } from './load.mjs'
import { startServer } from './server.mjs'
import { median, pairedRatio, round } from './stats.mjs'

/**
 * @typedef {object} Mode
 * @property {string} id
 * @property {string} label
 * @property {{ framework: string, cache: string, version?: string }} server
 * @property {string} path the route under load
 * @property {'hit' | 'origin'} serves 'hit': the measured window must not reach the origin;
 *   'origin': every request must (the miss path)
 * @property {string} [xCache] the X-Cache value the second probe request must carry
 * @property {Record<string, string>} [headers] request headers of the probes and of the load
 * @property {string | null} [contentEncoding] the Content-Encoding the second probe request must
 *   carry (null: none)
 * @property {Record<string, { cpuSeconds(): number }>} [sidecars] other processes the mode's
 *   requests run on (the bench's Redis): each one's CPU per request is measured over the same
 *   window, as `<name>CpuUsPerReq` and `<name>CpuUtil`, and `totalCpuUsPerReq` adds them to the server's
 */

/** Two requests before any load: right status and body, and the cache answering as it should. */
async function probe(url, mode) {
  let last
  for (let i = 0; i < 2; i++) {
    // fetch decodes a compressed body: the length check is of the decoded bytes.
    const res = await fetch(url, { headers: mode.headers })
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200 || body.length !== 2048) {
      throw new Error(`${mode.label}: GET ${url} answered ${res.status} with ${body.length} bytes, expected 200 with 2048`)
    }
    last = res
  }
  if (mode.xCache !== undefined && last.headers.get('x-cache') !== mode.xCache) {
    throw new Error(`${mode.label}: expected X-Cache ${mode.xCache} on a repeated request, got ${last.headers.get('x-cache')}`)
  }
  if (mode.contentEncoding !== undefined && last.headers.get('content-encoding') !== mode.contentEncoding) {
    throw new Error(`${mode.label}: expected Content-Encoding ${mode.contentEncoding ?? '(none)'} on a repeated request, got ${last.headers.get('content-encoding') ?? '(none)'}`)
  }
}

function routeOf(path) {
  return path.slice(1).split(/[/?]/, 1)[0]
}

export async function measureOnce(ctx, mode) {
  const server = await startServer(mode.server, ctx.nodeFlags(mode))
  try {
    const url = server.url(mode.path)
    await probe(url, mode)
    const load = { url, connections: ctx.connections, seconds: ctx.warmup, headers: mode.headers }
    if (ctx.warmup > 0) await runLoad(ctx.loadgen, load)
    const before = await server.stats()
    const core0 = cpuBusySeconds()[SERVER_CPU]
    const cpu0 = server.cpuSeconds()
    const sidecars = Object.entries(mode.sidecars ?? {})
    const side0 = sidecars.map(([, p]) => p.cpuSeconds())
    const r = await runLoad(ctx.loadgen, { ...load, seconds: ctx.duration })
    const cpu1 = server.cpuSeconds()
    const side1 = sidecars.map(([, p]) => p.cpuSeconds())
    const core1 = cpuBusySeconds()[SERVER_CPU]
    const after = await server.stats()
    const route = routeOf(mode.path)
    const originCalls = after.origin[route] - before.origin[route]
    if (r.non2xx > 0) throw new Error(`${mode.label}: ${r.non2xx} responses were not 2xx/3xx`)
    if (mode.serves === 'hit' && originCalls !== 0) {
      throw new Error(`${mode.label}: the origin ran ${originCalls} times while hits were being measured`)
    }
    if (mode.serves === 'origin' && originCalls < r.requests) {
      throw new Error(`${mode.label}: ${r.requests} requests but only ${originCalls} origin calls on a route that must never be cached`)
    }
    const cpu = cpu1 - cpu0
    const side = {}
    if (sidecars.length > 0) {
      let total = cpu
      sidecars.forEach(([name], i) => {
        const s = side1[i] - side0[i]
        total += s
        side[`${name}CpuUsPerReq`] = round((s / r.requests) * 1e6, 2)
        side[`${name}CpuUtil`] = round(s / r.seconds)
      })
      side.totalCpuUsPerReq = round((total / r.requests) * 1e6, 2)
    }
    return {
      // Share of the server core that went to other processes (or to network interrupts) during
      // the window: a busy neighbour shows here.
      otherOnServerCore: round(Math.max(0, (core1 - core0 - cpu) / r.seconds)),
      rps: round(r.rps, 1),
      requests: r.requests,
      p50Ms: round(r.latencyMs.p50),
      p99Ms: round(r.latencyMs.p99),
      maxMs: round(r.latencyMs.max),
      cpuUsPerReq: round((cpu / r.requests) * 1e6, 2),
      serverCpuUtil: round(cpu / r.seconds),
      ...side,
      socketErrors: r.errors,
      originCalls,
    }
  } finally {
    await server.stop()
  }
}

/**
 * A run is disturbed when the server core was not all ours or the server was not kept busy (a
 * neighbour on the machine took the load generator's core). Such a run is repeated, up to
 * ctx.attempts times, and the least disturbed attempt kept.
 */
const disturbed = (run) => run.otherOnServerCore > 0.1 || run.serverCpuUtil < 0.85

async function measureSteady(ctx, mode) {
  let best
  for (let attempt = 1; attempt <= ctx.attempts; attempt++) {
    await waitForQuiet(ctx.quietWaitMs, (busy) => ctx.log(`  (waiting for the machine to quieten: ${busy.toFixed(2)} cores busy elsewhere)`))
    const run = { ...(await measureOnce(ctx, mode)), attempts: attempt }
    if (best === undefined || run.serverCpuUtil - run.otherOnServerCore > best.serverCpuUtil - best.otherOnServerCore) best = { ...run }
    best.attempts = attempt
    if (!disturbed(run)) break
    if (attempt < ctx.attempts) {
      ctx.log(`  ${mode.label}: disturbed run (server CPU ${Math.round(run.serverCpuUtil * 100)}%, others on its core ${Math.round(run.otherOnServerCore * 100)}%), again`)
    }
  }
  best.disturbed = disturbed(best)
  return best
}

/** Runs `modes` for ctx.rounds rounds; returns per-mode runs and medians. */
export async function measureModes(ctx, modes) {
  const out = Object.fromEntries(modes.map((m) => [m.id, { label: m.label, server: m.server, path: m.path, runs: [] }]))
  for (let r = 1; r <= ctx.rounds; r++) {
    for (const mode of modes) {
      const run = await measureSteady(ctx, mode)
      out[mode.id].runs.push(run)
      ctx.log(
        `  round ${r}/${ctx.rounds}  ${mode.label.padEnd(34)} ${String(Math.round(run.rps)).padStart(7)} req/s` +
          `  p99 ${run.p99Ms.toFixed(2).padStart(7)} ms  ${run.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/req` +
          Object.keys(mode.sidecars ?? {}).map((name) => ` + ${name} ${run[`${name}CpuUsPerReq`].toFixed(1)} µs (${Math.round(run[`${name}CpuUtil`] * 100)}%)`).join('') +
          `  (server CPU ${Math.round(run.serverCpuUtil * 100)}%, others ${Math.round(run.otherOnServerCore * 100)}%)${run.disturbed ? ' DISTURBED' : ''}`,
      )
    }
  }
  for (const mode of modes) {
    const m = out[mode.id]
    m.median = {
      rps: round(median(m.runs.map((x) => x.rps)), 1),
      p50Ms: round(median(m.runs.map((x) => x.p50Ms))),
      p99Ms: round(median(m.runs.map((x) => x.p99Ms))),
      cpuUsPerReq: round(median(m.runs.map((x) => x.cpuUsPerReq)), 2),
      serverCpuUtil: round(median(m.runs.map((x) => x.serverCpuUtil))),
    }
    // The sidecars' CPU (Mode.sidecars), when measured.
    const sidecars = Object.keys(mode.sidecars ?? {})
    const extra = sidecars.length === 0 ? [] : [...sidecars.flatMap((name) => [`${name}CpuUsPerReq`, `${name}CpuUtil`]), 'totalCpuUsPerReq']
    for (const k of extra) {
      m.median[k] = round(median(m.runs.map((x) => x[k])), k.endsWith('Util') ? 3 : 2)
    }
  }
  return out
}

/**
 * A comparison of two measured modes on one metric: per-round ratios and their median. Rounds in
 * which either run stayed disturbed (see measureSteady) are left out of the median when at least
 * one round was clean. `target` (optional): { op: '>=' | '<=', value } judged on that median.
 */
export function compare(modes, { id, label, num, den, metric, target }) {
  const a = modes[num].runs
  const b = modes[den].runs
  const { perRound } = pairedRatio(a, b, metric)
  const clean = perRound.filter((_, i) => !a[i].disturbed && !b[i]?.disturbed)
  const med = median(clean.length > 0 ? clean : perRound)
  const c = {
    id,
    label,
    num,
    den,
    metric,
    perRound: perRound.map((x) => round(x)),
    disturbedRounds: perRound.map((_, i) => i + 1).filter((r) => a[r - 1].disturbed || b[r - 1]?.disturbed),
    median: round(med),
  }
  if (target !== undefined) c.target = { ...target, met: target.op === '>=' ? med >= target.value : med <= target.value }
  return c
}
