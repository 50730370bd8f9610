import { Redis, type ChainableCommander } from 'ioredis'
import type { Connection } from './args.js'
import { messageOf, RedisError } from './errors.js'

/**
 * One connection for the whole command, made to fail fast: nothing queued while disconnected, no
 * retries, no reconnection, and every command and the connection itself under `timeoutMs`, so an
 * unreachable or hung Redis ends the command (exit 3) instead of hanging it.
 */
export async function connect(c: Connection): Promise<Redis> {
  let lastError: unknown
  const client = new Redis(c.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: c.timeoutMs,
    commandTimeout: c.timeoutMs,
    // ioredis ends the socket on disconnect() and destroys it only after this long (2 s by
    // default), with a timer that holds the process open when the socket never reports 'close'
    // (a refused or timed-out connection, a server that does not hang up): the command would exit
    // late. Nothing is waited for by then (a QUIT has been answered, or the command failed).
    disconnectTimeout: 0,
  })
  // Without a listener ioredis prints every connection error itself.
  client.on('error', (err: unknown) => {
    lastError = err
  })
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${c.timeoutMs} ms (--timeout)`)), c.timeoutMs)
  })
  try {
    await Promise.race([client.connect(), deadline])
  } catch (err) {
    client.disconnect()
    throw new RedisError(`cannot reach Redis at ${redactUrl(c.redisUrl)}: ${messageOf(lastError ?? err)}`, err)
  } finally {
    clearTimeout(timer)
  }
  return client
}

/**
 * Lets commands sent so far finish (QUIT, within the deadline), then drops the connection. After
 * a failure (`graceful` false) it is dropped at once: a Redis that missed one deadline is not
 * waited for again.
 */
export async function disconnect(client: Redis, timeoutMs: number, graceful = true): Promise<void> {
  if (graceful && client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs)
      }),
    ])
    clearTimeout(timer)
  }
  client.disconnect()
}

/** Awaits a Redis call, turning its failure into a RedisError that says what was being done. */
export async function ask<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call
  } catch (err) {
    throw new RedisError(`Redis failed while ${what}: ${messageOf(err)}`, err)
  }
}

/**
 * Executes a pipeline, turning a failed reply into a RedisError, except WRONGTYPE: a key that
 * holds another type than the one asked for answers that in place, for the caller to report.
 * (A pipeline resolves even when its commands time out: each reply carries its own error.)
 */
export async function askAll(what: string, pipeline: ChainableCommander): Promise<[Error | null, unknown][]> {
  const replies = (await ask(what, pipeline.exec())) ?? []
  for (const [err] of replies) {
    if (err !== null && !isWrongType(err)) throw new RedisError(`Redis failed while ${what}: ${messageOf(err)}`, err)
  }
  return replies
}

export function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE')
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}
