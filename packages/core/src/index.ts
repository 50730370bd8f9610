/**
 * `@corral/core`: what an app uses — `createCache`, its options and reports, the errors, and the
 * stores to compose. Adapter authors import `@corral/core/adapter`; store authors
 * `@corral/core/store` and `@corral/core/testing`.
 */
export { Cache, createCache, type CacheOptions, type InvalidateSpec, type L2Options } from './cache.js'
export type { Duration } from './model/duration.js'
export { CorralError, ConfigError, StoreError, StoreUnavailableError, CallbackError, InternalError, OriginError, errors } from './model/errors.js'
export type { InvalidateSelectors } from './model/invalidation.js'
export type { WarmOptions, WarmReport, WarmTarget } from './warm.js'
export type { KeyMaterial, QueryRule } from './model/key.js'
export type { CacheHealth, CacheStats } from './metrics.js'
export type {
  CacheEvent,
  CachePlugin,
  CorralLogger,
  FillEvent,
  InvalidateEvent,
  L2Event,
  LookupEvent,
  ObservedCache,
  Operation,
  RevalidateEvent,
  StoreEvent,
} from './observe/events.js'
export { OPERATIONS } from './observe/events.js'
export { CHANNEL_NAMES } from './observe/observer.js'
export type { HealthOptions, HealthWindow } from './observe/health.js'
export { DEFAULT_STATUSES, type DefaultRouteOptions, type RouteOptions } from './model/options.js'
export type { BypassReason, NotStoredReason } from './model/policy.js'
export type { BreakerState } from './stores/breaker.js'
export type { EvictionPolicy } from './stores/eviction.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js'
export { RedisStore, type RedisClient, type RedisHealth, type RedisStoreOptions } from './stores/redis.js'
export { TieredStore, type TieredStoreOptions } from './stores/tiered.js'
