// Summarises a V8 CPU profile (node --cpu-prof): the frames with the most self time.
//   node bench/lib/profile-top.mjs <file.cpuprofile> [count]
import { readFileSync } from 'node:fs'

const [file, count = '25'] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/lib/profile-top.mjs <file.cpuprofile> [count]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map()
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i])
  const dt = profile.timeDeltas[i] ?? 0
  const f = node.callFrame
  const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '')}:${f.lineNumber + 1}` : ''
  const key = `${f.functionName || '(anonymous)'} ${where}`.trim()
  self.set(key, (self.get(key) ?? 0) + dt)
}
const total = [...self.values()].reduce((a, b) => a + b, 0)
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(count))
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
for (const [name, us] of rows) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`)
