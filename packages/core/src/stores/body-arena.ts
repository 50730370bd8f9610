import { ownedBuffer } from '../model/entry.js'

/**
 * Where L1 keeps response bodies: bump-allocated, 8-byte aligned, into slabs of a fixed size, so
 * that thousands of small bodies are a few large allocations instead of thousands of small ones
 * (freed only when V8 collects each one's ArrayBuffer, and left interleaved with live ones in
 * malloc's heap, which keeps the process's RSS high long after eviction).
 *
 * The safety rule: bytes once handed out are never written again. A region is written once, when
 * a body is copied in; a slab is filled front to back and, once full or dropped, never written
 * again. A response still writing an evicted body therefore always sends that body: its view keeps
 * its slab alive (V8 frees the slab when the last view of it is collected), and nothing else is
 * ever copied over it.
 *
 * Each live view has exactly one owner (for L1: the entry whose `body` it is), so that the bytes
 * are counted once. A full slab is dropped as soon as nothing in it is live. Compaction evacuates a
 * full slab (copies its live bodies into a slab of their own, tells their owners, drops the slab),
 * 64 KiB per call so that no store call pauses for a whole slab, in two cases:
 * - a slab nearly empty (at most 1/32 live) for a whole slab's worth of allocations since: a few
 *   hot bodies must not keep a slab alive forever. In a FIFO-like workload the last bodies of a
 *   slab die sooner than that, and nothing is copied;
 * - the full slabs' dead bytes over 10% of all slab bytes (and over 2 slabs, so that a small cache
 *   does not copy for a few kilobytes): the sparsest slab, which is at least as dead as the average.
 *   This bounds the slab bytes to about live / 0.9 + 4 slabs; the price is copying, at worst
 *   (dead bytes spread evenly) 9 bytes for each byte reclaimed.
 */
export interface BodyArenaOptions<T> {
  /** Bytes in a slab; bodies over `slabBytes / 16` keep an allocation of their own. */
  readonly slabBytes: number
  /**
   * Called when compaction moved `owner`'s body to `view`: the same bytes, in another slab. The
   * owner must use `view` from then on (its old view stays valid for whoever still holds it).
   */
  readonly moved: (owner: T, view: Buffer) => void
}

/** What the arena holds, in bytes (see `BodyArena.stats`). */
export interface BodyArenaStats {
  /** Slabs the arena still writes to or tracks (dropped slabs live on only until V8 frees them). */
  readonly slabs: number
  /** Their total size. */
  readonly slabBytes: number
  /** Bytes of live bodies in them, alignment included. */
  readonly liveBytes: number
  /** Bytes in full slabs that no live body uses: what compaction reclaims. */
  readonly deadBytes: number
  /** Live bodies in slabs. */
  readonly bodies: number
  /** Slabs evacuated by compaction, since the arena was made. */
  readonly evacuations: number
  /** Bytes copied by compaction, since the arena was made. */
  readonly copiedBytes: number
}

/**
 * Compaction starts when the dead bytes in full slabs exceed this share of all slab bytes (and
 * `FLOOR_SLABS` slabs' worth, so that a small cache does not copy for a few kilobytes).
 */
const DEAD_SHARE = 0.1
const FLOOR_SLABS = 2
/** A full slab with at most this share live is "nearly empty". */
const SPARSE_SHARE = 1 / 32
/**
 * Bytes one step of compaction copies, so that no store call pauses for a whole slab; a step
 * finishes the slab when the dead bytes are past twice the bound (compaction falling behind).
 */
const EVACUATION_STEP = 64 * 1024
const EMPTY: Buffer = Buffer.alloc(0)

/** Where a slab stands: bodies are copied into it, it is only read, or it is being emptied. */
type SlabState = 'writing' | 'full' | 'evacuating'

/** One slab: written front to back, never rewritten. */
class Slab<T> {
  state: SlabState = 'writing'
  /** Bytes handed out so far (the next region starts here). */
  used = 0
  /** Bytes of live regions (aligned lengths). */
  live = 0
  /** Each live view in this slab and its owner. */
  readonly owners = new Map<Buffer, T>()
  /** The arena's `allocated` when the slab became nearly empty. */
  sparseAt = 0
  constructor(readonly memory: ArrayBuffer) {}
}

/** A body arena for one store: see the module comment. */
export class BodyArena<T> {
  readonly slabBytes: number
  /** Largest body placed in a slab; larger ones get an allocation of their own. */
  readonly maxInSlab: number
  private readonly moved: (owner: T, view: Buffer) => void
  /** Every slab not dropped yet, by its ArrayBuffer (how a view finds its slab). */
  private readonly slabs = new Map<ArrayBufferLike, Slab<T>>()
  /** Full slabs: candidates for evacuation. */
  private readonly full = new Set<Slab<T>>()
  /** Full slabs nearly empty, in the order they became so. */
  private readonly sparse = new Set<Slab<T>>()
  /** Bytes handed out since the arena was made: the clock of `sparseAt`. */
  private allocated = 0
  /** Where new bodies are copied. */
  private fresh: Slab<T> | undefined
  /**
   * Where compaction copies the bodies it moves: apart from new bodies, so that bodies which
   * outlived a slab (likely to live on) share slabs, and new ones (likely to die sooner) theirs.
   */
  private survivors: Slab<T> | undefined
  private evacuating: Slab<T> | undefined
  private totalLive = 0
  /** Dead bytes in slabs no longer written (full or evacuating), their unused tails included. */
  private deadInFull = 0
  private bodies = 0
  private evacuations = 0
  private copiedBytes = 0

  constructor(options: BodyArenaOptions<T>) {
    this.slabBytes = options.slabBytes
    this.maxInSlab = Math.floor(options.slabBytes / 16)
    this.moved = options.moved
  }

  /**
   * A copy of `bytes` for `owner` to keep: a view into the current slab, or (over `maxInSlab`) a
   * buffer of its own, or a shared empty buffer. Only slab views are tracked (see `ownerOf`).
   */
  place(owner: T, bytes: Buffer): Buffer {
    const length = bytes.length
    if (length === 0) return EMPTY
    if (length > this.maxInSlab) return ownedBuffer(bytes)
    const view = this.allocate(length, false)
    bytes.copy(view)
    const slab = this.slabs.get(view.buffer) as Slab<T>
    slab.owners.set(view, owner)
    slab.live += aligned(length)
    this.totalLive += aligned(length)
    this.bodies++
    return view
  }

  /** The owner of `view` when it is a live body of this arena (the very Buffer `place` returned). */
  ownerOf(view: Buffer): T | undefined {
    return this.slabs.get(view.buffer)?.owners.get(view)
  }

  /** Gives the live view `view` from `from` to `to` (no copy); false when `from` does not own it. */
  transfer(view: Buffer, from: T, to: T): boolean {
    const slab = this.slabs.get(view.buffer)
    if (slab === undefined || slab.owners.get(view) !== from) return false
    slab.owners.set(view, to)
    return true
  }

  /** `owner` no longer uses `view`: its bytes become dead. Does nothing unless `owner` owns it. */
  release(view: Buffer, owner: T): void {
    const slab = this.slabs.get(view.buffer)
    if (slab === undefined || slab.owners.get(view) !== owner) return
    this.totalLive -= aligned(view.length)
    this.bodies--
    this.forget(slab, view)
  }

  /**
   * One step of compaction: moves up to `EVACUATION_STEP` bytes out of the slab being evacuated,
   * or of the next one to evacuate when the bounds call for it (see the module comment). Returns
   * the bytes copied (0 when within the bounds).
   */
  compact(): number {
    let slab = this.evacuating
    if (slab === undefined) {
      slab = this.candidate()
      if (slab === undefined) return 0
      this.full.delete(slab)
      this.sparse.delete(slab)
      slab.state = 'evacuating'
      this.evacuating = slab
      this.evacuations++
    }
    const step = this.deadInFull > 2 * this.bound() ? Infinity : EVACUATION_STEP
    let copied = 0
    // Moved views leave `owners` as they are copied, so a later step starts where this one ended.
    for (const [view, owner] of slab.owners) {
      if (copied >= step) break
      const copy = this.allocate(view.length, true)
      view.copy(copy)
      const to = this.slabs.get(copy.buffer) as Slab<T>
      to.owners.set(copy, owner)
      to.live += aligned(view.length)
      copied += view.length
      this.moved(owner, copy)
      this.forget(slab, view)
    }
    this.copiedBytes += copied
    return copied
  }

  /** Forgets every slab (views handed out stay valid: nothing is written to them again). */
  clear(): void {
    for (const s of this.slabs.values()) s.owners.clear()
    this.slabs.clear()
    this.full.clear()
    this.sparse.clear()
    this.fresh = undefined
    this.survivors = undefined
    this.evacuating = undefined
    this.totalLive = 0
    this.deadInFull = 0
    this.bodies = 0
  }

  stats(): BodyArenaStats {
    return {
      slabs: this.slabs.size,
      slabBytes: this.slabs.size * this.slabBytes,
      liveBytes: this.totalLive,
      deadBytes: this.deadInFull,
      bodies: this.bodies,
      evacuations: this.evacuations,
      copiedBytes: this.copiedBytes,
    }
  }

  /** Dead bytes the full slabs may hold before compaction starts. */
  private bound(): number {
    return Math.max(DEAD_SHARE * this.slabs.size * this.slabBytes, FLOOR_SLABS * this.slabBytes)
  }

  /** The slab to evacuate next: one nearly empty for a while, else the sparsest past the bound. */
  private candidate(): Slab<T> | undefined {
    const oldest = first(this.sparse)
    if (oldest !== undefined && this.allocated - oldest.sparseAt >= this.slabBytes) return oldest
    if (this.deadInFull <= this.bound()) return undefined
    let sparsest: Slab<T> | undefined
    for (const s of this.full) if (sparsest === undefined || s.live < sparsest.live) sparsest = s
    return sparsest
  }

  /** `view`, live in `slab`, is no longer there (released, or moved): its bytes are dead. */
  private forget(slab: Slab<T>, view: Buffer): void {
    slab.owners.delete(view)
    const size = aligned(view.length)
    slab.live -= size
    if (slab.state === 'writing') return
    this.deadInFull += size
    if (slab.live === 0) this.drop(slab)
    else if (slab.state === 'full') this.checkSparse(slab)
  }

  /** Lets go of a slab that is no longer written to: V8 frees it once no view of it is left. */
  private drop(slab: Slab<T>): void {
    this.full.delete(slab)
    this.sparse.delete(slab)
    if (this.evacuating === slab) this.evacuating = undefined
    this.slabs.delete(slab.memory)
    this.deadInFull -= this.slabBytes
  }

  /**
   * `length` bytes never handed out before, in the slab for new bodies or (`survivor`) for moved
   * ones, starting a new slab when it is full.
   */
  private allocate(length: number, survivor: boolean): Buffer {
    const size = aligned(length)
    let slab = survivor ? this.survivors : this.fresh
    if (slab === undefined || slab.used + size > this.slabBytes) {
      if (slab !== undefined) this.retire(slab)
      slab = new Slab<T>(newSlab(this.slabBytes))
      this.slabs.set(slab.memory, slab)
      if (survivor) this.survivors = slab
      else this.fresh = slab
    }
    const view = viewOf(slab.memory, slab.used, length)
    slab.used += size
    this.allocated += size
    return view
  }

  /** A slab that was written to is full: from now on it is only read, and its unused tail is dead. */
  private retire(slab: Slab<T>): void {
    slab.state = 'full'
    if (slab.live === 0) {
      this.slabs.delete(slab.memory)
      return
    }
    this.full.add(slab)
    this.deadInFull += this.slabBytes - slab.live
    this.checkSparse(slab)
  }

  /** Notes when the full slab `slab` becomes nearly empty. */
  private checkSparse(slab: Slab<T>): void {
    if (slab.live > SPARSE_SHARE * this.slabBytes || this.sparse.has(slab)) return
    slab.sparseAt = this.allocated
    this.sparse.add(slab)
  }
}

/**
 * A slab of `bytes` bytes that goes back to the system as soon as V8 frees it. A resizable
 * ArrayBuffer whose maximum is its size: V8 maps it with its page allocator (exactly `bytes` of
 * address space, unlike a WebAssembly.Memory) and unmaps it when collected. A plain
 * ArrayBuffer of 1 MiB comes from malloc, which, once it has freed one such block, serves the
 * next ones from its heap and keeps their pages when they are freed: the process's RSS would stay
 * at the highest number of slabs ever alive, live and awaiting collection together. Where
 * resizable ArrayBuffers do not exist, the option is ignored and the slab is a plain one.
 */
function newSlab(bytes: number): ArrayBuffer {
  return new ResizableArrayBuffer(bytes, { maxByteLength: bytes })
}

/**
 * A Buffer over `length` bytes of `memory` from `offset`: a Uint8Array given Buffer's prototype.
 * What `Buffer.from(memory, offset, length)` or `subarray` make over a resizable ArrayBuffer takes
 * 176 bytes of heap (V8 gives that subclass instance a map with room for properties it never gets)
 * and twice the time; a Uint8Array takes 104, like any Buffer over a plain ArrayBuffer.
 */
function viewOf(memory: ArrayBuffer, offset: number, length: number): Buffer {
  const view = new Uint8Array(memory, offset, length)
  Object.setPrototypeOf(view, Buffer.prototype)
  return view as Buffer
}

/** ArrayBuffer's constructor with its ES2024 options (the project compiles against ES2022's lib). */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer

function first<V>(set: Set<V>): V | undefined {
  for (const v of set) return v
  return undefined
}

/** `n` rounded up to a multiple of 8, so that every region starts 8-byte aligned. */
function aligned(n: number): number {
  return (n + 7) & ~7
}
