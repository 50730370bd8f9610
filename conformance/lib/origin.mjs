// The suite's origin server, in a process of its own, on a free loopback port:
//
//   node conformance/lib/origin.mjs
//
// It serves the package's own request handlers (server/handle-config.mjs, handle-test.mjs,
// handle-state.mjs: the test configurations, the scripted responses and the record of what the
// origin received). The package's server/server.mjs is not started as it is because it listens
// on every interface at a fixed port from npm config, writes a pid file into the working
// directory and serves files from it; this wrapper dispatches the same three paths and answers
// anything else with 404. Prints {"event":"listening","port":N} on stdout.
import http from 'node:http'
import handleConfig from 'http-cache-tests/server/handle-config.mjs'
import handleState from 'http-cache-tests/server/handle-state.mjs'
import handleTest from 'http-cache-tests/server/handle-test.mjs'

const handlers = { config: handleConfig, test: handleTest, state: handleState }

const server = http.createServer((request, response) => {
  const segments = new URL(request.url, 'http://origin.invalid/').pathname.split('/').slice(1)
  const handle = handlers[segments.shift()]
  if (handle === undefined) {
    response.writeHead(404, { 'content-type': 'text/plain' })
    response.end('not a path of the cache test suite\n')
    return
  }
  handle(segments, request, response)
})
// Node's default keep-alive timeout (5 s) is left as the package's server has it: a test whose
// response is delimited by the connection closing (headers-store-Transfer-Encoding) relies on it.
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: server.address().port })}\n`)
})
