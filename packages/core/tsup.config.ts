import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', adapter: 'src/adapter/index.ts', store: 'src/store.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url (to load ioredis lazily) in the CommonJS build too.
  shims: true,
})
