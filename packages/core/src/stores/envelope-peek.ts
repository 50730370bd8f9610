/**
 * A look at an envelope (codec.ts) without decoding it: where its metadata is, and what the
 * metadata claims. For tools that list many keys (`corral keys`) and cannot afford to read every
 * body. Nothing here is verified: only `decodeEntry` says whether an entry is valid and would be
 * served.
 */

/** Bytes that hold the envelope's fixed head (magic, version, flags, MAC, metadata length). */
export const ENVELOPE_HEAD_BYTES = 42

const MAGIC = Buffer.from([0x43, 0x52, 0x4c, 0x00])
const FLAG_SIGNED = 0x01
const MAC_BYTES = 32
const MAX_META_BYTES = 256 * 1024

/** Where an envelope's metadata lies, read from its first `ENVELOPE_HEAD_BYTES` bytes. */
export interface EnvelopeHead {
  readonly version: number
  readonly signed: boolean
  /** Offset of the metadata JSON. */
  readonly metaOffset: number
  readonly metaLength: number
}

/** The head of an envelope, or undefined when `head` does not start like one. */
export function peekEnvelopeHead(head: Buffer): EnvelopeHead | undefined {
  if (head.length < 10 || MAGIC.compare(head, 0, 4, 0, 4) !== 0) return undefined
  const version = head[4] as number
  const flags = head[5] as number
  const signed = (flags & FLAG_SIGNED) !== 0
  const at = 6 + (signed ? MAC_BYTES : 0)
  if (head.length < at + 4) return undefined
  const metaLength = head.readUInt32BE(at)
  if (metaLength < 2 || metaLength > MAX_META_BYTES) return undefined
  return { version, signed, metaOffset: at + 4, metaLength }
}

/** What an envelope's metadata claims, unverified. */
export interface EnvelopeClaims {
  readonly kind: 'response' | 'vary'
  readonly status: number | undefined
  readonly url: string | undefined
  readonly path: string | undefined
  readonly tags: readonly string[]
  readonly bodyLength: number | undefined
  /** The request headers a Vary marker's variants are chosen by. */
  readonly names: readonly string[] | undefined
}

/** Reads the metadata JSON leniently (for display only); undefined when it is not an object of a known kind. */
export function peekEnvelopeClaims(meta: Buffer): EnvelopeClaims | undefined {
  let m: unknown
  try {
    m = JSON.parse(meta.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return undefined
  const o = m as Record<string, unknown>
  if (o.kind !== 'response' && o.kind !== 'vary') return undefined
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)
  const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined)
  return {
    kind: o.kind,
    status: num(o.status),
    url: str(o.url),
    path: str(o.path),
    tags: strings(o.tags) ?? [],
    bodyLength: num(o.bodyLength),
    names: strings(o.names),
  }
}
