/**
 * `@corral/core/testing`: the store contract as a vitest suite, for your own store as for Corral's
 * (`runStoreSuite(name, factory, traits)`), with the builders it uses. Needs `vitest`.
 */
export * from './store-suite.js'
