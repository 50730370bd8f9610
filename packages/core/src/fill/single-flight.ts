/**
 * In-process single flight: the first miss on a key leads, later misses wait for it. Waiters
 * never wait past `timeoutMs` from the flight's start, so a hung leader cannot strand them.
 */
export class SingleFlight {
  private readonly flights = new Map<string, Flight>()

  constructor(private readonly timeoutMs: number) {}

  /** Starts a flight for `key` and returns it, or returns undefined when one is already under way. */
  lead(key: string): Flight | undefined {
    if (this.flights.has(key)) return undefined
    const flight = new Flight(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key)
    }, this.timeoutMs)
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
  private waiters: ((stored: boolean) => void)[] = []
  private done = false
  private readonly timer: NodeJS.Timeout

  constructor(private readonly onDone: () => void, timeoutMs: number) {
    this.timer = setTimeout(() => this.release(false), timeoutMs)
    this.timer.unref()
  }

  /** Resolves when the leader is done: true if it stored an entry, false otherwise (or on timeout). */
  wait(): Promise<boolean> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** Releases every waiter at once; later calls do nothing. */
  release(stored: boolean): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    this.onDone()
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w(stored)
  }
}
