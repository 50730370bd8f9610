import type { KeyParts } from './key.js'

/**
 * Remembers recent keys per route, by host and then by raw URL, so that a hot URL is hashed once
 * rather than on every hit. Only for requests whose key depends on nothing but host and URL (no
 * custom key material, no forwarding headers): nested maps, never a joined string, so two
 * different requests cannot meet in the memo. Bounded: a route's memo is dropped whole when it
 * passes `maxPerRoute` URLs, so random URLs cost a recomputation, never memory.
 */
export class KeyMemo {
  private readonly routes = new WeakMap<object, { size: number; hosts: Map<string, Map<string, KeyParts>> }>()

  constructor(private readonly maxPerRoute: number) {}

  get(route: object, host: string, url: string): KeyParts | undefined {
    return this.routes.get(route)?.hosts.get(host)?.get(url)
  }

  set(route: object, host: string, url: string, parts: KeyParts): void {
    let memo = this.routes.get(route)
    if (memo === undefined || memo.size >= this.maxPerRoute) {
      memo = { size: 0, hosts: new Map() }
      this.routes.set(route, memo)
    }
    let urls = memo.hosts.get(host)
    if (urls === undefined) memo.hosts.set(host, (urls = new Map()))
    urls.set(url, parts)
    memo.size++
  }
}
