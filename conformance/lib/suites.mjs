// The test suites exactly as the package's cli.mjs runs them: tests/index.mjs, then the
// Surrogate-Control suite.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export async function suites() {
  const { default: index } = await import('http-cache-tests/tests/index.mjs')
  const { default: surrogate } = await import('http-cache-tests/tests/surrogate-control.mjs')
  return [...index, surrogate]
}

/** The installed package's version. */
export function suiteVersion() {
  return JSON.parse(readFileSync(require.resolve('http-cache-tests/package.json'), 'utf8')).version
}
