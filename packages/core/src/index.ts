export { Cache, createCache, type CacheHealth, type CacheOptions, type CompiledInvalidation, type Decision, type InvalidateSpec, type L2Options } from './cache.js'
export { parseCacheControl, deltaSeconds, type CacheControl } from './cache-control.js'
export { describeValue, parseDuration, type Duration } from './duration.js'
export { ageOf, type Entry, type ResponseEntry, type VaryEntry, type StoredHeaders, type HeaderValue } from './entry.js'
export { CorralError, ConfigError, StoreError, StoreUnavailableError, CallbackError, InternalError, errors } from './errors.js'
export { Fill, type HeadDecision } from './fill/fill.js'
export { SingleFlight, Flight, type FlightOutcome } from './fill/single-flight.js'
export { normalizeSelectors, matchesSelectors, type InvalidateSelectors, type NormalizedSelectors } from './invalidation.js'
export {
  canonicalQuery,
  makePrimaryKey,
  makeVariantKey,
  normalizePercent,
  type KeyMaterial,
  type KeyParts,
  type QueryParam,
  type QueryRule,
  type RequestView,
} from './key.js'
export type { CacheStats } from './metrics.js'
export { DEFAULT_STATUSES, type DefaultRouteOptions, type ResolvedRoute, type RouteOptions } from './options.js'
export {
  etagMatches,
  freshnessLifetime,
  isNotModified,
  parseVary,
  requestBypassReason,
  responseStorability,
  type BypassReason,
  type NotStoredReason,
  type Storability,
} from './policy.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js'
export { RedisStore, type RedisClient, type RedisHealth, type RedisStoreOptions } from './stores/redis.js'
export { TieredStore, type TieredStoreOptions } from './stores/tiered.js'
export { CircuitBreaker, type BreakerState } from './stores/breaker.js'
export type { CacheStore, FillLock, LocalStore, LockGrant, MaybePromise, SetResult, SharedStore, StoreHealth, StoreHost } from './stores/types.js'
export type { EvictionPolicy } from './stores/eviction.js'
export { BodyCapture } from './capture.js'
