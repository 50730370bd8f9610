/** A value now, or later: stores and the read path answer synchronously when they can. */
export type MaybePromise<T> = T | Promise<T>

/** The one check for "answered later" everywhere in Corral (core, adapters, the store suite). */
export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | null | undefined)?.then === 'function'
}
