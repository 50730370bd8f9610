import type { OutgoingHttpHeaders } from 'node:http'
import { createResponseEntry, createVaryEntry, storableHeaders, type Entry } from '../entry.js'
import { matchesSelectors, type NormalizedSelectors } from '../invalidation.js'
import { makeVariantKey, type KeyParts, type RequestView } from '../key.js'
import type { ResolvedRoute } from '../options.js'
import { responseStorability, type NotStoredReason, type Storability } from '../policy.js'
import type { Fence } from '../stores/types.js'
import type { LockGrant } from './lock.js'
import type { Flight } from './single-flight.js'

/** What a fill needs from the cache that owns it. */
export interface FillHost {
  now(): number
  readonly excludedHeaders: ReadonlySet<string>
  readonly tagHeaders: readonly string[]
  /** Reads the current entry at `key` (to extend a Vary marker); errors count as undefined. */
  peek(key: string): Entry | undefined
  /** Writes entries; resolves to whether they were written. `fence` is the fill's, if any. */
  write(writes: readonly (readonly [string, Entry])[], fence: Fence | undefined): boolean | Promise<boolean>
  resolveTags(route: ResolvedRoute, req: unknown): readonly string[] | undefined
  settled(fill: Fill, outcome: { stored: true } | { stored: false; reason: NotStoredReason }): void
}

/**
 * One origin response on its way into the cache. The adapter calls `begin` when the headers are
 * final, then `end` with the body, or `abandon`. Whatever happens, the fill settles exactly once
 * and its flight (if it leads one) releases its waiters.
 */
export class Fill {
  private storability: Extract<Storability, { storable: true }> | undefined
  private headerTags: string[] = []
  private status = 0
  private headers: OutgoingHttpHeaders = {}
  private invalidations: NormalizedSelectors[] | undefined
  private settledState = false

  constructor(
    private readonly host: FillHost,
    readonly parts: KeyParts,
    readonly view: RequestView,
    public route: ResolvedRoute,
    public req: unknown,
    private readonly flight: Flight | undefined,
    /** The fleet-wide lock this fill holds, released by the cache when it settles. */
    readonly grant?: LockGrant & { state: 'acquired' },
    /** Where the shared store's invalidation log stood when this fill began. */
    private readonly fence?: Fence,
  ) {}

  get settled(): boolean {
    return this.settledState
  }

  /** Largest body worth capturing for this fill. */
  get maxBodyBytes(): number {
    return this.route.maxBodyBytes
  }

  /**
   * The response headers are final. Reads tag headers, decides whether the response can be stored,
   * and returns whether the adapter should capture the body. Tag headers are for the cache only:
   * the adapter removes them (see `Cache.tagHeaders`) whatever this returns.
   */
  begin(status: number, headers: OutgoingHttpHeaders): boolean {
    if (this.settledState) return false
    for (const name of this.host.tagHeaders) {
      const v = headers[name]
      if (v === undefined) continue
      for (const t of (Array.isArray(v) ? v.join(',') : String(v)).split(/[\s,]+/)) if (t) this.headerTags.push(t)
    }
    const s = responseStorability(status, headers, this.route, this.host.now())
    if (!s.storable) {
      this.finish({ stored: false, reason: s.reason })
      return false
    }
    this.storability = s
    this.status = status
    this.headers = headers
    return true
  }

  /** The whole body, as the client received it. */
  end(body: Buffer): void {
    if (this.settledState) return
    const s = this.storability
    if (s === undefined) return this.abandon('aborted')
    if (body.length > this.route.maxBodyBytes) return this.abandon('too-large')
    const routeTags = this.host.resolveTags(this.route, this.req)
    if (routeTags === undefined) return this.abandon('error')
    const tags = this.headerTags.length === 0 ? routeTags : [...new Set([...routeTags, ...this.headerTags])]
    const { path, url, key } = this.parts
    if (this.invalidations?.some((sel) => matchesSelectors(sel, { path, url, tags }))) {
      // An invalidation landed while this response was being produced: it may predate the change.
      return this.abandon('invalidated')
    }
    const entry = createResponseEntry({
      status: this.status,
      headers: storableHeaders(this.headers, this.host.excludedHeaders),
      body,
      storedAt: this.host.now(),
      lifetimeMs: s.lifetimeMs,
      initialAge: s.initialAge,
      tags,
      path,
      url,
      routeLevel: this.route.routeLevel,
    })
    const writes: (readonly [string, Entry])[] =
      s.vary.length === 0
        ? [[key, entry]]
        : [
            [key, createVaryEntry(s.vary, entry, this.host.peek(key))],
            [makeVariantKey(key, s.vary, this.view.headers), entry],
          ]
    this.settledState = true
    // A store declines only entries too large for it.
    const done = (ok: boolean) => this.finish(ok ? { stored: true } : { stored: false, reason: 'too-large' })
    const written = this.host.write(writes, this.fence)
    if (typeof written === 'boolean') done(written)
    else written.then(done, () => done(false))
  }

  /** The response will not be stored (client went away, handler failed, body too large, ...). */
  abandon(reason: NotStoredReason): void {
    if (this.settledState) return
    this.finish({ stored: false, reason })
  }

  /** Called by the cache for every invalidation that lands while this fill is in flight. */
  invalidated(sel: NormalizedSelectors): void {
    ;(this.invalidations ??= []).push(sel)
  }

  private finish(outcome: { stored: true } | { stored: false; reason: NotStoredReason }): void {
    this.settledState = true
    this.host.settled(this, outcome)
    this.flight?.release(outcome.stored)
  }
}
