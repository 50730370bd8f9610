// The suite's client, in a process of its own (its runner keeps its results in module state, so
// one process runs one target):
//
//   node conformance/lib/client.mjs <base URL> <out.json> [--only=id,...] [--dump=id,...]
//
// Runs the same tests as the package's cli.mjs (tests/index.mjs plus the Surrogate-Control
// tests, browser-only tests left out by the runner itself) with the same fetch (node-fetch) and
// writes the results object the CLI prints: test id → true, or [error name, message]. With
// --only, only those tests run; --dump makes the runner print every request and response of
// those tests.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { runTests, getResults } from 'http-cache-tests/client/runner.mjs'
import { suites } from './suites.mjs'

const args = process.argv.slice(2)
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',')
const [base, out] = args.filter((a) => !a.startsWith('--'))
const only = flag('only')
const dump = new Set(flag('dump') ?? [])
if (base === undefined || out === undefined) {
  console.error('usage: node conformance/lib/client.mjs <base URL> <out.json> [--only=id,...] [--dump=id,...]')
  process.exit(2)
}

// node-fetch is the package's own dependency: resolve it from there, as its cli.mjs does.
const nodeFetch = createRequire(createRequire(import.meta.url).resolve('http-cache-tests/package.json'))('node-fetch')
// One addition: a response that never comes fails its test (node-fetch's FetchError, recorded as
// the test's result) instead of stalling the whole run.
const REQUEST_TIMEOUT_MS = 20_000
const fetch = (url, init) => nodeFetch(url, { timeout: REQUEST_TIMEOUT_MS, ...init })

const all = await suites()
let selected = all
if (only !== undefined) {
  const ids = new Set(only)
  selected = all
    .map((suite) => ({ ...suite, tests: suite.tests.filter((t) => ids.has(t.id)) }))
    .filter((suite) => suite.tests.length > 0)
}
for (const suite of selected) for (const test of suite.tests) if (dump.has(test.id)) test.dump = true

await runTests(selected, fetch, false, base)
writeFileSync(out, JSON.stringify(getResults(), null, 2))
