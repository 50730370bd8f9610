// Forwarding one request to the origin, shared by the three proxy apps (proxy.mjs).
//
// The proxy is the app behind Corral: it adds no caching of its own. Request side, it behaves as
// a gateway should (RFC 9110 §7.6): hop-by-hop fields and the fields that `Connection` names are
// not forwarded, `Host` names the origin, `Via` is appended. Response side, it hands the
// framework the origin's status and header fields as received (repeated fields stay separate),
// dropping only `Transfer-Encoding`, because Node frames the body it writes itself. `Connection`
// and the fields it names are passed on on purpose: Corral is the cache under test, and what it
// stores of them is what the suite's `headers-*` tests measure; stripping them here would make
// those tests measure this proxy instead.
import http from 'node:http'

/** Hop-by-hop request fields (RFC 9110 §7.6.1), never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade'])

/** How long the origin may take to answer before the proxy gives up with a 504. */
export const UPSTREAM_TIMEOUT_MS = 30_000

/**
 * The request fields to send upstream, as [name, value] pairs in the order received.
 * @param {import('node:http').IncomingMessage} req
 * @param {string} originHost host:port of the origin
 */
export function upstreamHeaders(req, originHost) {
  const raw = req.rawHeaders
  const nominated = new Set()
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === 'connection') {
      for (const token of raw[i + 1].split(',')) {
        const name = token.trim().toLowerCase()
        if (name !== '') nominated.add(name)
      }
    }
  }
  const out = [['Host', originHost]]
  let via
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase()
    if (lower === 'host' || HOP_BY_HOP.has(lower) || nominated.has(lower)) continue
    // A field Corral took off the request (the client's validators while it fills the cache).
    if (req.headers[lower] === undefined) continue
    if (lower === 'via') {
      via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`
      continue
    }
    out.push([raw[i], raw[i + 1]])
  }
  // Fields Corral put on the request (a stale entry's validators, to revalidate it): what the app
  // sees in req.headers is what the origin must get.
  const seen = new Set(raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()))
  for (const name of ['if-none-match', 'if-modified-since']) {
    const v = req.headers[name]
    if (v !== undefined && !seen.has(name)) out.push([name, v])
  }
  out.push(['Via', via === undefined ? '1.1 corral-conformance' : `${via}, 1.1 corral-conformance`])
  return out
}

/**
 * The origin's response fields for the framework: lower-case name → value, or an array of values
 * when the field was repeated (Node then writes one line per value). Insertion order is kept.
 * @param {import('node:http').IncomingMessage} upstream
 * @returns {Map<string, string | string[]>}
 */
export function downstreamHeaders(upstream) {
  const out = new Map()
  const raw = upstream.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (name === 'transfer-encoding') continue
    const prev = out.get(name)
    if (prev === undefined) out.set(name, raw[i + 1])
    else if (Array.isArray(prev)) prev.push(raw[i + 1])
    else out.set(name, [prev, raw[i + 1]])
  }
  return out
}

/**
 * Sends `req` (method, path and query, fields, body) to the origin. Resolves with the origin's
 * response once its head has arrived; rejects if the origin cannot be reached, breaks the
 * connection before the head, or takes longer than UPSTREAM_TIMEOUT_MS.
 * @param {import('node:http').IncomingMessage} req the client's request, its body not yet read
 * @param {import('node:http').ServerResponse} res the response to the client
 * @param {URL} origin
 * @param {string} path path and query, as the client sent them
 * @param {http.Agent} agent
 * @returns {Promise<import('node:http').IncomingMessage>}
 */
export function forward(req, res, origin, path, agent) {
  return new Promise((resolve, reject) => {
    const upstream = http.request({
      host: origin.hostname,
      port: origin.port,
      method: req.method,
      path,
      headers: upstreamHeaders(req, origin.host).flat(),
      agent,
      timeout: UPSTREAM_TIMEOUT_MS,
    })
    upstream.on('response', resolve)
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('origin timed out'), { code: 'ETIMEDOUT' })))
    upstream.on('error', reject)
    // The client went away before its response was complete: stop the origin's.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  })
}
