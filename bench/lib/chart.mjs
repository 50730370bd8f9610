// The ratio chart: one horizontal bar per comparison, grouped by scenario, drawn as plain SVG.
// Green bars met their target, red ones missed it, grey ones have none; a black tick marks the
// target, a dashed line 1×.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** `groups`: [{ title, comparisons }] (comparisons as made by lib/measure.mjs compare). */
export function ratioChart(groups, { title }) {
  const shown = groups.map((g) => ({ ...g, rows: g.comparisons.filter((c) => Number.isFinite(c.median)) })).filter((g) => g.rows.length > 0)
  const all = shown.flatMap((g) => g.rows)
  const labelW = 430
  const barW = 360
  const valueW = 150
  const rowH = 26
  const headH = 28
  const top = 60
  const width = labelW + barW + valueW
  const plotH = shown.length * headH + all.length * rowH
  const height = top + plotH + 52
  const maxValue = Math.max(1.6, ...all.map((c) => Math.max(c.median, c.target?.value ?? 0)))
  const scaleMax = Math.ceil(maxValue * 4) / 4
  const x = (v) => labelW + (Math.min(v, scaleMax) / scaleMax) * barW
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="12" y="22" font-size="15" font-weight="600" fill="#1f2328">${esc(title)}</text>`)
  const legend = [['#2da44e', 'target met'], ['#cf222e', 'target missed'], ['#8c959f', 'no target']]
  legend.forEach(([color, text], i) => {
    const lx = 12 + i * 130
    out.push(`<rect x="${lx}" y="33" width="12" height="12" fill="${color}"/><text x="${lx + 18}" y="44" fill="#57606a">${text}</text>`)
  })
  const tx0 = 12 + 3 * 130
  out.push(`<line x1="${tx0}" y1="32" x2="${tx0}" y2="46" stroke="#1f2328" stroke-width="3"/><text x="${tx0 + 8}" y="44" fill="#57606a">target</text>`)
  // Grid every 0.25×, labelled every 0.5×.
  for (let v = 0; v <= scaleMax + 1e-9; v += 0.25) {
    const gx = x(v)
    const major = Math.abs(v * 2 - Math.round(v * 2)) < 1e-9
    out.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${top + plotH}" stroke="${v === 1 ? '#1f2328' : '#d0d7de'}" stroke-width="1"${v === 1 ? ' stroke-dasharray="4 3"' : ''}/>`)
    if (major) out.push(`<text x="${gx}" y="${top + plotH + 18}" text-anchor="middle" fill="#57606a">${v.toFixed(1)}×</text>`)
  }
  let y = top
  for (const g of shown) {
    out.push(`<text x="12" y="${y + 19}" font-weight="600" fill="#1f2328">${esc(g.title)}</text>`)
    y += headH
    for (const c of g.rows) {
      const color = c.target === undefined ? '#8c959f' : c.target.met ? '#2da44e' : '#cf222e'
      const lowerIsBetter = c.metric !== 'rps'
      out.push(`<text x="${labelW - 10}" y="${y + 17}" text-anchor="end" fill="#1f2328">${esc(c.label)}${lowerIsBetter ? ' ↓' : ''}</text>`)
      out.push(`<rect x="${labelW}" y="${y + 5}" width="${Math.max(1, x(c.median) - labelW)}" height="${rowH - 10}" fill="${color}" rx="2"/>`)
      if (c.target !== undefined) {
        const tx = x(c.target.value)
        out.push(`<line x1="${tx}" y1="${y + 2}" x2="${tx}" y2="${y + rowH - 2}" stroke="#1f2328" stroke-width="3"/>`)
      }
      const note = c.target === undefined ? '' : `  target ${c.target.op === '>=' ? '≥' : '≤'} ${c.target.value}`
      out.push(`<text x="${x(Math.max(c.median, c.target?.value ?? 0)) + 10}" y="${y + 17}" fill="#1f2328">${c.median.toFixed(2)}×<tspan fill="#57606a" xml:space="preserve">${esc(note)}</tspan></text>`)
      y += rowH
    }
  }
  out.push(`<text x="12" y="${top + plotH + 40}" fill="#57606a">Bars: median of the per-round ratios. ↓ marks ratios where lower is better (latency, CPU per request).</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
