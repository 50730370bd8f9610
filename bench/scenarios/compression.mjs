// 9. Compression and the hit path (issue 13): where the `compression` middleware should go relative
// to Corral. Mounted inside (after) Corral, the compressed response is what Corral stores, once per
// coding (Corral narrows Accept-Encoding to one coding before the lookup), and a hit replays the
// stored gzip bytes; mounted outside (before) Corral, every hit is compressed again.
import { compare, measureModes } from '../lib/measure.mjs'

/** What a browser sends; Corral narrows it to gzip, the first of its default encodings. */
const HEADERS = { 'accept-encoding': 'gzip, deflate, br' }
/**
 * The reference route has no Corral to narrow the header, and compression 1.8 prefers br (quality
 * 4) when offered: it asks for gzip only, so that it compresses as the hits' responses are.
 */
const GZIP_ONLY = { 'accept-encoding': 'gzip' }

const MODES = [
  { key: 'plain', cache: 'corral', compression: 'none', serves: 'hit', xCache: 'HIT', contentEncoding: null, name: 'Corral hit, no compression' },
  { key: 'inside', cache: 'corral', compression: 'inside', serves: 'hit', xCache: 'HIT', contentEncoding: 'gzip', name: 'Corral hit, compression inside' },
  { key: 'outside', cache: 'corral', compression: 'outside', serves: 'hit', xCache: 'HIT', contentEncoding: 'gzip', name: 'Corral hit, compression outside' },
  { key: 'origin', cache: 'none', compression: 'outside', serves: 'origin', contentEncoding: 'gzip', headers: GZIP_ONLY, name: 'compressed route, no cache' },
]

export default {
  id: 'compression',
  title: 'Compression and the hit path',
  about:
    'Express 5, GET /data (2 KB JSON) with Accept-Encoding: gzip, deflate, br: a Corral hit with no compression, ' +
    'with the compression middleware (threshold 0) mounted inside Corral (`app.use(corral(cache)); ' +
    'app.use(compression())`: Corral stores the gzip response, 379 bytes, and a hit replays it) and mounted ' +
    'outside it (every hit is gzipped again), and, for reference, the compressed route with no cache, asked for ' +
    'gzip only (with no Corral to narrow the header, compression 1.8 would answer br). Before each run the probe ' +
    'checks that a repeated request, with the header the load sends, is a hit in the Corral modes (X-Cache: HIT) and ' +
    'carries Content-Encoding: gzip (none in the uncompressed mode). req/s ÷ the uncompressed hit of the same round.',
  async run(ctx) {
    const modes = []
    for (const m of MODES) {
      if (ctx.smoke && !['inside', 'outside'].includes(m.key)) continue
      modes.push({
        id: `express5-${m.key}`,
        label: `Express 5 ${m.name}`,
        server: { framework: 'express', cache: m.cache, version: '5', env: { BENCH_COMPRESSION: m.compression } },
        path: '/data',
        headers: m.headers ?? HEADERS,
        serves: m.serves,
        xCache: m.xCache,
        contentEncoding: m.contentEncoding,
      })
    }
    const measured = await measureModes(ctx, modes)
    const comparisons = []
    const add = (spec) => {
      if (measured[spec.num] && measured[spec.den]) comparisons.push(compare(measured, spec))
    }
    add({ id: 'express5-inside/plain', label: 'Express 5: Corral hit with compression inside ÷ hit without, req/s', num: 'express5-inside', den: 'express5-plain', metric: 'rps', target: { op: '>=', value: 0.9 } })
    add({ id: 'express5-outside/plain', label: 'Express 5: Corral hit with compression outside ÷ hit without, req/s', num: 'express5-outside', den: 'express5-plain', metric: 'rps' })
    add({ id: 'express5-inside/outside', label: 'Express 5: Corral hit with compression inside ÷ outside, req/s', num: 'express5-inside', den: 'express5-outside', metric: 'rps' })
    return { modes: measured, comparisons }
  },
}
