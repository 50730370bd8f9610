// 2. Fastify 5: a hit's server CPU per request next to the constant route, and req/s next to
// fastify-lcache. CPU per request is the fairer measure here: a fast Fastify server can saturate
// the load generator before itself.
import { compare, measureModes } from '../lib/measure.mjs'

const CACHES = [
  { key: 'const', cache: 'none', serves: 'origin', name: 'constant route' },
  { key: 'map', cache: 'map', serves: 'hit', name: 'onRequest Map cache hit' },
  { key: 'lcache', cache: 'lcache', serves: 'hit', name: 'fastify-lcache hit' },
  { key: 'corral', cache: 'corral', serves: 'hit', name: 'Corral L1 hit', xCache: 'HIT' },
]

export default {
  id: 'fastify-hit',
  title: 'Fastify hit path',
  about:
    'GET of a 2 KB JSON on Fastify 5: the constant route, a minimal onRequest Map cache, fastify-lcache ' +
    'and Corral. Server CPU per request (utime + stime from /proc/<pid>/stat over the measured window, ' +
    'divided by the requests served) as well as req/s.',
  async run(ctx) {
    const modes = CACHES.filter((c) => !ctx.smoke || c.key === 'corral').map((c) => ({
      id: `fastify-${c.key}`,
      label: `Fastify 5 ${c.name}`,
      server: { framework: 'fastify', cache: c.cache },
      path: '/data',
      serves: c.serves,
      xCache: c.xCache,
    }))
    const measured = await measureModes(ctx, modes)
    const comparisons = []
    const add = (spec) => {
      if (measured[spec.num] && measured[spec.den]) comparisons.push(compare(measured, spec))
    }
    add({ id: 'fastify-corral/const-cpu', label: 'Fastify: Corral hit ÷ constant route, CPU per request', num: 'fastify-corral', den: 'fastify-const', metric: 'cpuUsPerReq', target: { op: '<=', value: 1.05 } })
    add({ id: 'fastify-corral/lcache', label: 'Fastify: Corral hit ÷ fastify-lcache hit, req/s', num: 'fastify-corral', den: 'fastify-lcache', metric: 'rps', target: { op: '>=', value: 1.4 } })
    add({ id: 'fastify-corral/map-cpu', label: 'Fastify: Corral hit ÷ Map cache hit, CPU per request', num: 'fastify-corral', den: 'fastify-map', metric: 'cpuUsPerReq' })
    add({ id: 'fastify-lcache/const-cpu', label: 'Fastify: fastify-lcache hit ÷ constant route, CPU per request', num: 'fastify-lcache', den: 'fastify-const', metric: 'cpuUsPerReq' })
    add({ id: 'fastify-corral/const', label: 'Fastify: Corral hit ÷ constant route, req/s', num: 'fastify-corral', den: 'fastify-const', metric: 'rps' })
    return { modes: measured, comparisons }
  },
}
