// Small statistics: medians and paired per-round ratios.

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/**
 * `num / den` of one metric, round by round: both runs of a round ran minutes apart at most, so
 * their ratio is sheltered from slow drifts of the machine. Also their median.
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
