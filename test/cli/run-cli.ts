import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built CLI, run as users run it. Tests need `pnpm build` first (as `pnpm test` does). */
export const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url))

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** Wall time from spawn to exit, in ms. */
  readonly ms: number
  /** stdout parsed as JSON (throws when it is not one JSON document). */
  json<T = any>(): T // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function assertBuilt(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} does not exist: build first (npx -y pnpm@10.34.8 build)`)
}

/**
 * Runs `node packages/cli/dist/bin.js ...args` with `env` on top of an environment stripped of
 * every CORRAL_* variable, and resolves when it exits (killed after `killAfterMs`: a CLI that
 * hangs fails the test instead of stalling it).
 */
export function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}, killAfterMs = 15_000): Promise<CliRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CORRAL_')))
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString('utf8')
      resolve({
        code,
        stdout,
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
        json: () => JSON.parse(stdout),
      })
    })
  })
}
