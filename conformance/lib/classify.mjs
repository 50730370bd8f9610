// Classifying results with the package's own rules: lib/display.mjs `determineTestResult`, the
// function cache-tests.fyi and the package's CLI use. It turns a test's raw result (true, or
// [error name, message]) into one of the site's symbols from the test's `kind` (required when
// absent, optimal, check), its `depends_on` (a dependency that did not pass makes it ⚪️), and
// setup failures (🔹, or ↻ for a retry). Nothing here decides a result; it only counts them.
import { determineTestResult } from 'http-cache-tests/lib/display.mjs'

/** The symbols determineTestResult returns (the third member of its result), by name. */
export const OUTCOMES = {
  pass: '✅',
  fail: '⛔️',
  optional_fail: '⚠️',
  yes: 'Y',
  no: 'N',
  setup_fail: '🔹',
  harness_fail: '⁉️',
  dependency_fail: '⚪️',
  retry: '↻',
  untested: '-',
}
const BY_SYMBOL = new Map(Object.entries(OUTCOMES).map(([name, symbol]) => [symbol, name]))

export const KINDS = ['required', 'optimal', 'check']

/** A test's kind as the package reads it: an absent kind is required. */
export const kindOf = (test) => test.kind ?? 'required'

/** The tests a command-line run executes: the runner skips browser-only tests. */
export function cliTests(suites) {
  return suites.flatMap((suite) => suite.tests.filter((t) => t.browser_only !== true).map((t) => ({ ...t, suite: suite.name })))
}

/**
 * Every test's outcome name and the counts by kind.
 * @param {object[]} suites the suites as run (suites.mjs)
 * @param {Record<string, true | [string, string]>} results raw results (a file in the package's
 *   results/, or what client.mjs wrote)
 * @param {Set<string>} [only] count only these test ids
 */
export function classify(suites, results, only) {
  const counts = Object.fromEntries(KINDS.map((k) => [k, Object.fromEntries(Object.keys(OUTCOMES).map((o) => [o, 0]))]))
  const outcomes = {}
  for (const test of cliTests(suites)) {
    if (only !== undefined && !only.has(test.id)) continue
    const symbol = determineTestResult(suites, test.id, results)[2]
    const outcome = BY_SYMBOL.get(symbol)
    if (outcome === undefined) throw new Error(`unknown result symbol ${symbol} for ${test.id}`)
    outcomes[test.id] = outcome
    counts[kindOf(test)][outcome]++
  }
  return { counts, outcomes }
}

/** The tests of `kind` with `outcome`, with their names and the raw result's message. */
export function listed(suites, results, outcomes, kind, outcome) {
  return cliTests(suites)
    .filter((t) => kindOf(t) === kind && outcomes[t.id] === outcome)
    .map((t) => ({ id: t.id, suite: t.suite, name: t.name, message: Array.isArray(results[t.id]) ? results[t.id].join(': ') : undefined }))
}
