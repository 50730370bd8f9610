import * as http from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import request from 'supertest'

export interface Res {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The raw body bytes, exactly as received. */
  readonly body: Buffer
  readonly text: string
  /** Wall time of the request, in ms. */
  readonly ms: number
}

export interface SendOptions {
  readonly method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE'
  readonly headers?: Readonly<Record<string, string>>
  /** A request body (an object is sent as JSON), on any method: GET too. */
  readonly body?: string | object
}

/**
 * One request with supertest against an already listening server (never `supertest(app)`, which
 * starts a server per request and would defeat concurrency tests). Every body is read as raw
 * bytes, and no status is treated as an error.
 */
export async function send(url: string, path: string, options: SendOptions = {}): Promise<Res> {
  const method = (options.method ?? 'GET').toLowerCase() as 'get' | 'head' | 'put' | 'post' | 'delete'
  const started = performance.now()
  let test = request(url)[method](path)
  for (const [name, value] of Object.entries(options.headers ?? {})) test = test.set(name, value)
  if (options.body !== undefined) test = test.send(options.body)
  const res = await test
    .ok(() => true)
    .redirects(0)
    .buffer(true)
    .parse((stream, callback) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)))
      stream.on('end', () => callback(null, Buffer.concat(chunks)))
      stream.on('error', (err: Error) => callback(err, Buffer.alloc(0)))
    })
  const body: Buffer = Buffer.isBuffer(res.body) ? res.body : Buffer.alloc(0)
  return {
    status: res.status,
    headers: res.headers as IncomingHttpHeaders,
    body,
    text: body.toString('utf8'),
    ms: performance.now() - started,
  }
}

/** Sends `n` identical requests at once. */
export function sendMany(n: number, url: string, path: string, options?: SendOptions): Promise<Res[]> {
  return Promise.all(Array.from({ length: n }, () => send(url, path, options)))
}

/**
 * A GET whose client goes away after the first body chunk, like a browser tab closed mid-download.
 * Resolves with the bytes received before the abort.
 */
export function getAndAbort(url: string, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, (res) => {
      res.once('data', (chunk: Buffer) => {
        req.destroy()
        resolve(Buffer.from(chunk))
      })
      res.once('end', () => reject(new Error('the response ended before the client could abort')))
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err)
    })
  })
}

/**
 * A GET that stops reading once `bytes` bytes of body have arrived (or at its end) and closes the
 * connection: for responses that declare more than they send, whose client would otherwise wait
 * forever. `complete` says whether what arrived is the whole body the response declared.
 */
export function getPartial(url: string, path: string, bytes: number): Promise<Res & { complete: boolean }> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { agent: false }, (res) => {
      const chunks: Buffer[] = []
      let got = 0
      let done = false
      const finish = (ended: boolean) => {
        if (done) return
        done = true
        const body = Buffer.concat(chunks)
        req.destroy()
        const declared = res.headers['content-length']
        const complete = declared === undefined ? ended : Number(declared) === body.length
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), ms: performance.now() - started, complete })
      }
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        got += c.length
        if (got >= bytes) finish(false)
      })
      res.on('end', () => finish(true))
      res.on('error', () => undefined)
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err)
    })
  })
}

/**
 * A GET with Node's http client, for bodies supertest would transform (it un-gzips). Resolves
 * with the bytes exactly as they crossed the wire.
 */
export function rawGet(url: string, path: string, headers: Readonly<Record<string, string>> = {}): Promise<Res> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), ms: performance.now() - started })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 })

/**
 * A GET over a shared keep-alive agent (64 sockets), for tests that send thousands of requests:
 * several times faster than supertest, which opens a connection per request.
 */
export function quickGet(url: string, path: string, headers: Readonly<Record<string, string>> = {}): Promise<Res> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { headers, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), ms: performance.now() - started })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

/** A GET that records the interim (1xx) responses before the final one: their statuses and headers. */
export function getWithInterim(url: string, path: string): Promise<{ interim: { status: number; headers: IncomingHttpHeaders }[]; final: Res }> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const interim: { status: number; headers: IncomingHttpHeaders }[] = []
    const req = http.get(new URL(path, url), (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ interim, final: { status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), ms: performance.now() - started } })
      })
    })
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }))
    req.on('error', reject)
  })
}
