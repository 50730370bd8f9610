// What the numbers were measured on: machine, runtime, load generator and every peer's version.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { canPin, LOAD_CPU, SERVER_CPU } from './cpu.mjs'
import { redisVersion } from './redis.mjs'

const require = createRequire(import.meta.url)
const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url))

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) return m[1].trim()
  } catch {}
  return os.cpus()[0]?.model ?? 'unknown'
}

function version(pkg) {
  try {
    return require(`${pkg}/package.json`).version
  } catch {
    return null
  }
}

function git(args) {
  try {
    return execFileSync('git', ['-C', BENCH_DIR, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

export function machineInfo(loadgen) {
  // Results of earlier runs (bench/results/) do not change what is measured.
  const dirty = git(['status', '--porcelain', '--', '../packages', '.', ':(exclude)results'])
  return {
    machine: {
      cpu: cpuModel(),
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      v8: process.versions.v8,
      pinning: canPin ? `servers on core ${SERVER_CPU}, load generator (and the L2 scenario's redis-server) on core ${LOAD_CPU} (taskset)` : 'none (taskset or a second core missing)',
    },
    loadgen,
    git: { commit: git(['rev-parse', 'HEAD']), packagesOrBenchChanged: dirty === null ? null : dirty.length > 0 },
    versions: {
      '@corral/core': version('@corral/core'),
      '@corral/express': version('@corral/express'),
      '@corral/fastify': version('@corral/fastify'),
      'express (4)': version('express4'),
      'express (5)': version('express5'),
      fastify: version('fastify'),
      apicache: version('apicache'),
      'fastify-lcache': version('fastify-lcache'),
      compression: version('compression'),
      autocannon: version('autocannon'),
      ioredis: version('ioredis'),
      'redis-server': redisVersion(),
      [loadgen.tool]: loadgen.version,
    },
  }
}
