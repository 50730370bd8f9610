#!/usr/bin/env node
// Compiles every ```ts block of the READMEs (the root one and each package's) with strict tsc, as
// a user who copies one into a project of their own would: each block is a module of its own,
// against the packages' sources (test/tsconfig.json's paths) and the frameworks' own types. A
// README that shows code which does not compile fails the test command.
//
// Usage: node scripts/check-readme.mjs
// Writes only into .readme-check/ (recreated each run, not committed).

import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, '.readme-check')
rmSync(out, { recursive: true, force: true })
mkdirSync(out)

const readmes = ['README.md', ...readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'README.md'))]
const origin = new Map()
for (const readme of readmes) {
  let text
  try {
    text = readFileSync(join(root, readme), 'utf8')
  } catch {
    continue
  }
  let n = 0
  for (const m of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
    n++
    const line = text.slice(0, m.index).split('\n').length + 1
    const file = `${readme.replace(/[/.]/g, '_')}_${n}.ts`
    // `export {}` makes every block a module (top-level await, no globals shared between blocks).
    writeFileSync(join(out, file), `${m[1]}\nexport {}\n`)
    origin.set(file, `${readme}:${line}`)
  }
}

writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify(
    {
      extends: '../test/tsconfig.json',
      compilerOptions: { noEmit: true, noUnusedLocals: false },
      include: ['./*.ts'],
    },
    null,
    2,
  ),
)

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const result = spawnSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json')], { cwd: root, encoding: 'utf8' })
const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
  .split('\n')
  .filter((line) => line.trim() !== '')
  // Name the README and line each error comes from.
  .map((line) => line.replace(/^\.readme-check\/([^(]+)\((\d+),(\d+)\)/, (_, f, l) => `${origin.get(f) ?? f} (block line ${l})`))
if (result.status !== 0) {
  console.error(`check-readme: code in the READMEs does not compile:\n${output.join('\n')}`)
  process.exit(1)
}
console.log(`check-readme: ${origin.size} code blocks in ${readmes.length} READMEs compile (${relative(root, out)}/)`)
