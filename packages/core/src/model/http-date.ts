/*
 * HTTP dates, strictly (RFC 9110 §5.6.7). A recipient accepts the three forms below and nothing
 * else; `Date.parse` accepts far more ("0", "Thu, 01 Jan 1970", local times), which would make an
 * invalid Expires a valid one. Times are GMT; the weekday is checked for form, not for truth.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MONTH_INDEX = new Map(MONTHS.map((m, i) => [m, i]))

/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
/** Obsolete RFC 850 form: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
/** ANSI C asctime(): `Sun Nov  6 08:49:37 1994` (a one-digit day is padded with a space). */
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

function at(year: number, month: string, day: number, h: number, m: number, s: number): number {
  const mon = MONTH_INDEX.get(month)
  if (mon === undefined || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return NaN
  const t = Date.UTC(year, mon, day, h, m, Math.min(s, 59))
  // 31 Feb and the like roll over in Date.UTC: refuse them.
  return new Date(t).getUTCDate() === day ? t : NaN
}

/**
 * Milliseconds since the epoch of an HTTP-date, or NaN when `text` is not one. A two-digit RFC 850
 * year that would be more than 50 years in the future is read as the most recent past year with
 * those digits (RFC 9110 §5.6.7), relative to `now`.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number {
  const v = text.trim()
  let m = IMF_FIXDATE.exec(v)
  if (m !== null) return at(Number(m[3]), m[2] as string, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
  m = ASCTIME.exec(v)
  if (m !== null) return at(Number(m[6]), m[1] as string, Number((m[2] as string).trim()), Number(m[3]), Number(m[4]), Number(m[5]))
  m = RFC850.exec(v)
  if (m === null) return NaN
  const thisYear = new Date(now).getUTCFullYear()
  let year = Math.floor(thisYear / 100) * 100 + Number(m[3])
  if (year > thisYear + 50) year -= 100
  return at(year, m[2] as string, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]))
}
