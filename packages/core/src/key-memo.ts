import type { KeyParts } from './model/key.js'

/** URLs longer than this are hashed on every request rather than remembered. */
const MAX_URL = 2048
/** Map slots, the KeyParts object and string headers of one remembered URL, beyond its characters. */
const SLOT_BYTES = 240

/**
 * Remembers recent keys per route, by host and then by raw URL, so that a hot URL is hashed once
 * rather than on every hit. Only for requests whose key depends on nothing but host and URL (no
 * custom key material, no forwarding headers): nested maps, never a joined string, so two
 * different requests cannot meet in the memo. Bounded in bytes across every route: past
 * `maxBytes` it starts again from empty, so random or huge URLs cost a recomputation, never memory.
 */
export class KeyMemo {
  private routes = new WeakMap<object, Map<string, Map<string, KeyParts>>>()
  private held = 0

  constructor(private readonly maxBytes: number) {}

  /** Bytes held (counted conservatively, two per character). */
  get bytes(): number {
    return this.held
  }

  get(route: object, host: string, url: string): KeyParts | undefined {
    return this.routes.get(route)?.get(host)?.get(url)
  }

  set(route: object, host: string, url: string, parts: KeyParts): void {
    if (url.length > MAX_URL || host.length > MAX_URL) return
    const cost = SLOT_BYTES + 2 * (url.length + host.length + parts.key.length + parts.path.length + parts.url.length)
    if (this.held + cost > this.maxBytes) {
      this.routes = new WeakMap()
      this.held = 0
    }
    let hosts = this.routes.get(route)
    if (hosts === undefined) this.routes.set(route, (hosts = new Map()))
    let urls = hosts.get(host)
    if (urls === undefined) hosts.set(host, (urls = new Map()))
    if (urls.has(url)) return
    urls.set(url, parts)
    this.held += cost
  }
}
