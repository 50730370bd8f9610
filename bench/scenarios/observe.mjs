// 8. What observing a hit costs: Corral's hit with no plugin, with the Prometheus export, with a
// diagnostics_channel subscriber on every corral:* channel, and with a plugin whose hooks do
// nothing, on Express 5 and Fastify 5; each ÷ the plain hit of the same round.
import { compare, measureModes } from '../lib/measure.mjs'

const OBSERVE = [
  { key: 'plain', observe: 'none', name: 'Corral hit, nothing observing' },
  { key: 'prometheus', observe: 'prometheus', name: 'Corral hit + Prometheus export' },
  { key: 'diagnostics', observe: 'diagnostics', name: 'Corral hit + diagnostics_channel subscriber' },
  { key: 'plugin', observe: 'plugin', name: 'Corral hit + empty plugin' },
]

export default {
  id: 'observe',
  title: 'Observation on the hit path',
  about:
    'GET of a 2 KB JSON answered from L1 on Express 5 and Fastify 5, with nothing observing, with the ' +
    '@corral/core/prometheus plugin on a prom-client registry, with a subscriber on every corral:* tracing ' +
    'channel, and with a plugin whose hooks do nothing. req/s (and Fastify server CPU per request) ÷ the ' +
    'plain hit in the same round.',
  async run(ctx) {
    const modes = []
    for (const framework of ['express', 'fastify']) {
      for (const o of OBSERVE) {
        if (ctx.smoke && framework === 'express' && o.key !== 'prometheus') continue
        if (ctx.smoke && framework === 'fastify') continue
        modes.push({
          id: `${framework}-${o.key}`,
          label: `${framework === 'express' ? 'Express 5' : 'Fastify 5'} ${o.name}`,
          server: { framework, cache: 'corral', version: '5', env: { BENCH_OBSERVE: o.observe } },
          path: '/data',
          serves: 'hit',
          xCache: 'HIT',
        })
      }
    }
    const measured = await measureModes(ctx, modes)
    const comparisons = []
    const add = (spec) => {
      if (measured[spec.num] && measured[spec.den]) comparisons.push(compare(measured, spec))
    }
    for (const framework of ['express', 'fastify']) {
      const name = framework === 'express' ? 'Express 5' : 'Fastify 5'
      for (const o of OBSERVE.slice(1)) {
        add({ id: `${framework}-${o.key}/plain`, label: `${name}: hit with ${o.key} ÷ plain hit, req/s`, num: `${framework}-${o.key}`, den: `${framework}-plain`, metric: 'rps', target: o.key === 'plugin' ? undefined : { op: '>=', value: 0.95 } })
        if (framework === 'fastify') add({ id: `fastify-${o.key}/plain-cpu`, label: `Fastify 5: hit with ${o.key} ÷ plain hit, CPU per request`, num: `fastify-${o.key}`, den: 'fastify-plain', metric: 'cpuUsPerReq' })
      }
    }
    return { modes: measured, comparisons }
  },
}
