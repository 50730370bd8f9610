import { connectionOf, parseInvocation, type CommandName } from './args.js'
import type { Command, Output } from './command.js'
import { inspect } from './commands/inspect.js'
import { keys } from './commands/keys.js'
import { purge } from './commands/purge.js'
import { stats } from './commands/stats.js'
import { connect, disconnect } from './connection.js'
import { CliError, EXIT, messageOf, UsageError, type ExitCode } from './errors.js'
import { helpText } from './help.js'

const COMMANDS: Record<CommandName, Command<unknown>> = {
  stats: stats as Command<unknown>,
  inspect: inspect as Command<unknown>,
  purge: purge as Command<unknown>,
  keys: keys as Command<unknown>,
}

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>
  out(text: string): void
  err(text: string): void
}

/**
 * Runs one `corral` invocation and answers its exit code. Arguments are checked before anything
 * is sent to Redis; the connection is closed before this resolves, whatever happened.
 */
export async function main(args: readonly string[], io: Io): Promise<ExitCode> {
  let json = args.includes('--json')
  try {
    const inv = parseInvocation(args)
    json = inv.values.json === true
    if (inv.help || inv.command === undefined) {
      if (!inv.help) throw new UsageError("missing command: expected one of stats, inspect, purge, keys ('corral --help' describes them)")
      io.out(helpText(inv.command))
      return EXIT.ok
    }
    const command = COMMANDS[inv.command]
    const conn = connectionOf(inv, io.env)
    const plan = command.plan(inv)
    const client = await connect(conn)
    let output: Output
    try {
      output = await command.run(plan, { conn, client, now: Date.now })
    } catch (err) {
      await disconnect(client, conn.timeoutMs, false)
      throw err
    }
    await disconnect(client, conn.timeoutMs)
    io.out(json ? `${JSON.stringify(output.json, null, 2)}\n` : `${output.text}\n`)
    return output.exitCode
  } catch (err) {
    const code = err instanceof CliError ? err.exitCode : EXIT.redis
    const message = err instanceof CliError ? err.message : `unexpected failure: ${messageOf(err)}`
    const hint = err instanceof UsageError ? ` (see 'corral ${err.command ? `${err.command} ` : ''}--help')` : ''
    io.err(`corral: ${message}${hint}\n`)
    if (json) io.out(`${JSON.stringify({ error: { message, exitCode: code } })}\n`)
    return code
  }
}
