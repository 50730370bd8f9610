/** Map slot and number of one key, beyond its characters. */
const SLOT_BYTES = 96

/**
 * Hit-for-pass (as Varnish calls it): after a key's response could not be stored for a reason
 * that belongs to the response, its misses skip coalescing and the fleet lock for a while, so
 * concurrent requests for an uncacheable URL run side by side instead of queueing behind one
 * another. They are still captured, and stored as soon as a response is storable. Bounded in
 * bytes: past `maxBytes` the oldest keys leave first, which only costs them coalescing again.
 */
export class PassTable {
  private readonly until = new Map<string, number>()
  private held = 0

  constructor(
    private readonly maxBytes: number,
    private readonly ms: number,
  ) {}

  get bytes(): number {
    return this.held
  }

  get size(): number {
    return this.until.size
  }

  has(key: string, now: number): boolean {
    const until = this.until.get(key)
    if (until === undefined) return false
    if (until > now) return true
    this.delete(key)
    return false
  }

  add(key: string, now: number): void {
    // A key passed again and again (every miss of a route that is never stored) keeps its place
    // while more than half its time is left: no Map churn per request.
    const until = this.until.get(key)
    if (until !== undefined && until - now > this.ms / 2) return
    this.delete(key)
    this.until.set(key, now + this.ms)
    this.held += cost(key)
    while (this.held > this.maxBytes) {
      const oldest = this.until.keys().next()
      if (oldest.done === true) break
      this.delete(oldest.value)
    }
  }

  delete(key: string): void {
    if (this.until.delete(key)) this.held -= cost(key)
  }
}

function cost(key: string): number {
  return SLOT_BYTES + 2 * key.length
}
