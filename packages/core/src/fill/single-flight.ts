import type { FlightOutcome } from '../stores/types.js'

export type { FlightOutcome } from '../stores/types.js'

/**
 * In-process single flight: the first miss on a key leads, later misses wait for it. A flight
 * that outlives its deadline ends with `retry`, so a hung leader hands the lead to one waiter
 * instead of stranding every waiter or releasing them all onto the origin.
 */
export class SingleFlight {
  private readonly flights = new Map<string, Flight>()

  /** `backstopMs` ends a flight nobody armed (a leader still asking the fleet lock). */
  constructor(private readonly backstopMs: number) {}

  /** Starts a flight for `key` and returns it, or returns undefined when one is already under way. */
  lead(key: string): Flight | undefined {
    if (this.flights.has(key)) return undefined
    const flight = new Flight(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key)
    })
    flight.arm(this.backstopMs)
    this.flights.set(key, flight)
    return flight
  }

  get(key: string): Flight | undefined {
    return this.flights.get(key)
  }

  get size(): number {
    return this.flights.size
  }
}

export class Flight {
  private waiters: ((outcome: FlightOutcome) => void)[] = []
  private done = false
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly onDone: () => void) {}

  /** Resolves when the leader is done, or when it overran its deadline. */
  wait(): Promise<FlightOutcome> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /**
   * (Re)starts the leader's clock: if the flight has not been released `ms` from now, it ends
   * with `retry` and `onOverrun` runs (the leader gives up its fleet lock).
   */
  arm(ms: number, onOverrun?: () => void): void {
    if (this.done) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.release('retry')
      onOverrun?.()
    }, ms)
    this.timer.unref()
  }

  /** Releases every waiter at once; later calls do nothing. */
  release(outcome: FlightOutcome): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    this.onDone()
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w(outcome)
  }
}
