// 1. Express 4 and 5: what a cache hit costs next to the uncached route and to the other caches.
import { compare, measureModes } from '../lib/measure.mjs'

const CACHES = [
  { key: 'const', cache: 'none', path: '/data', serves: 'origin', name: 'constant route (res.send)' },
  { key: 'raw', cache: 'none', path: '/raw', serves: 'origin', name: 'raw res.end (floor)' },
  { key: 'map', cache: 'map', path: '/data', serves: 'hit', name: 'Map cache hit' },
  { key: 'apicache', cache: 'apicache', path: '/data', serves: 'hit', name: 'apicache hit' },
  { key: 'corral', cache: 'corral', path: '/data', serves: 'hit', name: 'Corral L1 hit', xCache: 'HIT' },
]

export default {
  id: 'express-hit',
  title: 'Express hit path',
  about:
    'GET of a 2 KB JSON on Express 4 and 5: the constant route (res.send of a prebuilt string), a raw ' +
    'res.end of the same bytes (the floor), and hits of an 18-line Map cache, apicache and Corral. ' +
    'req/s and p99 at saturation with the server on one core.',
  async run(ctx) {
    const modes = []
    for (const version of ['4', '5']) {
      for (const c of CACHES) {
        const id = `express${version}-${c.key}`
        if (ctx.smoke && !['express5-map', 'express5-corral'].includes(id)) continue
        modes.push({ id, label: `Express ${version} ${c.name}`, server: { framework: 'express', cache: c.cache, version }, path: c.path, serves: c.serves, xCache: c.xCache })
      }
    }
    const measured = await measureModes(ctx, modes)
    const comparisons = []
    const add = (spec) => {
      if (measured[spec.num] && measured[spec.den]) comparisons.push(compare(measured, spec))
    }
    for (const v of ['4', '5']) {
      const m = (k) => `express${v}-${k}`
      add({ id: `${m('corral')}/map`, label: `Express ${v}: Corral hit ÷ Map cache hit, req/s`, num: m('corral'), den: m('map'), metric: 'rps', target: { op: '>=', value: 1 } })
      add({ id: `${m('corral')}/apicache`, label: `Express ${v}: Corral hit ÷ apicache hit, req/s`, num: m('corral'), den: m('apicache'), metric: 'rps', target: { op: '>=', value: 1.15 } })
      add({ id: `${m('corral')}/map-p99`, label: `Express ${v}: Corral hit ÷ Map cache hit, p99 latency`, num: m('corral'), den: m('map'), metric: 'p99Ms', target: { op: '<=', value: 1 } })
      add({ id: `${m('corral')}/const`, label: `Express ${v}: Corral hit ÷ constant route, req/s`, num: m('corral'), den: m('const'), metric: 'rps' })
      add({ id: `${m('corral')}/raw`, label: `Express ${v}: Corral hit ÷ raw res.end floor, req/s`, num: m('corral'), den: m('raw'), metric: 'rps' })
      add({ id: `${m('apicache')}/map`, label: `Express ${v}: apicache hit ÷ Map cache hit, req/s`, num: m('apicache'), den: m('map'), metric: 'rps' })
    }
    return { modes: measured, comparisons }
  },
}
