/**
 * The tags invalidated while fills were in flight, so that a fill can tell at store time whether
 * one of its tags was invalidated after it began (its tags are only known then). A ring shared by
 * every fill: each fill keeps one number, and the log keeps at most `maxNames` tag names in all
 * (the sets are the invalidations' own, not copies). A fill that began before the oldest record
 * still kept counts as invalidated: the log never forgets an invalidation silently.
 */
export class TagLog {
  private records: ReadonlySet<string>[] = []
  /** Index in `records` of the oldest record kept (dropped records are compacted away in bulk). */
  private first = 0
  /** Sequence number of the next record, and of the oldest kept (at `records[first]`). */
  private next = 0
  private start = 0
  private names = 0

  constructor(private readonly maxNames: number) {}

  /** Where the log stands: a fill remembers it when it begins. */
  get head(): number {
    return this.next
  }

  add(tags: ReadonlySet<string>): void {
    if (tags.size === 0) return
    this.records.push(tags)
    this.next++
    this.names += tags.size
    while (this.names > this.maxNames && this.start < this.next) this.dropOldest()
  }

  /** Whether an invalidation recorded at or after `since` names one of `tags` (true when it can no longer tell). */
  touched(since: number, tags: readonly string[]): boolean {
    if (since < this.start) return true
    if (tags.length === 0) return false
    for (let i = this.first + since - this.start; i < this.records.length; i++) {
      const set = this.records[i] as ReadonlySet<string>
      for (const t of tags) if (set.has(t)) return true
    }
    return false
  }

  /** No fill began before `head` is still in flight: forget everything recorded. */
  clear(): void {
    this.records = []
    this.first = 0
    this.start = this.next
    this.names = 0
  }

  private dropOldest(): void {
    const oldest = this.records[this.first] as ReadonlySet<string>
    this.names -= oldest.size
    this.first++
    this.start++
    if (this.first === this.records.length) this.clear()
    else if (this.first >= 1024 && this.first * 2 >= this.records.length) {
      this.records = this.records.slice(this.first)
      this.first = 0
    }
  }
}
