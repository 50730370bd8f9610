import type * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { sleep, type AppHandle, type OriginCounter, type StreamBody } from './scenario.js'

/** Listens on a free loopback port; the handle closes the server and every connection it holds. */
export async function serveOnLoopback(server: http.Server, counter: OriginCounter, warm: AppHandle['warm']): Promise<AppHandle> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls: (path?: string) => counter.calls(path),
    warm,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Writes a streamed body chunk by chunk on a Node response, pausing and signalling as the spec
 * says; `failAtEnd` throws once the chunks are out (the headers are sent: the app cuts the socket).
 */
export async function writeChunks(res: http.ServerResponse, body: StreamBody): Promise<void> {
  for (const [i, chunk] of body.stream.entries()) {
    if (i > 0 && body.intervalMs) await sleep(body.intervalMs)
    if (i > 0) await body.before?.(i)
    res.write(chunk)
  }
  if (body.intervalMs) await sleep(body.intervalMs)
  await body.before?.(body.stream.length)
  if (body.failAtEnd) throw new Error('origin stream failed')
  res.end()
}
