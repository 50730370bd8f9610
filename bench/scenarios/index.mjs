// Every scenario the bench runs, in order. A scenario is one module whose default export is
// { id, title, about, run(ctx) } and whose run resolves to any of:
//   modes        throughput results per mode (lib/measure.mjs measureModes)
//   comparisons  per-round ratios between modes (lib/measure.mjs compare), with optional targets
//   targets      other pass/fail checks: { id, text, measured, met }
//   tables       extra tables for the report: { title, columns, rows }
// To add one, write the module and list it here; `--only=<id>` runs it alone.
import compression from './compression.mjs'
import expiryCliff from './expiry-cliff.mjs'
import expressHit from './express-hit.mjs'
import fastifyHit from './fastify-hit.mjs'
import l2Hit from './l2-hit.mjs'
import memory from './memory.mjs'
import missPath from './miss-path.mjs'
import observe from './observe.mjs'
import stampede from './stampede.mjs'

export const scenarios = [expressHit, fastifyHit, missPath, stampede, memory, l2Hit, expiryCliff, observe, compression]
