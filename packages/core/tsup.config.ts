import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', adapter: 'src/adapter/index.ts', store: 'src/store.ts', testing: 'src/testing/index.ts', prometheus: 'src/export/prometheus.ts', opentelemetry: 'src/export/opentelemetry.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // Shared chunks in both formats: every entry point (the root, adapter, store, prometheus, ...)
  // uses one copy of each class, so \`instanceof ConfigError\` holds across them in CommonJS too.
  splitting: true,
  target: 'node20',
  // import.meta.url (to load ioredis lazily) in the CommonJS build too.
  shims: true,
})
