/** The exit codes of `corral`, one per kind of outcome a script may want to tell apart. */
export const EXIT = {
  ok: 0,
  /** `inspect` found nothing stored for the URL. */
  notFound: 1,
  /** Bad or missing arguments: nothing was sent to Redis. */
  usage: 2,
  /** Redis could not be reached, or a command failed or missed its deadline. */
  redis: 3,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** An error the CLI reports in one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'CliError'
  }
}

/** Bad or missing arguments; the message names the argument. */
export class UsageError extends CliError {
  constructor(
    message: string,
    /** The command whose help to point at, if any. */
    readonly command?: string,
  ) {
    super(message, EXIT.usage)
    this.name = 'UsageError'
  }
}

/** Redis could not be reached, or answered with an error, or not in time. */
export class RedisError extends CliError {
  constructor(message: string, cause?: unknown) {
    super(message, EXIT.redis, { cause })
    this.name = 'RedisError'
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
