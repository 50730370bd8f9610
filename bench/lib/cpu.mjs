// Core pinning and CPU accounting. Servers run on SERVER_CPU, load generators on LOAD_CPU, so
// neither steals cycles from the other; a server's CPU time is read from /proc/<pid>/stat.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

export const SERVER_CPU = 0
export const LOAD_CPU = 1

function hasTaskset() {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Pinning needs taskset and two cores; without them everything runs unpinned (and says so). */
export const canPin = os.cpus().length >= 2 && hasTaskset()

/** `[command, args]` that runs `cmd args` on one core when pinning is possible. */
export function pinned(cpu, cmd, args) {
  return canPin ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]
}

let ticksPerSecond
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** User + system CPU seconds of a process (all its threads) so far, or NaN when /proc is unavailable. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  } catch {
    return Number.NaN
  }
}

/** Busy seconds of each CPU so far (everything but idle and iowait), from /proc/stat; [] without /proc. */
export function cpuBusySeconds() {
  try {
    const hz = clockTicks()
    return readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => {
        const [user, nice, system, , , irq, softirq, steal] = l.split(/\s+/).slice(1).map(Number)
        return (user + nice + system + irq + softirq + steal) / hz
      })
  } catch {
    return []
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Waits (at most `maxMs`) until the machine is quiet: less than a tenth of a core busy over
 * half a second, while no bench process runs. Other work on a shared machine (a test suite in
 * another checkout) would otherwise land in the measured window. Resolves to the ms waited.
 */
export async function waitForQuiet(maxMs, onWait) {
  const started = Date.now()
  let told = false
  for (;;) {
    const a = cpuBusySeconds()
    await sleep(500)
    const b = cpuBusySeconds()
    const busy = b.reduce((sum, x, i) => sum + x - (a[i] ?? x), 0) / 0.5
    if (b.length === 0 || busy < 0.1 || Date.now() - started >= maxMs) return Date.now() - started
    if (!told) onWait?.(busy)
    told = true
  }
}
