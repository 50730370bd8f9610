// 3. The miss path: a route whose responses are never cacheable (Cache-Control: no-store), with
// and without Corral in front. Every request reaches the origin either way; the difference is
// what Corral's lookup, key, fill and capture cost.
import { compare, measureModes } from '../lib/measure.mjs'

const FRAMEWORKS = [
  { key: 'express4', name: 'Express 4', server: { framework: 'express', version: '4' } },
  { key: 'express5', name: 'Express 5', server: { framework: 'express', version: '5' } },
  { key: 'fastify', name: 'Fastify 5', server: { framework: 'fastify' } },
]

export default {
  id: 'miss-path',
  title: 'Miss path overhead',
  about:
    'GET of a route that answers Cache-Control: no-store (2 KB JSON), so every request goes to the ' +
    'origin: the plain framework against the same app with Corral in front.',
  async run(ctx) {
    const modes = []
    for (const f of FRAMEWORKS) {
      if (ctx.smoke && f.key !== 'express5') continue
      if (!ctx.smoke) modes.push({ id: `${f.key}-plain`, label: `${f.name} no-store route`, server: { ...f.server, cache: 'none' }, path: '/nostore', serves: 'origin' })
      modes.push({ id: `${f.key}-corral`, label: `${f.name} no-store route + Corral`, server: { ...f.server, cache: 'corral' }, path: '/nostore', serves: 'origin', xCache: 'MISS' })
    }
    const measured = await measureModes(ctx, modes)
    const comparisons = []
    for (const f of FRAMEWORKS) {
      const [num, den] = [`${f.key}-corral`, `${f.key}-plain`]
      if (!measured[num] || !measured[den]) continue
      comparisons.push(compare(measured, { id: `${f.key}-miss`, label: `${f.name}: miss with Corral ÷ without, req/s`, num, den, metric: 'rps', target: { op: '>=', value: 0.95 } }))
      comparisons.push(compare(measured, { id: `${f.key}-miss-cpu`, label: `${f.name}: miss with Corral ÷ without, CPU per request`, num, den, metric: 'cpuUsPerReq' }))
    }
    return { modes: measured, comparisons }
  },
}
