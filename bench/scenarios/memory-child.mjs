// L1 memory, measured in a process of its own (started with --expose-gc by scenarios/memory.mjs):
//   node --expose-gc memory-child.mjs <entries> <maxBytes>
// Stores <entries> distinct 2 KB responses through Corral's core (the same handle → fill.begin →
// fill.end sequence the adapters run on a miss) and prints one JSON line with process memory
// before and after, both after full garbage collections.
import { createCache } from '@corral/core'
import { BODY_BYTES, JSON_2K_BUFFER } from '../lib/payload.mjs'

const [entries, maxBytes] = [Number(process.argv[2]), Number(process.argv[3])]
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')

function settle() {
  for (let i = 0; i < 4; i++) globalThis.gc()
  return process.memoryUsage()
}

/** What Express sends for the constant route, with per-response strings as a real origin makes them. */
function headersFor(i) {
  return {
    'x-powered-by': ['Ex', 'press'].join(''),
    'content-type': ['application/json', 'charset=utf-8'].join('; '),
    'content-length': String(BODY_BYTES),
    etag: `W/"800-${i.toString(36).padStart(27, 'Q')}"`,
  }
}

/** A distinct 2 KB body: the shared payload with the entry number written into it. */
function bodyFor(i) {
  const b = Buffer.from(JSON_2K_BUFFER) // a slice of Node's shared pool, like most small response bodies
  b.write(String(i).padStart(8, '0'), 7, 'latin1')
  return b
}

function fill(cache, route, n, host) {
  for (let i = 0; i < n; i++) {
    const view = { method: 'GET', url: `/products/${i}`, headers: { host, accept: '*/*' } }
    const d = cache.handle(view, route, null)
    if (d.type !== 'miss' || d.fill == null) throw new Error(`expected a miss with a fill for ${view.url}, got ${d.type}`)
    if (!d.fill.begin(200, headersFor(i))) throw new Error('a plain 200 with a ttl was not storable')
    d.fill.end(bodyFor(i))
  }
}

// Warm up the code paths in a throwaway cache first, so the baseline includes compiled code.
{
  const warm = createCache({ ttl: '1h', maxBytes: 64 * 1024 * 1024 })
  fill(warm, warm.route(undefined, 'options.'), 2000, 'warm.local')
  await warm.close()
}

const cache = createCache({ ttl: '1h', maxBytes })
const route = cache.route(undefined, 'options.')
const before = settle()
const started = performance.now()
fill(cache, route, entries, 'bench.local')
const fillMs = performance.now() - started
const after = settle()
const stats = cache.stats()
process.stdout.write(
  JSON.stringify({
    entries,
    maxBytes,
    bodyBytes: BODY_BYTES,
    fillMs,
    stored: stats.entries,
    accountedBytes: stats.bytes,
    before: pick(before),
    after: pick(after),
    peakRss: process.resourceUsage().maxRSS * 1024,
  }) + '\n',
)

function pick(m) {
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}
