import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { ResponseTap } from '@corral/core/adapter'

const toString = Object.prototype.toString

/** Passes a streamed body through unchanged while reporting it to the tap. Back-pressure is the Transform's. */
class TapStream extends Transform {
  constructor(private readonly tap: ResponseTap) {
    super()
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.tap.data(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    this.tap.end()
    callback()
  }
}

function isNodeStream(p: object): p is Readable {
  return typeof (p as Readable).pipe === 'function'
}

function isWebStream(p: object): p is WebReadableStream {
  return typeof (p as WebReadableStream).getReader === 'function'
}

/** Length of a payload Fastify sends whole (a string or bytes); undefined for a stream or nothing. */
export function byteLength(payload: unknown): number | undefined {
  if (typeof payload === 'string') return Buffer.byteLength(payload)
  if (ArrayBuffer.isView(payload)) return payload.byteLength
  if (payload instanceof ArrayBuffer) return payload.byteLength
  return undefined
}

/**
 * Reports the payload Fastify is about to send to the tap, and returns what to send in its place:
 * the same value, or for a stream a pass-through of it. With `send` false (the client gets a 304)
 * nothing is sent, but the body still reaches the tap: a stream is read to its end here, and the
 * answer is a promise that settles once it has been, so that the 304 goes out only after the
 * entry it vouches for was captured.
 */
export function tapPayload(tap: ResponseTap, payload: unknown, send: boolean): unknown {
  if (payload === null || payload === undefined || typeof payload === 'string') {
    tap.end(payload)
    return send ? payload : null
  }
  if (ArrayBuffer.isView(payload) || payload instanceof ArrayBuffer) {
    const bytes = payload instanceof ArrayBuffer ? new Uint8Array(payload) : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
    tap.end(bytes)
    return send ? payload : null
  }
  if (typeof payload === 'object' && toString.call(payload) !== '[object Response]') {
    // Fastify pipes Node and web streams alike; a Node stream lets Fastify destroy the source
    // through the pipeline when the client goes away.
    const source = isNodeStream(payload) ? payload : isWebStream(payload) ? Readable.fromWeb(payload) : undefined
    if (source !== undefined) {
      const tee = new TapStream(tap)
      if (send) {
        pipeline(source, tee, (err) => {
          if (err) tap.abort()
        })
        return tee
      }
      return new Promise<null>((resolve) => {
        pipeline(source, tee, (err) => {
          if (err) tap.abort()
          resolve(null)
        })
        tee.resume()
      })
    }
  }
  // A web Response carries its own status and headers, which the tap never saw: never stored.
  tap.abort()
  if (!send && payload !== null && typeof payload === 'object' && isNodeStream(payload)) payload.resume()
  return send ? payload : null
}
