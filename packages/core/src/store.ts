/**
 * `@corral/core/store`: what a store implementation builds on — the contract (`CacheStore`, and
 * `LocalStore` / `SharedStore` for the two tiers of `TieredStore`), the entries it holds, the
 * selectors it invalidates by, and the envelope Corral's Redis store writes (to reuse for another
 * shared store). Its behaviour is checked by the suite in `@corral/core/testing`.
 */
export { decodeEntry, encodeEntry, type DecodeFailure, type DecodeResult } from './stores/codec.js'
export { ageOf, createResponseEntry, createVaryEntry, type Entry, type HeaderValue, type ResponseEntry, type StoredHeaders, type VaryEntry } from './model/entry.js'
export type { CorralError } from './model/errors.js'
export { ALL, matchesSelectors, normalizeSelectors, type NormalizedSelectors } from './model/invalidation.js'
export type {
  CacheStore,
  Fence,
  FillLock,
  FlightOutcome,
  LocalStore,
  LockGrant,
  MaybePromise,
  SetResult,
  SharedStore,
  StoreHealth,
  StoreHost,
} from './stores/types.js'
// For tools that read a namespace from outside an app (the `corral` CLI): the keys a request is
// stored under, Corral's Redis layout, a look at envelopes without decoding them, eviction.
export { makePrimaryKey, makeVariantKey, type KeyParts, type QueryRule, type RequestView } from './model/key.js'
export type { InvalidateSelectors } from './model/invalidation.js'
export { evictionFromInfo, type EvictionPolicy } from './stores/eviction.js'
export {
  busChannel,
  classifyKey,
  DEFAULT_NAMESPACE,
  logKey,
  NAMESPACE_PATTERN,
  parseIndexMember,
  pathIndexKey,
  prefixIndexKey,
  tagIndexKey,
  type RedisKeyKind,
} from './stores/redis-layout.js'
export { ENVELOPE_HEAD_BYTES, peekEnvelopeClaims, peekEnvelopeHead, type EnvelopeClaims, type EnvelopeHead } from './stores/envelope-peek.js'
