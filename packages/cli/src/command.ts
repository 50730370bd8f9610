import type { Redis } from 'ioredis'
import type { Connection, Invocation } from './args.js'
import type { ExitCode } from './errors.js'

/** What a command prints: one JSON document with --json, else the text. */
export interface Output {
  readonly json: unknown
  readonly text: string
  readonly exitCode: ExitCode
}

export interface Context {
  readonly conn: Connection
  readonly client: Redis
  /** The reader's clock: ages and freshness are computed on it from PTTL, as the app does. */
  readonly now: () => number
}

/**
 * A command checks its arguments first (a UsageError, before anything is sent to Redis), then
 * runs against the connection.
 */
export interface Command<Plan> {
  plan(inv: Invocation): Plan
  run(plan: Plan, ctx: Context): Promise<Output>
}
