/**
 * The store contract (`CacheStore` in stores/types.ts), written once and run against every store:
 * Corral's own (test/stores: memory, redis, tiered, cluster) and yours — `runStoreSuite(name,
 * factory, traits)` in a vitest file.
 *
 * Entries are built with the real constructors (`createResponseEntry`, `createVaryEntry`) under
 * real keys (`makePrimaryKey`, `makeVariantKey`), exactly as the cache builds them. "get" may
 * answer synchronously or with a promise; every call is awaited. Every test ends by checking that
 * the store reported no error and refused no entry: a store that swallows a failure cannot pass.
 *
 * Where the stores legitimately differ, the difference is a trait of the factory (see
 * `StoreTraits`) and the test asserts what that store does, so the difference stays documented and
 * checked instead of skipped.
 */

import { describe, expect, it } from 'vitest'
import { entriesContract } from './contract-entries.js'
import { invalidationContract } from './contract-invalidation.js'
import { limitsContract } from './contract-limits.js'
import { DEFAULT_MAX_ENTRY, uniqueNamespace, type StoreFactory, type StoreTraits, type StoreUnderTest } from './fixtures.js'

/**
 * Runs the store contract against `factory`. Each test gets a fresh store on a fresh namespace
 * and cleans up after itself, so tests never see each other's entries.
 */
export function runStoreSuite(name: string, factory: StoreFactory, traits: StoreTraits): void {
  describe(`store contract: ${name}`, () => {
    async function open(maxEntryBytes = DEFAULT_MAX_ENTRY): Promise<StoreUnderTest> {
      return factory({ namespace: uniqueNamespace(), maxEntryBytes })
    }

    /** Opens a store, runs `body`, checks that nothing was reported or refused, cleans up. */
    function test(title: string, body: (s: StoreUnderTest) => Promise<void>, maxEntryBytes?: number): void {
      it(title, async () => {
        const s = await open(maxEntryBytes)
        try {
          await body(s)
          expect(s.host.reports.map((e) => `${e.message}: ${String(e.cause)}`)).toEqual([])
          expect(s.host.rejectedCount).toBe(0)
        } finally {
          await s.cleanup()
        }
      })
    }

    entriesContract(test, traits)
    invalidationContract(test)
    limitsContract(test, traits)
  })
}
