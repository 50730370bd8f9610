import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { BodyCapture, type Cache, type Fill } from '@corral/core'

/** Per-request state shared by every Corral middleware the request passes through. */
export interface RequestState {
  /** The fill this response feeds, if it is to be stored. An adopting route middleware may replace it. */
  fill: Fill | null
  /** X-Cache value, written with the head so that the origin cannot overwrite it; null: none. */
  status: 'MISS' | 'BYPASS' | null
}

type WriteHead = ServerResponse['writeHead']
type HeaderArg = OutgoingHttpHeaders | readonly (string | number | readonly string[])[] | undefined

/**
 * Applies headers passed to `writeHead` with `setHeader`, so that they are visible to
 * `getHeaders()` before the head is written. Accepts an object, a flat `[name, value, ...]` array
 * or an array of `[name, value]` pairs (the array form was CVE-2025-7339 in on-headers).
 */
function applyHeaders(res: ServerResponse, headers: HeaderArg): void {
  if (headers === undefined || headers === null) return
  if (!Array.isArray(headers)) {
    for (const name of Object.keys(headers)) {
      const v = (headers as OutgoingHttpHeaders)[name]
      if (v !== undefined) res.setHeader(name, v)
    }
    return
  }
  const merged = new Map<string, { name: string; values: string[] }>()
  const add = (name: unknown, value: unknown) => {
    const key = String(name).toLowerCase()
    let slot = merged.get(key)
    if (slot === undefined) merged.set(key, (slot = { name: String(name), values: [] }))
    if (Array.isArray(value)) for (const v of value) slot.values.push(String(v))
    else slot.values.push(String(value))
  }
  if (headers.length > 0 && Array.isArray(headers[0])) {
    for (const pair of headers as unknown as readonly (readonly unknown[])[]) add(pair[0], pair[1])
  } else {
    for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i], headers[i + 1])
  }
  for (const { name, values } of merged.values()) res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
}

/**
 * Wraps `writeHead`, `write` and `end` of one response (after expressjs/compression and
 * jshttp/on-headers): decides once, when the head is about to be written, whether to capture;
 * tees the body into the fill without changing what the client receives; removes the cache-only
 * tag headers. Returns nothing: the state object is consulted at each step, so a later route
 * middleware can swap the fill.
 */
export function hookResponse(res: ServerResponse, cache: Cache, state: RequestState): void {
  const writeHead = res.writeHead as (this: ServerResponse, ...args: unknown[]) => ServerResponse
  const write = res.write as (this: ServerResponse, ...args: unknown[]) => boolean
  const end = res.end as (this: ServerResponse, ...args: unknown[]) => ServerResponse
  let headDone = false
  let ended = false
  let capture: BodyCapture | undefined
  let capturing: Fill | undefined

  const onHead = () => {
    const fill = state.fill
    if (fill !== null && !fill.settled) {
      const head = fill.begin(res.statusCode, res.getHeaders())
      if (head.capture) {
        capturing = fill
        capture = new BodyCapture(fill.maxBodyBytes)
      }
      if (head.notModified) {
        // Node writes no body for a 304 and ignores what the handler writes; the capture still sees it.
        res.statusCode = 304
        res.removeHeader('content-length')
      }
    }
    for (const name of cache.tagHeaders) if (res.hasHeader(name)) res.removeHeader(name)
    if (state.status !== null) res.setHeader(cache.cacheStatusHeader, state.status)
  }

  res.writeHead = function (this: ServerResponse, status: number, reason?: unknown, headers?: unknown) {
    if (headDone) return writeHead.apply(this, arguments as unknown as unknown[])
    headDone = true
    if (typeof reason !== 'string') {
      headers = reason
      reason = undefined
    }
    applyHeaders(this, headers as HeaderArg)
    this.statusCode = status
    onHead()
    // A 304 gets Node's own reason phrase, not the one given for the 200.
    if (this.statusCode !== status || reason === undefined) return writeHead.call(this, this.statusCode)
    return writeHead.call(this, status, reason)
  } as WriteHead

  res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown) {
    // The original write writes the head first (through our writeHead), which creates the capture.
    const ok = write.apply(this, arguments as unknown as unknown[])
    if (capture !== undefined && !capture.push(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined)) {
      capturing?.abandon('too-large')
      capture = undefined
    }
    return ok
  } as ServerResponse['write']

  res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown) {
    const r = end.apply(this, arguments as unknown as unknown[])
    if (ended) return r
    ended = true
    if (capture === undefined || capturing === undefined) return r
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      capture.push(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined)
    }
    const body = capture.body()
    if (body === undefined) capturing.abandon('too-large')
    else capturing.end(body)
    capture = undefined
    return r
  } as ServerResponse['end']

  // Whatever happens to the response, its fill settles and waiters are released.
  res.once('close', () => {
    state.fill?.abandon('aborted')
    capturing?.abandon('aborted')
  })
}
