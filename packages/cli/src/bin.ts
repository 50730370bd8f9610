#!/usr/bin/env node
import { main } from './main.js'

const code = await main(process.argv.slice(2), {
  env: process.env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
})
process.exitCode = code
// The connection is closed by now; should anything still hold the event loop, do not hang on it.
setTimeout(() => process.exit(code), 1000).unref()
