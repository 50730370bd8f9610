import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { RequestView } from '../model/key.js'
import { parseVary } from '../model/policy.js'
import type { LockGrant } from '../stores/types.js'

/** A request Corral asks the app to answer again, without a client (a background refresh). */
export interface ReplayRequest {
  readonly method: 'GET'
  /** Path and query, as the client sent them. */
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

/**
 * Runs a request through the app as if a client had sent it, and settles when its response has
 * ended (Fastify `inject`, light-my-request for Express and node:http). Given by the adapter.
 */
export type Replay = (request: ReplayRequest) => Promise<unknown>

/** The request header that marks a replay as Corral's own: `<secret>.<id>`. */
export const REFRESH_HEADER = 'corral-refresh'

/** Request headers a replay carries besides the varied ones: those that make up the key. */
const KEY_HEADERS = ['host', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded'] as const
/** Never carried, even when a response varies on them: a refresh is nobody's request. */
const NEVER_CARRIED: ReadonlySet<string> = new Set(['cookie', 'authorization', 'proxy-authorization', REFRESH_HEADER])

/** One background refresh under way. */
export interface Ticket {
  readonly id: string
  /** The key (the variant's, for a varied response) the refresh is for; undefined when not known (warming). */
  readonly fillKey: string | undefined
  /** When the entry it replaces was stored: an entry stored since (another refresh's) is used as it is. */
  readonly before: number
  /** The fleet lock taken for it, if any, handed to the fill of the replayed request. */
  grant: (LockGrant & { state: 'acquired' }) | undefined
  /** Set when the replayed request's fill for `fillKey` settles: whether it stored, and why not. */
  stored: boolean | undefined
  reason: string | undefined
  /** That fill, while it runs: abandoned when the refresh gives up waiting. */
  fill: { abandon(reason: 'aborted'): void } | undefined
}

/**
 * The refreshes under way in this process, and the unforgeable mark their replayed requests carry:
 * a random secret made per cache and a ticket id, checked against the tickets still open. A
 * request whose mark is valid is answered from the origin (or a fresh entry), never from a stale one.
 */
export class Refreshes {
  private readonly secret = randomBytes(18).toString('base64url')
  private readonly open = new Map<string, Ticket>()
  /** Requests of the framework found to be replays (Express sees one twice: app-wide, then the route). */
  private readonly replays = new WeakMap<object, Ticket>()
  private next = 0

  constructor(readonly max: number) {}

  get size(): number {
    return this.open.size
  }

  /** A ticket for a refresh of `fillKey`, or undefined when `max` are under way already. */
  issue(fillKey: string | undefined, before: number, bounded = true): Ticket | undefined {
    if (bounded && this.open.size >= this.max) return undefined
    const ticket: Ticket = { id: String(this.next++), fillKey, before, grant: undefined, stored: undefined, reason: undefined, fill: undefined }
    this.open.set(ticket.id, ticket)
    return ticket
  }

  close(ticket: Ticket): void {
    this.open.delete(ticket.id)
  }

  /**
   * The ticket of a replayed request, or undefined for any other. Takes the mark off the request
   * the app sees; `req` (the framework's request object) remembers it for a second lookup.
   */
  ticketOf(view: RequestView, req: unknown): Ticket | undefined {
    const mark = view.headers[REFRESH_HEADER]
    const known = typeof req === 'object' && req !== null ? this.replays.get(req) : undefined
    if (mark === undefined) return known
    delete (view.headers as IncomingHttpHeaders)[REFRESH_HEADER]
    if (typeof mark !== 'string') return known
    const dot = mark.lastIndexOf('.')
    if (dot < 0 || mark.slice(0, dot) !== this.secret) return known
    const ticket = this.open.get(mark.slice(dot + 1))
    if (ticket !== undefined && typeof req === 'object' && req !== null) this.replays.set(req, ticket)
    return ticket ?? known
  }

  /**
   * The request that refreshes `view`'s entry: a GET of the same URL with what the key depends on
   * (host, forwarding headers, the headers the response varies on), and the mark.
   */
  request(view: RequestView, vary: string | string[] | undefined, ticket: Ticket): ReplayRequest {
    const headers: Record<string, string> = {}
    const carry = (name: string) => {
      const v = view.headers[name]
      if (v !== undefined && !NEVER_CARRIED.has(name)) headers[name] = Array.isArray(v) ? v.join(', ') : String(v)
    }
    for (const name of KEY_HEADERS) carry(name)
    for (const name of parseVary(vary)) carry(name)
    headers[REFRESH_HEADER] = this.mark(ticket)
    return { method: 'GET', url: view.url, headers }
  }

  /** The value of the mark a replayed request carries for `ticket`. */
  mark(ticket: Ticket): string {
    return `${this.secret}.${ticket.id}`
  }
}
