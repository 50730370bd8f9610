import type { CommandName } from './args.js'
import { DEFAULT_KEYS_LIMIT } from './commands/keys.js'
import { DEFAULT_PURGE_LIMIT, DEFAULT_PURGE_SCAN_LIMIT } from './commands/purge.js'
import { DEFAULT_STATS_LIMIT } from './commands/stats.js'

const GLOBAL = `Options of every command:
  --redis URL        redis:// or rediss:// URL (env CORRAL_REDIS_URL; default redis://127.0.0.1:6379)
  --namespace NAME   the apps' createCache namespace (env CORRAL_NAMESPACE; default corral)
  --timeout MS       deadline of connecting and of each Redis command (default 2000)
  --json             print one JSON document instead of text
  -h, --help         this help
Environment:
  CORRAL_SIGNING_KEYS  the apps' signingKeys, comma-separated (the first signs, all verify)

Exit codes: 0 ok, 1 not found (inspect), 2 bad arguments, 3 Redis unreachable or a command failed.`

const USAGE: Record<CommandName, string> = {
  stats: `corral stats [--limit N]

What Redis holds for the namespace: entries and Vary markers, their bytes (sum of STRLEN),
tags and index sets, fill locks, the invalidation log, Redis memory and eviction policy, and
how many app instances listen on the invalidation bus (PUBSUB NUMSUB).

  --limit N   visit at most N keys of the namespace (SCAN; default ${DEFAULT_STATS_LIMIT}); the
              output says PARTIAL when it stopped there`,
  inspect: `corral inspect URL [--host HOST] [-H 'Name: value' ...]

Computes the key the app stores URL under (for the app-wide route options), reads it and
decodes it as the app does: status, TTL (PTTL), freshness and stale windows, age, tags, stored
headers, sizes, and whether it verified. A Vary marker lists its variants; the request headers
given with -H select one. A value that fails to verify is reported REJECTED.

  URL                      http://host/path?query, or /path?query with --host; encoded as a
                           browser sends it (/café is /caf%C3%A9)
  --host HOST              the Host header the app receives (default: the URL's host:port)
  -H, --headers 'N: v'     a request header (repeatable): the Vary headers of a variant, and
                           X-Forwarded-Host / X-Forwarded-Proto / Forwarded when a proxy sets
                           them (they are part of the key)
  --query-exclude NAME     the app's query rule, when createCache has one: parameters left out
  --query-include NAME     of the key (repeatable; a trailing * matches a prefix), or the only
  --ignore-query           ones kept, or none at all
  --limit N                index members read to find variants (default 1000)

Exits 1 when nothing is stored under the key.`,
  purge: `corral purge (--tag T | --key PATH | --prefix P)... [--soft] [--dry-run]

Invalidates through the app's own Redis store code: the entries are removed from Redis and
every running instance is told over the namespace's bus to drop its L1 copies. It first counts
and lists what the purge reaches, from the index sets it sweeps (entries still there only).

  --tag T          entries stored with tag T (repeatable)
  --key PATH       entries of a path on every host: /products/42 (any query), or one query
                   /products?page=2; an absolute URL is taken for its path (repeatable)
  --prefix P       entries whose path starts with P, e.g. /products/ (repeatable)
  --soft           mark them stale instead: answered stale while they refresh, within their
                   stale-while-revalidate / stale-if-error windows (removed when they have none)
  --dry-run        count and list what matches, purge nothing
  --limit N        entries listed (default ${DEFAULT_PURGE_LIMIT}); the purge itself is not limited
  --scan-limit N   index members read to count what matches (default ${DEFAULT_PURGE_SCAN_LIMIT}); past
                   it the count is a lower bound and the output says PARTIAL

An index key of a selector that holds something other than a set makes the store invalidate
the WHOLE namespace (every entry, --soft or not, and every instance's L1): the output says
WIDENS (dry run) or WIDENED, and which key.`,
  keys: `corral keys [--prefix P] [--limit N]

Lists entries, variants and Vary markers: URL, status (or vary), TTL, size, tags, key. URL,
status and tags are what each value's metadata says, not verified (inspect verifies).

  --prefix P   only entries whose path starts with P, read from the index sets purge --prefix
               uses (repeatable); without it, a SCAN of the namespace
  --limit N    list at most N (default ${DEFAULT_KEYS_LIMIT}); the output says PARTIAL when cut`,
}

export function helpText(command: CommandName | undefined): string {
  if (command !== undefined) return `Usage: ${USAGE[command]}\n\n${GLOBAL}\n`
  return `corral: look into and purge what Corral apps stored in Redis

Usage: corral <command> [options]

Commands:
  stats              what the namespace holds, Redis memory, instances listening
  inspect URL        the entry (and variants) stored for a URL, verified
  purge              invalidate by --tag, --key or --prefix, on every instance
  keys               list entries (--prefix P), bounded

'corral <command> --help' describes a command.

${GLOBAL}
`
}
