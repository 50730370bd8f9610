import type { OutgoingHttpHeaders } from 'node:http'
import { BodyCapture } from './capture.js'
import type { Fill, HeadDecision, Revalidated } from '../fill/fill.js'
import type { RequestView } from '../model/key.js'
import type { Decision } from '../read-path.js'

/** A decision that sends the request to the origin: what a tap reports the response to. */
export type OriginDecision = Exclude<Decision, { type: 'hit' }>

/** What a tap needs of the cache. */
export interface TapHost {
  /** Lower-case name of the cache status header, or undefined when none is sent. */
  readonly cacheStatusHeader: string | undefined
  /** Lower-case response headers that carry tags, for the cache only. */
  readonly tagHeaders: readonly string[]
  /** This cache's name in Cache-Status (RFC 9211), or undefined when none is sent. */
  readonly cacheStatus: string | undefined
  /** An unsafe request was answered with `status`: drop what that makes stale. Never throws. */
  afterUnsafe(view: RequestView, status: number, headers: OutgoingHttpHeaders): void
}

/** Where the tap reads a response's headers, only when it needs them (a Node response, a Fastify reply). */
export interface HeadSource {
  getHeaders(): OutgoingHttpHeaders
}

/** What the adapter does to the head of a response before it goes out. */
export interface HeadPlan {
  /** The status to send: the origin's, or 304 when the client's hidden validators match it. */
  readonly status: number
  /** Headers to remove (some may be absent): tag headers, and Content-Length of a 304. */
  readonly remove: readonly string[]
  /** The cache status header to set (name, value), unless the cache said nothing about this request. */
  readonly set: readonly [name: string, value: string] | undefined
  /** Whether the body should reach the client (false for a 304; the tap still wants it). */
  readonly sendBody: boolean
  /**
   * The origin's 304 renewed a stale entry: the adapter answers with this stored response instead
   * (its status, its headers over the origin's, with Content-Length; its body unless `sendBody`
   * is false, then a 304) and drops whatever body the origin writes.
   */
  readonly replace?: Revalidated
  /**
   * With `replace`: the origin failed and a stale entry answers instead (stale-if-error). The
   * adapter removes every header the response has before it sets the stored ones, so nothing of
   * the error (its Content-Type, a Content-Security-Policy of an error page) reaches the client.
   */
  readonly exclusive?: boolean
  /** This cache's Cache-Status member, to append to the response's Cache-Status (RFC 9211). */
  readonly cacheStatus?: string
}

/**
 * One response on its way from the origin to the client, as every adapter reports it: the head
 * once it is final, each chunk of the body as it is written, and the end, or an abort (the client
 * went away, the handler or its stream failed). The tap decides what the head becomes (status
 * header, tag headers, 304), tees the body into the fill without holding it back, and settles the
 * fill. Adapters only translate their framework's objects into these calls; no method throws.
 */
export class ResponseTap {
  private fill: Fill | null = null
  /** The cache status header to set, [name, value], or undefined. */
  private statusField: HeadPlan['set']
  private unsafe: RequestView | undefined
  /** What the cache decided, for Cache-Status; null: it did not look at the request. */
  private decision: OriginDecision | null = null
  private capture: BodyCapture | undefined
  private capturing: Fill | undefined
  private done = false

  /** `decision` null: the cache did not look at this request (an earlier hook answered it). */
  constructor(
    private readonly host: TapHost,
    decision: OriginDecision | null,
  ) {
    this.take(decision)
  }

  /**
   * A later middleware of the same request decided again (Express: a route's own options after
   * the app-wide ones); null leaves the response to whoever answers the request (no status
   * header, nothing stored).
   */
  retarget(decision: OriginDecision | null): void {
    const fill = decision?.type === 'miss' ? decision.fill : null
    if (this.fill !== fill) this.fill?.abandon('aborted')
    this.take(decision)
  }

  private take(d: OriginDecision | null): void {
    this.decision = d
    this.fill = d?.type === 'miss' ? d.fill : null
    this.unsafe = d?.type === 'bypass' ? d.unsafe : undefined
    const name = this.host.cacheStatusHeader
    this.statusField = d === null || name === undefined ? undefined : [name, d.type === 'miss' ? 'MISS' : 'BYPASS']
  }

  /** Whether the origin was asked to revalidate a stale entry, and has not answered yet. */
  get revalidating(): boolean {
    return this.fill !== null && !this.fill.settled && this.fill.revalidates
  }

  /**
   * Whether a response with this status is answered with a stored one instead (a 304 that renews
   * a stale entry, an error a stale entry stands in for): an adapter that would write the head
   * together with the body decides it first, so that the body can be swapped.
   */
  replaces(status: number): boolean {
    const fill = this.fill
    return fill !== null && !fill.settled && ((status === 304 && fill.revalidates) || (status >= 500 && fill.hasFallback))
  }

  /** Whether the response may still be stored: its head, then its body, are wanted. */
  get storing(): boolean {
    return this.fill !== null && !this.fill.settled
  }

  /**
   * The head is final: what to send, and whether to keep the body. The headers are read from
   * `source` only when the response may be stored (a response that will not be stored costs no
   * copy of them).
   */
  head(status: number, source: HeadSource): HeadPlan {
    if (this.unsafe !== undefined) this.host.afterUnsafe(this.unsafe, status, source.getHeaders())
    const fill = this.fill
    if (fill === null || fill.settled) {
      return { status, remove: this.host.tagHeaders, set: this.statusField, sendBody: true, cacheStatus: this.member(status, undefined) }
    }
    const headers = source.getHeaders()
    const d = fill.begin(status, headers)
    const cacheStatus = this.member(status, d)
    if (d.capture) {
      this.capturing = fill
      this.capture = new BodyCapture(fill.maxBodyBytes)
    }
    if (d.revalidated !== undefined) {
      const r = d.revalidated
      if (d.stale === true) {
        return { status: r.status, remove: this.host.tagHeaders, set: this.host.cacheStatusHeader === undefined ? undefined : [this.host.cacheStatusHeader, 'STALE'], sendBody: true, replace: r, exclusive: true, cacheStatus }
      }
      if (!d.notModified) return { status: r.status, remove: this.host.tagHeaders, set: this.statusField, sendBody: true, replace: r, cacheStatus }
      return { status: 304, remove: [...this.host.tagHeaders, 'content-length'], set: this.statusField, sendBody: false, replace: r, cacheStatus }
    }
    if (!d.notModified) return { status, remove: this.host.tagHeaders, set: this.statusField, sendBody: true, cacheStatus }
    return { status: 304, remove: [...this.host.tagHeaders, 'content-length'], set: this.statusField, sendBody: false, cacheStatus }
  }

  /**
   * This cache's Cache-Status member (RFC 9211 §2) for a response that went forward with `status`:
   * `fwd` (why), `fwd-status`, `collapsed`, then `stored`, or `detail` with why it is not stored
   * (or why the request bypassed the cache); a stale entry standing in for an error gets its `ttl`.
   */
  private member(status: number, d: HeadDecision | undefined): string | undefined {
    const name = this.host.cacheStatus
    const decision = this.decision
    if (name === undefined || decision === null) return undefined
    if (decision.type === 'bypass') return `${name}; fwd=bypass; fwd-status=${status}; detail=${decision.reason}`
    let m = `${name}; fwd=${decision.fwd ?? 'uri-miss'}; fwd-status=${status}`
    if (decision.collapsed === true) m += '; collapsed'
    if (d?.stale === true) return `${m}; ttl=${d.ttl ?? 0}; detail=stale-if-error`
    if (d?.capture === true) return `${m}; stored`
    return d?.reason === undefined ? m : `${m}; detail=${d.reason}`
  }

  /** A chunk of the body, as written (a string with its encoding, or bytes). */
  data(chunk: unknown, encoding?: BufferEncoding): void {
    if (this.capture === undefined || chunk === undefined || chunk === null) return
    if (!this.capture.push(chunk, encoding)) this.stopCapture()
  }

  /** The body is complete (a last chunk may come with it). */
  end(chunk?: unknown, encoding?: BufferEncoding): void {
    if (this.done) return
    this.done = true
    this.data(chunk, encoding)
    const fill = this.capturing
    const body = this.capture?.body()
    this.capture = undefined
    if (fill === undefined) return
    if (body === undefined) fill.abandon('too-large')
    else fill.end(body)
  }

  /** The response will not complete: the client went away, or the origin failed. */
  abort(): void {
    this.done = true
    this.capture = undefined
    this.fill?.abandon('aborted')
    this.capturing?.abandon('aborted')
  }

  /** Past `maxBodyBytes`: the response still flows, but is not stored; waiters go now. */
  private stopCapture(): void {
    this.capture = undefined
    this.capturing?.abandon('too-large')
  }
}
