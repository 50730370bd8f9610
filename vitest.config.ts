import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources, never against dist/: a stale build must not
// make a test pass or fail. The built output is checked by scripts/check-exports.mjs.
const packages = ['core', 'express', 'fastify', 'node'] as const

const sourceOf = (name: string): string =>
  fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url))

export default defineConfig({
  resolve: {
    // Exact matches only, so that a deep import such as '@corral/core/dist/x' is not rewritten
    // into a path that does not exist. The adapters' own `import ... from '@corral/core'` goes
    // through the same alias, so a test and an adapter share one instance of core (instanceof
    // on errors and stores keeps working).
    alias: [
      ...packages.map((name) => ({
        find: new RegExp(`^@corral/${name}$`),
        replacement: sourceOf(name),
      })),
      { find: /^@corral\/core\/adapter$/, replacement: fileURLToPath(new URL('./packages/core/src/adapter/index.ts', import.meta.url)) },
      { find: /^@corral\/core\/store$/, replacement: fileURLToPath(new URL('./packages/core/src/store.ts', import.meta.url)) },
      { find: /^@corral\/core\/testing$/, replacement: fileURLToPath(new URL('./packages/core/src/testing/index.ts', import.meta.url)) },
      { find: /^@corral\/core\/prometheus$/, replacement: fileURLToPath(new URL('./packages/core/src/export/prometheus.ts', import.meta.url)) },
      { find: /^@corral\/core\/opentelemetry$/, replacement: fileURLToPath(new URL('./packages/core/src/export/opentelemetry.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Redis-backed tests start their own redis-server; give them room on a slow CI machine.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Child processes (redis-server, example apps) are easier to clean up per forked worker.
    pool: 'forks',
    typecheck: {
      // Type tests (*.test-d.ts) run with tsc as part of the normal `vitest run`; a type error
      // in one of them, or in a source file it pulls in, fails the run.
      enabled: true,
      include: ['packages/*/test/**/*.test-d.ts', 'test/**/*.test-d.ts'],
      tsconfig: './test/tsconfig.json',
      ignoreSourceErrors: false,
    },
  },
})
