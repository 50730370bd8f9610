import { defineConfig } from 'tsup'

export default defineConfig({
  // A command, not a library: one ESM file (src/bin.ts keeps its #! line), no types.
  entry: { bin: 'src/bin.ts' },
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
})
