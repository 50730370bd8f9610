// Runs one of the bench's own clients (burst-client.mjs, steady-client.mjs) as a process of its
// own on the load core, and resolves with the one JSON line it prints.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LOAD_CPU, pinned } from './cpu.mjs'

export function runClient(script, args) {
  const [cmd, argv] = pinned(LOAD_CPU, process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args.map(String)])
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${stderr || err.message}`))
      else resolve(JSON.parse(stdout))
    })
  })
}
