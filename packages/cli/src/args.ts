import { parseArgs, type ParseArgsConfig } from 'node:util'
import { DEFAULT_NAMESPACE, NAMESPACE_PATTERN } from '@corral/core/store'
import { UsageError } from './errors.js'

type Options = NonNullable<ParseArgsConfig['options']>

/** Options every command takes. */
const GLOBAL = {
  redis: { type: 'string' },
  namespace: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options

/** Each command's own options. */
const COMMANDS = {
  stats: {
    limit: { type: 'string' },
  },
  inspect: {
    host: { type: 'string' },
    headers: { type: 'string', multiple: true, short: 'H' },
    'query-include': { type: 'string', multiple: true },
    'query-exclude': { type: 'string', multiple: true },
    'ignore-query': { type: 'boolean' },
    limit: { type: 'string' },
  },
  purge: {
    tag: { type: 'string', multiple: true },
    key: { type: 'string', multiple: true },
    prefix: { type: 'string', multiple: true },
    soft: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    limit: { type: 'string' },
    'scan-limit': { type: 'string' },
  },
  keys: {
    prefix: { type: 'string', multiple: true },
    limit: { type: 'string' },
  },
} as const satisfies Record<string, Options>

export type CommandName = keyof typeof COMMANDS
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[]

/** Every option of every command, parsed in one pass; which command may use which is checked after. */
const ALL: Options = { ...GLOBAL, ...COMMANDS.stats, ...COMMANDS.inspect, ...COMMANDS.purge, ...COMMANDS.keys }

/** What the user asked for, before any connection. */
export interface Invocation {
  /** Undefined when no command was given (then `help` is true or it is a usage error). */
  readonly command: CommandName | undefined
  readonly help: boolean
  readonly positionals: readonly string[]
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>
}

/** Splits the arguments into a command, its positionals and its options; throws a UsageError naming a bad one. */
export function parseInvocation(args: readonly string[]): Invocation {
  const { values, positionals, tokens } = parse(args)
  let rest = positionals
  let command: CommandName | undefined
  let help = values.help === true
  if (rest[0] === 'help') {
    help = true
    rest = rest.slice(1)
  }
  const first = rest[0]
  if (first !== undefined) {
    if (!isCommand(first)) throw new UsageError(`unknown command '${first}': expected one of ${COMMAND_NAMES.join(', ')}`)
    command = first
    rest = rest.slice(1)
  }
  const allowed = new Set([...Object.keys(GLOBAL), ...(command === undefined ? [] : Object.keys(COMMANDS[command]))])
  for (const t of tokens) {
    if (t.kind !== 'option' || allowed.has(t.name)) continue
    const owners = COMMAND_NAMES.filter((c) => t.name in COMMANDS[c])
    throw new UsageError(
      command === undefined
        ? `${t.rawName} needs a command: it is an option of ${owners.map((c) => `'corral ${c}'`).join(', ')}`
        : `${t.rawName} is not an option of 'corral ${command}'`,
      command,
    )
  }
  return { command, help, positionals: rest, values }
}

function parse(args: readonly string[]) {
  try {
    return parseArgs({ args: [...args], options: ALL, allowPositionals: true, strict: true, tokens: true })
  } catch (err) {
    // Point at the command's help when one was named.
    throw new UsageError(parseError(err), args.find(isCommand))
  }
}

function isCommand(s: string): s is CommandName {
  return Object.hasOwn(COMMANDS, s)
}

/** parseArgs' own messages, shortened to name the option. */
function parseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const code = (err as { code?: string }).code
  const option = /'(-{1,2}[^' <]+)/.exec(message)?.[1]
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (message.includes('argument missing') || message.includes('ambiguous')) return `option ${option} needs a value (${option} VALUE, or ${option}=VALUE for one that starts with '-')`
    return `option ${option} takes no value`
  }
  return message
}

// ---- values -------------------------------------------------------------------------------

/** Where to connect and what to read, from options and the environment. */
export interface Connection {
  readonly redisUrl: string
  readonly namespace: string
  readonly timeoutMs: number
  /** CORRAL_SIGNING_KEYS: the first signs, all verify (the app's `signingKeys`). */
  readonly signingKeys: readonly Buffer[]
  readonly json: boolean
}

type Env = Readonly<Record<string, string | undefined>>

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
export const DEFAULT_TIMEOUT_MS = 2000

export function connectionOf(inv: Invocation, env: Env): Connection {
  const v = inv.values
  const redisUrl = str(v.redis) ?? nonEmpty(env.CORRAL_REDIS_URL) ?? DEFAULT_REDIS_URL
  const fromFlag = str(v.redis) !== undefined
  if (!/^rediss?:\/\/[^\s]*$/.test(redisUrl)) {
    throw new UsageError(`expected ${fromFlag ? '--redis' : 'CORRAL_REDIS_URL'} to be a redis:// or rediss:// URL, got '${redisUrl}'`, inv.command)
  }
  try {
    new URL(redisUrl)
  } catch {
    throw new UsageError(`expected ${fromFlag ? '--redis' : 'CORRAL_REDIS_URL'} to be a valid URL, got '${redisUrl}'`, inv.command)
  }
  const namespace = str(v.namespace) ?? nonEmpty(env.CORRAL_NAMESPACE) ?? DEFAULT_NAMESPACE
  if (!NAMESPACE_PATTERN.test(namespace)) {
    const from = str(v.namespace) !== undefined ? '--namespace' : 'CORRAL_NAMESPACE'
    throw new UsageError(`expected ${from} to be 1-64 letters, digits, '_', '.' or '-' (as createCache's namespace), got '${namespace}'`, inv.command)
  }
  const timeoutMs = v.timeout === undefined ? DEFAULT_TIMEOUT_MS : positiveInt(str(v.timeout), '--timeout', 'milliseconds', 600_000, inv.command)
  return { redisUrl, namespace, timeoutMs, signingKeys: signingKeysOf(env.CORRAL_SIGNING_KEYS, inv.command), json: v.json === true }
}

/** CORRAL_SIGNING_KEYS, comma-separated, each at least 16 bytes like the app's `signingKeys`; empty items are skipped. */
export function signingKeysOf(text: string | undefined, command?: string): Buffer[] {
  if (text === undefined || text.trim() === '') return []
  const keys: Buffer[] = []
  text.split(',').forEach((item, i) => {
    const k = item.trim()
    if (k === '') return
    const b = Buffer.from(k, 'utf8')
    if (b.length < 16) throw new UsageError(`expected CORRAL_SIGNING_KEYS item ${i + 1} to be a secret of at least 16 bytes, as the app's signingKeys; it has ${b.length}`, command)
    keys.push(b)
  })
  return keys
}

/** A whole number in 1..max from an option, or a UsageError naming it. */
export function positiveInt(text: string | undefined, option: string, unit: string, max: number, command?: string): number {
  const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`expected ${option} to be a whole number of ${unit} from 1 to ${max}, got '${text ?? ''}'`, command)
  }
  return n
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

export function list(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : typeof v === 'string' ? [v] : []
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim()
}
