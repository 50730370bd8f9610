/** Base class of every error Corral throws or reports; `code` is stable across releases. */
export class CorralError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A bad option, thrown at construction time. The message names the option. */
export class ConfigError extends CorralError {
  constructor(message: string) {
    super('CORRAL_ERR_CONFIG', message)
  }
}

/** A store failed; reported through `onError`, never thrown into a request. */
export class StoreError extends CorralError {
  constructor(message: string, cause?: unknown) {
    super('CORRAL_ERR_STORE', message, { cause })
  }
}

/**
 * A store could not be asked at all (Redis not connected, or its circuit open after repeated
 * failures): nothing was sent. Corral does not report these one by one; `health()` says why.
 */
export class StoreUnavailableError extends StoreError {
  override readonly code = 'CORRAL_ERR_STORE_UNAVAILABLE'
  // Said outright: the CommonJS build renames a class with fields, and `new.target.name` with it.
  override readonly name = 'StoreUnavailableError'
}

/** A user callback (`key`, `tags`, `bypass`, an invalidation selector) threw; the request is not cached. */
export class CallbackError extends CorralError {
  constructor(message: string, cause?: unknown) {
    super('CORRAL_ERR_CALLBACK', message, { cause })
  }
}

/** A failure inside Corral itself (a bug): the request skipped the cache and was answered by the origin. */
export class InternalError extends CorralError {
  constructor(message: string, cause?: unknown) {
    super('CORRAL_ERR_INTERNAL', message, { cause })
  }
}

/**
 * The origin failed where a stale entry could answer instead (RFC 5861 stale-if-error): it
 * answered 5xx, or a background refresh did not store. Reported; the client got the stale entry.
 */
export class OriginError extends CorralError {
  constructor(message: string, cause?: unknown) {
    super('CORRAL_ERR_ORIGIN', message, { cause })
  }
}

export const errors = { CorralError, ConfigError, StoreError, StoreUnavailableError, CallbackError, InternalError, OriginError } as const
