import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { BodyCapture, type Fill } from '@corral/core'

const EMPTY = Buffer.alloc(0)
const toString = Object.prototype.toString

/**
 * A copy of a payload the app handed over: the app may reuse its Buffer after sending, and the
 * entry must not change with it. Unpooled, so core keeps it as it is.
 */
function copyOf(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength)
  copy.set(bytes)
  return copy
}

function endWith(fill: Fill, bytes: Uint8Array): void {
  if (bytes.byteLength > fill.maxBodyBytes) fill.abandon('too-large')
  else fill.end(copyOf(bytes))
}

/**
 * Passes a streamed body through unchanged while teeing it into a capture. Past `maxBodyBytes`
 * it stops capturing (and gives up the fill at once, so waiters go to the origin) but keeps
 * streaming. Back-pressure is the Transform's.
 */
class CaptureStream extends Transform {
  private capture: BodyCapture | undefined

  constructor(private readonly fill: Fill) {
    super()
    this.capture = new BodyCapture(fill.maxBodyBytes)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.capture !== undefined && !this.capture.push(chunk)) {
      this.capture = undefined
      this.fill.abandon('too-large')
    }
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    const body = this.capture?.body()
    this.capture = undefined
    if (body === undefined) this.fill.abandon('too-large')
    else this.fill.end(body)
    callback()
  }
}

function isNodeStream(p: object): p is Readable {
  return typeof (p as Readable).pipe === 'function'
}

function isWebStream(p: object): p is WebReadableStream {
  return typeof (p as WebReadableStream).getReader === 'function'
}

/**
 * Feeds the payload Fastify is about to send into `fill` (whose `begin` asked for a capture) and
 * returns the payload to send in its place: the same value, or for a stream a pass-through of it.
 * With `discard` (the client gets a 304), the body is captured but nothing is sent: a stream is
 * read to its end here, and the answer is a promise that settles once it has been, so that the
 * 304 goes out only after the entry it vouches for was captured.
 */
export function capturePayload(fill: Fill, payload: unknown, discard: boolean): unknown {
  if (payload === null || payload === undefined) {
    fill.end(EMPTY)
    return discard ? null : payload
  }
  if (typeof payload === 'string') {
    const length = Buffer.byteLength(payload)
    if (length > fill.maxBodyBytes) fill.abandon('too-large')
    else {
      const body = Buffer.allocUnsafeSlow(length)
      body.write(payload)
      fill.end(body)
    }
    return discard ? null : payload
  }
  if (ArrayBuffer.isView(payload)) {
    endWith(fill, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))
    return discard ? null : payload
  }
  if (payload instanceof ArrayBuffer) {
    endWith(fill, new Uint8Array(payload))
    return discard ? null : payload
  }
  if (typeof payload === 'object' && toString.call(payload) !== '[object Response]') {
    // Fastify pipes Node and web streams alike; a Node stream lets Fastify destroy the source
    // through the pipeline when the client goes away.
    const source = isNodeStream(payload) ? payload : isWebStream(payload) ? Readable.fromWeb(payload) : undefined
    if (source !== undefined) {
      const tee = new CaptureStream(fill)
      if (!discard) {
        pipeline(source, tee, (err) => {
          if (err) fill.abandon('aborted')
        })
        return tee
      }
      return new Promise<null>((resolve) => {
        pipeline(source, tee, (err) => {
          if (err) fill.abandon('aborted')
          resolve(null)
        })
        tee.resume()
      })
    }
  }
  // A web Response carries its own status and headers, which begin() never saw: never stored.
  fill.abandon('error')
  return discard ? discardPayload(payload) : payload
}

/** Nothing of `payload` is sent (the client gets a 304): a stream is drained so its source can finish. */
export function discardPayload(payload: unknown): null {
  if (payload !== null && typeof payload === 'object' && isNodeStream(payload)) payload.resume()
  return null
}
