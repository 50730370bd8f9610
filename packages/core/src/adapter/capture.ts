/**
 * Collects a response body as it streams to the client, up to a byte limit. Past the limit it
 * drops what it holds and stops collecting; the response itself is never held back.
 */
export class BodyCapture {
  private chunks: Buffer[] = []
  private bytes = 0
  private over = false

  constructor(private readonly limit: number) {}

  /** Adds a chunk; returns false once the limit is passed. */
  push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (this.over || chunk == null) return !this.over
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : typeof chunk === 'string'
        ? Buffer.from(chunk, encoding ?? 'utf8')
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : undefined
    if (buf === undefined) {
      this.over = true
      this.chunks = []
      return false
    }
    this.bytes += buf.length
    if (this.bytes > this.limit) {
      this.over = true
      this.chunks = []
      return false
    }
    // Copy: the caller may reuse its buffer after write() returns.
    if (buf.length > 0) this.chunks.push(Buffer.from(buf))
    return true
  }

  get overLimit(): boolean {
    return this.over
  }

  /** The captured body, or undefined past the limit. */
  body(): Buffer | undefined {
    if (this.over) return undefined
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes)
  }
}
