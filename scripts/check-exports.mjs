#!/usr/bin/env node
// Checks the BUILT packages the way a user gets them: run after `pnpm build`.
//
// For each package:
//   1. the files named in its `exports` map exist (ESM, CJS and both .d.ts flavours);
//   2. `import('<name>')` and `require('<name>')`, resolved by package name from outside the
//      workspace, go through the `exports` map to those files, load, and expose the expected
//      named exports (and the same set of names in both formats);
//   3. publint finds nothing wrong with the packed package (warnings count as errors);
//   4. @arethetypeswrong/cli finds the types right for node10, node16 (CJS and ESM) and bundlers.
//
// Usage: node scripts/check-exports.mjs [core|express|fastify|node ...]   (default: all four)
// Exits 1 with a list of failures; never edits anything outside a temporary directory.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// What each package must export, by name, with the `typeof` it must have.
const expectations = {
  core: { createCache: 'function', MemoryStore: 'function', errors: 'object' },
  express: { corral: 'function', invalidate: 'function' },
  fastify: { default: 'function', corral: 'function' },
  node: { cached: 'function', invalidating: 'function' },
}

const CHILD_TIMEOUT_MS = 120_000

const requested = process.argv.slice(2)
for (const name of requested) {
  if (!(name in expectations)) {
    console.error(`check-exports: unknown package '${name}', expected one of: ${Object.keys(expectations).join(', ')}`)
    process.exit(2)
  }
}
const names = requested.length > 0 ? requested : Object.keys(expectations)

const failures = []
// Everything goes to stdout so that the report reads in order when stdout and stderr are split.
const fail = (pkg, message, details = '') => {
  failures.push(`${pkg}: ${message}`)
  console.log(`  ✗ ${message}`)
  if (details) console.log(details.replace(/^/gm, '      '))
}
const pass = (message) => console.log(`  ✓ ${message}`)

// The tools are root devDependencies; not every package exports its package.json, so read it
// from the root node_modules link instead of resolving it.
const binOf = (pkgName, bin) => {
  const manifestPath = join(root, 'node_modules', pkgName, 'package.json')
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'))
  const rel = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin[bin]
  return join(dirname(manifestPath), rel)
}

// Plain text in CI logs: picocolors treats any FORCE_COLOR value, even '0', as "on".
const withoutColor = (env) => {
  const { FORCE_COLOR, ...rest } = env
  return rest
}

const run = (args, options = {}) =>
  spawnSync(process.execPath, args, {
    encoding: 'utf8',
    timeout: CHILD_TIMEOUT_MS,
    // The workspace .npmrc holds pnpm-only settings that make `npm pack` print warnings.
    env: { ...withoutColor(process.env), npm_config_loglevel: 'error', NO_COLOR: '1' },
    ...options,
  })

const describeChildFailure = (result) => {
  if (result.error) return result.error.message
  if (result.signal) return `killed by ${result.signal} (timeout ${CHILD_TIMEOUT_MS} ms?)`
  return `exit code ${result.status}`
}

// A consumer outside the workspace: node_modules/@corral/<name> links to each package, so a bare
// `import`/`require` of the package name resolves exactly as it would after `npm install`, through
// the `exports` map. Node follows the links to the real paths, so each package still finds its own
// dependencies (and @corral/core) in its own node_modules.
const consumer = mkdtempSync(join(tmpdir(), 'corral-check-exports-'))
process.on('exit', () => rmSync(consumer, { recursive: true, force: true }))
writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'corral-exports-consumer', private: true }))
mkdirSync(join(consumer, 'node_modules', '@corral'), { recursive: true })

// Each probe runs in its own process, so the ESM and CJS loads cannot see each other's module cache.
// It prints the resolved file and the `typeof` of every export.
const describeModule = `
const describe = (resolved, mod) => {
  const exports = {}
  for (const key of Object.keys(mod)) exports[key] = typeof mod[key]
  // CJS output of a default export: module.exports is the function itself, or { default }.
  const self = typeof mod
  // What an instance of every exported error class calls itself (a CJS build that renames a class
  // would make logs say '_class').
  const errorNames = {}
  for (const key of Object.keys(mod)) {
    if (typeof mod[key] === 'function' && /Error$/.test(key)) errorNames[key] = new mod[key]('probe').name
  }
  process.stdout.write(JSON.stringify({ resolved, exports, self, errorNames }))
}
`
writeFileSync(
  join(consumer, 'probe.mjs'),
  `import { fileURLToPath } from 'node:url'
${describeModule}const name = process.argv[2]
const resolved = fileURLToPath(import.meta.resolve(name))
describe(resolved, await import(name))
`,
)
writeFileSync(
  join(consumer, 'probe.cjs'),
  `${describeModule}
const name = process.argv[2]
describe(require.resolve(name), require(name))
`,
)

const probe = (file, pkgName) => {
  const result = run([join(consumer, file), pkgName], { cwd: consumer })
  if (result.status !== 0 || result.error) {
    const output = (result.stderr || result.stdout || '').trim().split('\n').slice(0, 20).join('\n')
    return { error: describeChildFailure(result), details: output }
  }
  try {
    return JSON.parse(result.stdout)
  } catch {
    return { error: `unexpected probe output: ${result.stdout}` }
  }
}

const checkLoad = (format, file, pkgName, pkgDir, expectedFile, expected) => {
  const result = probe(file, pkgName)
  if (result.error) {
    fail(pkgName, `${format}: loading '${pkgName}' failed (${result.error})`, result.details)
    return undefined
  }
  if (realpathSync(result.resolved) !== realpathSync(expectedFile)) {
    fail(pkgName, `${format}: '${pkgName}' resolved to ${result.resolved}, but exports['.'] names ${expectedFile}`)
  }
  const missing = []
  for (const [key, type] of Object.entries(expected)) {
    let actual = result.exports[key]
    // A CJS build may export the default function as module.exports itself.
    if (format === 'CJS' && key === 'default' && actual === undefined) actual = result.self
    if (actual !== type) missing.push(`${key} (expected ${type}, got ${actual ?? 'nothing'})`)
  }
  for (const [key, name] of Object.entries(result.errorNames ?? {})) {
    if (name !== key) missing.push(`${key} (an instance is named '${name}')`)
  }
  if (missing.length > 0) fail(pkgName, `${format}: missing or wrong exports: ${missing.join(', ')}`)
  else pass(`${format}: ${format === 'ESM' ? 'import' : 'require'}('${pkgName}') → ${relative(pkgDir, expectedFile)}; has ${Object.keys(expected).join(', ')}`)
  return new Set(Object.keys(result.exports).filter((key) => key !== '__esModule'))
}

const runTool = (label, pkgName, args) => {
  const result = run(args, { cwd: root })
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim()
  if (result.status === 0 && !result.error) {
    pass(`${label}: no problems`)
    return
  }
  fail(pkgName, `${label} failed (${describeChildFailure(result)})`, output)
}

for (const short of names) {
  const pkgDir = join(root, 'packages', short)
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  const pkgName = manifest.name
  console.log(`\n${pkgName} (packages/${short})`)

  const entry = manifest.exports?.['.']
  const conditions = {
    'exports["."].import.default': entry?.import?.default,
    'exports["."].import.types': entry?.import?.types,
    'exports["."].require.default': entry?.require?.default,
    'exports["."].require.types': entry?.require?.types,
  }
  let filesOk = true
  for (const [field, rel] of Object.entries(conditions)) {
    if (typeof rel !== 'string') {
      fail(pkgName, `package.json has no ${field}`)
      filesOk = false
    } else if (!existsSync(join(pkgDir, rel))) {
      fail(pkgName, `${field} is ${rel}, which does not exist — did \`pnpm build\` run and succeed?`)
      filesOk = false
    }
  }
  if (!filesOk) continue
  pass('every file in exports["."] exists')

  symlinkSync(pkgDir, join(consumer, 'node_modules', pkgName), 'dir')
  const esm = checkLoad('ESM', 'probe.mjs', pkgName, pkgDir, join(pkgDir, entry.import.default), expectations[short])
  const cjs = checkLoad('CJS', 'probe.cjs', pkgName, pkgDir, join(pkgDir, entry.require.default), expectations[short])
  if (esm && cjs) {
    const onlyEsm = [...esm].filter((key) => !cjs.has(key))
    const onlyCjs = [...cjs].filter((key) => !esm.has(key))
    if (onlyEsm.length + onlyCjs.length > 0) {
      fail(pkgName, `ESM and CJS builds export different names: only ESM: [${onlyEsm.join(', ')}], only CJS: [${onlyCjs.join(', ')}]`)
    } else {
      pass(`ESM and CJS export the same ${esm.size} names`)
    }
  }

  if (short === 'core') {
    // ioredis is an optional peer: an app that only uses L1 must not load it (nor need it).
    const lazy = run(
      ['-e', "const m = require('@corral/core'); m.createCache({ ttl: '1m' }); process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('/ioredis/'))))"],
      { cwd: consumer },
    )
    if (lazy.status !== 0) fail(pkgName, `createCache() without redis failed: ${describeChildFailure(lazy)}`, (lazy.stderr || '').trim())
    else if (lazy.stdout !== 'false') fail(pkgName, 'createCache() without redis loaded ioredis')
    else pass('createCache() without redis does not load ioredis')
  }

  // publint packs with npm: pnpm is not on PATH when the script is run with plain `node`.
  runTool('publint', pkgName, [binOf('publint', 'publint'), 'run', pkgDir, '--pack', 'npm', '--strict', '--level', 'warning'])
  // The default ("strict") profile checks node10, node16 from CJS, node16 from ESM and bundler
  // resolution; a types-first dual ESM + CJS package with main/types fallbacks passes all four.
  runTool('attw', pkgName, [binOf('@arethetypeswrong/cli', 'attw'), '--pack', pkgDir, '--format', 'table-flipped', '--no-emoji', '--no-color'])
}

console.log('')
if (failures.length > 0) {
  console.error(`check-exports: ${failures.length} problem(s):`)
  for (const failure of failures) console.error(`  - ${failure}`)
  process.exit(1)
}
console.log(`check-exports: ${names.length} package(s) OK`)
