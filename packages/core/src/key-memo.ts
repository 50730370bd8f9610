import type { IncomingHttpHeaders } from 'node:http'
import { makeVariantKey, variantValue, type KeyParts } from './model/key.js'

/** URLs longer than this are hashed on every request rather than remembered. */
const MAX_URL = 2048
/** Map slots, the KeyParts object and string headers of one remembered URL, beyond its characters. */
const SLOT_BYTES = 240
/** A Map slot and its string headers for one remembered variant key, beyond its characters. */
const VARIANT_SLOT_BYTES = 120
/** Varied values longer than this (in all) are hashed on every request rather than remembered. */
const MAX_VARIANT = 1024

/**
 * Remembers recent keys per route, by host and then by raw URL, so that a hot URL is hashed once
 * rather than on every hit (and, for a varied response, its variant keys: see `variantKey`). Only for requests whose key depends on nothing but host and URL (no
 * custom key material, no forwarding headers): nested maps, never a joined string, so two
 * different requests cannot meet in the memo. Bounded in bytes across every route: past
 * `maxBytes` it starts again from empty, so random or huge URLs cost a recomputation, never memory.
 */
export class KeyMemo {
  private routes = new WeakMap<object, Map<string, Map<string, KeyParts>>>()
  /** Per Vary marker (the stored object), its variant keys by the request's varied values. */
  private variants = new WeakMap<object, Map<string, string>>()
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
    this.make(cost)
    let hosts = this.routes.get(route)
    if (hosts === undefined) this.routes.set(route, (hosts = new Map()))
    let urls = hosts.get(host)
    if (urls === undefined) hosts.set(host, (urls = new Map()))
    if (urls.has(url)) return
    urls.set(url, parts)
    this.held += cost
  }

  /**
   * `makeVariantKey(primary, marker.names, headers)`, remembered per marker object (an L1 entry,
   * so a hot varied URL hashes once, not on every hit) by the request's varied values, each
   * length-prefixed so that no two lists of values meet. `marker` is stored under `primary` only.
   */
  variantKey(primary: string, marker: { readonly names: readonly string[] }, headers: IncomingHttpHeaders): string {
    let values = ''
    for (const name of marker.names) {
      const v = variantValue(name, headers[name])
      values += v === null ? '-' : `${v.length}:${v}`
    }
    let keys = this.variants.get(marker)
    const known = keys?.get(values)
    if (known !== undefined && known.lastIndexOf(':') === primary.length && known.startsWith(primary)) return known
    const key = makeVariantKey(primary, marker.names, headers)
    if (values.length > MAX_VARIANT) return key
    this.make(VARIANT_SLOT_BYTES + 2 * (values.length + key.length))
    keys = this.variants.get(marker)
    if (keys === undefined) this.variants.set(marker, (keys = new Map()))
    keys.set(values, key)
    this.held += VARIANT_SLOT_BYTES + 2 * (values.length + key.length)
    return key
  }

  /** Room for `cost` more bytes: past `maxBytes`, everything is forgotten and counting starts again. */
  private make(cost: number): void {
    if (this.held + cost <= this.maxBytes) return
    this.routes = new WeakMap()
    this.variants = new WeakMap()
    this.held = 0
  }
}
