import v8 from 'node:v8'
import vm from 'node:vm'

/** `global.gc` without `--expose-gc` on the worker's command line. */
export function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

/** Heap in use after two full collections (the second sweeps what the first's finalizers freed). */
export function settledHeap(gc: () => void): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
