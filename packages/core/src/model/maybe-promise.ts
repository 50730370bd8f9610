/** A value now, or later: stores and the read path answer synchronously when they can. */
export type MaybePromise<T> = T | Promise<T>

/** The one check for "answered later" everywhere in Corral (core, adapters, the store suite). */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | null | undefined)?.then === 'function'
}

/** Settles with `work`, or rejects after `ms` with `no answer within <ms> ms` (the work goes on, unwaited). */
export function withDeadline<T>(work: Promise<T>, ms: number, what = ''): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms${what}`)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
