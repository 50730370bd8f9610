/** One call under a deadline. Set `settled` once it answered; `expire` runs if it has not in time. */
export interface Deadline {
  settled: boolean
}

interface Pending extends Deadline {
  /** When it falls due (the clock of `Deadlines`). */
  readonly at: number
  readonly expire: () => void
}

/** Calls with one length of deadline, in the order they began: the head falls due first. */
class Queue {
  private items: Pending[] = []
  private first = 0

  push(p: Pending): void {
    this.items.push(p)
  }

  peek(): Pending | undefined {
    return this.items[this.first]
  }

  shift(): void {
    this.first++
    if (this.first === this.items.length) {
      this.items = []
      this.first = 0
    } else if (this.first >= 1024 && this.first * 2 >= this.items.length) {
      this.items = this.items.slice(this.first)
      this.first = 0
    }
  }
}

/**
 * The deadlines of many calls under one timer, instead of a timer per call: calls with the same
 * length of deadline fall due in the order they began, so each length keeps a queue, and the timer
 * is armed for the earliest head only. A call that answered is marked and leaves its queue when the
 * timer next passes it; what a queue holds is bounded by the calls begun within one deadline.
 * Every deadline expires on time (the timer is moved forward when a shorter one begins).
 */
export class Deadlines {
  private readonly queues = new Map<number, Queue>()
  private timer: NodeJS.Timeout | undefined
  /** When the timer fires (Infinity: not armed). */
  private armedFor = Infinity

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A deadline `ms` from now; `expire` runs once it passes unless `settled` was set first. */
  add(ms: number, expire: () => void): Deadline {
    const p: Pending = { at: this.now() + ms, settled: false, expire }
    let q = this.queues.get(ms)
    if (q === undefined) this.queues.set(ms, (q = new Queue()))
    q.push(p)
    if (p.at < this.armedFor) this.arm(p.at)
    return p
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.armedFor = at
    // Node's timers count whole milliseconds: round up, so the head is due when it fires.
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(at - this.now())))
    // The connection keeps the process alive while a call is out; the deadlines need not.
    this.timer.unref()
  }

  private readonly sweep = (): void => {
    this.timer = undefined
    this.armedFor = Infinity
    const now = this.now()
    let next = Infinity
    for (const [ms, q] of this.queues) {
      let head = q.peek()
      while (head !== undefined && (head.settled || head.at <= now)) {
        q.shift()
        if (!head.settled) {
          head.settled = true
          head.expire()
        }
        head = q.peek()
      }
      if (head === undefined) this.queues.delete(ms)
      else if (head.at < next) next = head.at
    }
    if (next !== Infinity) this.arm(next)
  }
}
