/**
 * Whether Redis may evict Corral's keys. Invalidation by tag, path and prefix finds entries through
 * index sets; a Redis that evicts an index set but keeps its entries (any `maxmemory-policy` other
 * than `noeviction` once `maxmemory` is reached) silently undoes invalidations. So Corral reads the
 * policy and uses Redis for entries only when nothing can be evicted.
 */
export interface EvictionPolicy {
  /** `maxmemory-policy` as Redis reports it (`noeviction`, `allkeys-lru`, ...), or `unknown`. */
  readonly policy: string
  /** `maxmemory` in bytes (0: no limit, so nothing is ever evicted), or undefined when unknown. */
  readonly maxmemory: number | undefined
  /** True when Redis never evicts: invalidation can rely on its index sets. */
  readonly safe: boolean
  /** Why it is not safe, or that safety was assumed (`l2.assumeNoEviction`). */
  readonly note?: string
}

export const UNCHECKED: EvictionPolicy = Object.freeze({ policy: 'unknown', maxmemory: undefined, safe: false, note: 'not checked yet' })

/** Reads `maxmemory_policy` and `maxmemory` from the text of `INFO memory`. */
export function evictionFromInfo(info: string): EvictionPolicy {
  const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim()
  const policy = field('maxmemory_policy')
  const max = field('maxmemory')
  const maxmemory = max !== undefined && /^\d+$/.test(max) ? Number(max) : undefined
  if (policy === undefined) return { policy: 'unknown', maxmemory, safe: false, note: 'INFO memory did not report maxmemory_policy' }
  return classify(policy, maxmemory)
}

/** The least safe of several servers' policies (every master of a Cluster). */
export function leastSafe(policies: readonly EvictionPolicy[]): EvictionPolicy {
  return policies.find((p) => !p.safe) ?? policies[0] ?? UNCHECKED
}

function classify(policy: string, maxmemory: number | undefined): EvictionPolicy {
  if (policy === 'noeviction') return { policy, maxmemory, safe: true }
  if (maxmemory === 0) return { policy, maxmemory, safe: true, note: 'maxmemory is 0: nothing is evicted' }
  return {
    policy,
    maxmemory,
    safe: false,
    note: `maxmemory-policy ${policy} may evict index sets and undo invalidations; set it to noeviction`,
  }
}
