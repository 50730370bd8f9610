// Tools the bench needs from the distribution's packages (wrk, redis-server): found on PATH, or
// installed with apt-get when the bench runs as root or with passwordless sudo.
import { execFileSync } from 'node:child_process'

/** True when `cmd` can be run (whatever its exit code: wrk exits 1 for any unknown flag). */
export function onPath(cmd, args = ['--version']) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch (err) {
    return err.code !== 'ENOENT'
  }
}

/**
 * `apt-get install -y <pkg>` (after an `apt-get update` if the first attempt fails); returns
 * whether `check()` passes afterwards. False without apt-get, or without root or passwordless sudo.
 */
export function aptInstall(pkg, check, log) {
  if (!onPath('apt-get')) return false
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  if (!root && !onPath('sudo', ['-n', 'true'])) return false
  const run = (args) => {
    const [cmd, argv] = root ? ['apt-get', args] : ['sudo', ['-n', 'apt-get', ...args]]
    execFileSync(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
  log(`${pkg} is missing: installing it with apt-get`)
  try {
    run(['install', '-y', pkg])
  } catch {
    try {
      run(['update'])
      run(['install', '-y', pkg])
    } catch {
      return false
    }
  }
  return check()
}
