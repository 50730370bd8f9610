// Turns a run's results into the Markdown summary (targets first, then every scenario's numbers).

/** How a sidecar process (lib/measure.mjs Mode.sidecars) is named in the tables. */
const SIDECAR_NAMES = { redis: 'Redis' }

const opText = (op) => (op === '>=' ? '≥' : '≤')

/** Every target of the run, from comparisons with a target and from scenarios' own checks. */
export function collectTargets(scenarios) {
  const targets = []
  for (const s of scenarios) {
    for (const c of s.comparisons ?? []) {
      if (c.target === undefined) continue
      targets.push({
        scenario: s.id,
        id: c.id,
        text: `${c.label} ${opText(c.target.op)} ${c.target.value}×`,
        measured: `${c.median.toFixed(3)}×`,
        perRound: perRoundText(c),
        met: c.target.met,
      })
    }
    for (const t of s.targets ?? []) targets.push({ scenario: s.id, perRound: '', ...t })
  }
  return targets
}

/** Per-round ratios; a * marks a round left out of the median because a run in it was disturbed. */
function perRoundText(c) {
  return c.perRound.map((x, i) => `${Number.isFinite(x) ? x.toFixed(2) : 'n/a'}${c.disturbedRounds?.includes(i + 1) ? '*' : ''}`).join(', ')
}

function table(columns, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`
  return [line(columns), line(columns.map(() => '---')), ...rows.map(line)].join('\n')
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')

export function markdown(results, svgName) {
  const { settings, machine, loadgen } = results
  const out = []
  out.push('# Corral benchmark results', '')
  out.push(
    `Run of ${results.startedAt} (${fmt(results.wallSeconds / 60, 1)} min)` +
      (results.git.commit ? ` at commit \`${results.git.commit.slice(0, 12)}\`${results.git.packagesOrBenchChanged ? ' with uncommitted changes' : ''}` : '') +
      (results.partial ? ' — **partial run** (smoke, quick, a subset or changed settings): not comparable with a full run.' : '.'),
    '',
  )
  out.push(
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}. ` +
      `Pinning: ${machine.pinning}. Load generator: ${loadgen.tool} ${loadgen.version}, ${settings.connections} connections. ` +
      `Each mode runs once per round on a fresh server (${settings.rounds} round${settings.rounds === 1 ? '' : 's'}, ${settings.warmup} s warm-up + ${settings.duration} s measured), ` +
      'modes interleaved A B C, A B C; numbers are medians over rounds, ratios are medians of the per-round ratios. ' +
      'A * marks a run that stayed disturbed by other work on the machine after 3 attempts; rounds with one are left out of a ratio\'s median when a clean round exists.',
    '',
  )
  const targets = results.targets
  const met = targets.filter((t) => t.met).length
  out.push('## Targets', '')
  out.push(`${met} of ${targets.length} targets met.`, '')
  out.push(table(['target', 'measured', 'per round', 'met'], targets.map((t) => [t.text, t.measured, t.perRound || '—', t.met ? '✅ met' : '❌ missed'])), '')
  if (svgName) out.push(`![Ratios of the run](${svgName})`, '')

  for (const s of results.scenarios) {
    out.push(`## ${s.title}`, '', s.about, '')
    if (s.error) {
      out.push(`**Failed:** ${s.error}`, '')
      continue
    }
    if (s.modes) {
      const modes = Object.values(s.modes)
      // Other processes a mode's requests ran on (the L2 scenario's Redis: lib/measure.mjs sidecars).
      const sidecars = [...new Set(modes.flatMap((m) => Object.keys(m.median).filter((k) => k.endsWith('CpuUsPerReq') && k !== 'totalCpuUsPerReq')))].map((k) => k.slice(0, -'CpuUsPerReq'.length))
      const names = sidecars.map((n) => SIDECAR_NAMES[n] ?? n)
      out.push(
        table(
          [
            'mode',
            'req/s',
            'p50 ms',
            'p99 ms',
            'server CPU µs/req',
            'server CPU busy',
            ...names.flatMap((n) => [`${n} CPU µs/req`, `${n} CPU busy`]),
            ...(sidecars.length > 0 ? [`server + ${names.join(' + ')} CPU µs/req`] : []),
            'req/s per round',
          ],
          modes.map((m) => [
            m.label,
            fmt(m.median.rps),
            fmt(m.median.p50Ms, 2),
            fmt(m.median.p99Ms, 2),
            fmt(m.median.cpuUsPerReq, 1),
            `${fmt(m.median.serverCpuUtil * 100)}%`,
            ...sidecars.flatMap((n) => [fmt(m.median[`${n}CpuUsPerReq`], 1), `${fmt(m.median[`${n}CpuUtil`] * 100)}%`]),
            ...(sidecars.length > 0 ? [fmt(m.median.totalCpuUsPerReq, 1)] : []),
            m.runs.map((r) => `${fmt(r.rps)}${r.disturbed ? '*' : ''}`).join(', '),
          ]),
        ),
        '',
      )
    }
    if (s.comparisons?.length) {
      out.push(
        table(
          ['ratio', 'median', 'per round', 'target'],
          s.comparisons.map((c) => [
            c.label,
            `${fmt(c.median, 3)}×`,
            perRoundText(c),
            c.target ? `${opText(c.target.op)} ${c.target.value}× ${c.target.met ? '✅' : '❌'}` : '—',
          ]),
        ),
        '',
      )
    }
    for (const t of s.tables ?? []) out.push(`**${t.title}**`, '', table(t.columns, t.rows), '')
  }
  out.push('## Versions', '')
  out.push(table(['package', 'version'], Object.entries(results.versions).map(([k, v]) => [k, v ?? 'n/a'])), '')
  out.push('Every run and round in full: the JSON file next to this one.', '')
  return out.join('\n')
}
