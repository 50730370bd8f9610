export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * A circuit breaker for one remote store. Closed, every call goes through; after `threshold`
 * failures in a row it opens and calls fail at once, costing no time; after `cooldownMs` one
 * call is let through as a probe (half-open): success closes the breaker, failure opens it again.
 *
 * Small and synchronous on purpose: it sits on the path of every L2 read, where a general-purpose
 * breaker library's per-call promise, events and rolling statistics would cost more than the
 * Redis round trip it guards.
 */
export class CircuitBreaker {
  private failures = 0
  private openedAt = 0
  private probing = false
  private current: BreakerState = 'closed'

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number,
  ) {}

  get state(): BreakerState {
    return this.current
  }

  /** Whether a call may go out now. In half-open state only one probe is out at a time. */
  allow(): boolean {
    if (this.current === 'closed') return true
    if (this.current === 'open') {
      if (this.now() - this.openedAt < this.cooldownMs) return false
      this.current = 'half-open'
      this.probing = false
    }
    if (this.probing) return false
    this.probing = true
    return true
  }

  success(): void {
    this.failures = 0
    this.probing = false
    this.current = 'closed'
  }

  failure(): void {
    this.probing = false
    if (this.current === 'half-open' || ++this.failures >= this.threshold) {
      this.current = 'open'
      this.openedAt = this.now()
      this.failures = 0
    }
  }
}
