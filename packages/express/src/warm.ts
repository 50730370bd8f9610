import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Cache, WarmOptions, WarmReport, WarmTarget } from '@corral/core'
import { assertCache } from './middleware.js'
import { replayInto } from './replay.js'

/**
 * Fills the cache by running each URL through the app, as the warm-on-start recipe does:
 * `await warm(app, cache, ['/', '/products'], { concurrency: 4, headers: { host: 'shop.example' } })`
 * (before or after `listen`). Resolves to a report of what was stored, what was not and why, and
 * what failed; one bad URL never rejects it.
 */
export function warm(app: (req: IncomingMessage, res: ServerResponse) => void, cache: Cache, targets: Iterable<WarmTarget>, options?: WarmOptions): Promise<WarmReport> {
  assertCache(cache, 'warm')
  return cache.warm(replayInto(app), targets, options)
}
