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

/** A user callback (`key`, `tags`, `bypass`, an invalidation selector) threw; the request is not cached. */
export class CallbackError extends CorralError {
  constructor(message: string, cause?: unknown) {
    super('CORRAL_ERR_CALLBACK', message, { cause })
  }
}

export const errors = { CorralError, ConfigError, StoreError, CallbackError } as const
