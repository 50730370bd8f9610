// 6. The Redis tier: what a hit costs when every hit is read from Redis (Corral with no L1, its
// RedisStore alone: one EVAL of a script answering GET and PTTL, and the decoding of a binary envelope per request), next
// to Corral's L1 hit and to the least a hand-rolled Redis cache can do (ioredis getBuffer, then
// writeHead + end of the bytes). On a redis-server the bench starts itself, pinned on the load
// generator's core (core 1): the server core stays the Node server's alone, so its CPU per
// request is comparable with every other scenario's; Redis's own CPU is measured from /proc too.
import { compare, measureModes } from '../lib/measure.mjs'
import { startRedis } from '../lib/redis.mjs'

const MODES = [
  { key: 'l1', cache: 'corral', name: 'Corral L1 hit', xCache: 'HIT' },
  { key: 'l2', cache: 'corral-l2', name: 'Corral L2-only hit', xCache: 'HIT' },
  { key: 'raw', cache: 'redis-raw', name: 'raw ioredis getBuffer' },
]

export default {
  id: 'l2-hit',
  title: 'Redis (L2) hit path',
  about:
    'GET of a 2 KB JSON on Express 5: Corral\'s L1 hit, Corral with no L1 (a RedisStore alone, so every hit ' +
    'is one EVAL to Redis (a script answering GET and PTTL together) and the decoding of the stored envelope), and a raw middleware that ' +
    'answers with ioredis getBuffer of the same body and one writeHead + end (the least a hand-rolled Redis ' +
    'cache costs). Redis is a redis-server the bench starts on a free port of 127.0.0.1 (no persistence), ' +
    'pinned on the load generator\'s core 1, so the server core stays the Node server\'s alone; its CPU per ' +
    'request (from /proc) is shown next to the server\'s.',
  async run(ctx) {
    const redis = await startRedis(ctx.log)
    ctx.log(`  redis-server pid ${redis.pid} on ${redis.url}, pinned on the load generator's core`)
    try {
      const modes = MODES.filter((m) => !ctx.smoke || m.key !== 'l1').map((m) => ({
        id: `express5-${m.key}`,
        label: `Express 5 ${m.name}`,
        server: { framework: 'express', version: '5', cache: m.cache, env: { BENCH_REDIS_URL: redis.url } },
        path: '/data',
        serves: 'hit',
        xCache: m.xCache,
        sidecars: { redis },
      }))
      // A cold server under 64 connections can take longer than the 50 ms read deadline on its first
      // requests (a miss, so an origin call, which fails a hit mode): the smoke, which has no
      // warm-up otherwise, gets one second here.
      const measured = await measureModes({ ...ctx, warmup: Math.max(ctx.warmup, 1) }, modes)
      const comparisons = []
      const add = (spec) => {
        if (measured[spec.num] && measured[spec.den]) comparisons.push(compare(measured, spec))
      }
      const [l1, l2, raw] = ['express5-l1', 'express5-l2', 'express5-raw']
      add({ id: 'l2/l1', label: 'Express 5: Corral L2-only hit ÷ Corral L1 hit, req/s', num: l2, den: l1, metric: 'rps', target: { op: '>=', value: 0.85 } })
      add({ id: 'l2/raw', label: 'Express 5: Corral L2-only hit ÷ raw ioredis getBuffer, req/s', num: l2, den: raw, metric: 'rps' })
      add({ id: 'raw/l1', label: 'Express 5: raw ioredis getBuffer ÷ Corral L1 hit, req/s', num: raw, den: l1, metric: 'rps' })
      add({ id: 'l2/l1-p99', label: 'Express 5: Corral L2-only hit ÷ Corral L1 hit, p99 latency', num: l2, den: l1, metric: 'p99Ms' })
      add({ id: 'l2/raw-p99', label: 'Express 5: Corral L2-only hit ÷ raw ioredis getBuffer, p99 latency', num: l2, den: raw, metric: 'p99Ms' })
      add({ id: 'l2/raw-cpu', label: 'Express 5: Corral L2-only hit ÷ raw ioredis getBuffer, server CPU per request', num: l2, den: raw, metric: 'cpuUsPerReq' })
      add({ id: 'l2/raw-total-cpu', label: 'Express 5: Corral L2-only hit ÷ raw ioredis getBuffer, server + Redis CPU per request', num: l2, den: raw, metric: 'totalCpuUsPerReq' })
      return { modes: measured, comparisons }
    } finally {
      await redis.stop()
    }
  },
}
