// Small statistics: medians, percentiles and paired per-round ratios.

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(xs, p) {
  if (xs.length === 0) return Number.NaN
  const v = [...xs].sort((a, b) => a - b)
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]
}

/**
 * `num / den` of one metric, round by round (both modes ran in the same round, minutes apart at
 * most), and the median of those ratios, which is what targets are judged on.
 */
export function pairedRatio(numRuns, denRuns, metric) {
  const perRound = numRuns.map((run, i) => run[metric] / denRuns[i]?.[metric])
  return { perRound, median: median(perRound) }
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}
