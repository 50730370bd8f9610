/**
 * `@corral/core/testing`: the store contract as a vitest suite, for your own store as for Corral's
 * (`runStoreSuite(name, factory, traits)`), with the builders it uses. Needs `vitest`.
 */
export {
  binary,
  eventually,
  expectSameResponse,
  fresh,
  isPromise,
  keysOf,
  present,
  put,
  response,
  sleep,
  TestHost,
  uniqueNamespace,
  varied,
  type Built,
  type EntrySpec,
  type FactoryOptions,
  type StoreFactory,
  type StoreTraits,
  type StoreUnderTest,
  type VaryBuilt,
} from './fixtures.js'
export { runStoreSuite } from './store-suite.js'
