// A minimal HTTP/1.1 client over one socket, for the bench's own clients (burst-client.mjs,
// steady-client.mjs): no agent, no parsing beyond status, headers and where the body ends.
import net from 'node:net'

/** One keep-alive connection to 127.0.0.1:<port>, Nagle off. */
export function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true })
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Minimal HTTP/1.1 response reader: status, headers, Content-Length or chunked bodies. */
export function request(socket, path, port = socket.remotePort) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    let head
    const onData = (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      if (head === undefined) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
        const headers = {}
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':')
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
        }
        head = { status: Number(lines[0].split(' ')[1]), headers, bodyStart: end + 4 }
      }
      const body = buf.subarray(head.bodyStart)
      const length = head.headers['content-length']
      const complete = length !== undefined ? body.length >= Number(length) : body.subarray(-5).toString('latin1') === '0\r\n\r\n'
      if (!complete) return
      socket.off('data', onData)
      socket.off('error', onError)
      resolve({ status: head.status, xCache: head.headers['x-cache'] })
    }
    const onError = (err) => {
      socket.off('data', onData)
      reject(err)
    }
    socket.on('data', onData)
    socket.once('error', onError)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  })
}

