import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', adapter: 'src/adapter/index.ts', store: 'src/store.ts', testing: 'src/testing/index.ts', prometheus: 'src/export/prometheus.ts', opentelemetry: 'src/export/opentelemetry.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url (to load ioredis lazily) in the CommonJS build too.
  shims: true,
})
