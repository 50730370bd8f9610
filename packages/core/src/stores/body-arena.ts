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
 * full slab (copies its live bodies into the current slab, tells their owners, drops the slab),
 * one slab per call so that no call copies more than one slab's worth, in two cases:
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
const EMPTY: Buffer = Buffer.alloc(0)

/** One slab: written front to back, never rewritten. */
class Slab<T> {
  /** Bytes handed out so far (the next region starts here). */
  used = 0
  /** Bytes of live regions (aligned lengths). */
  live = 0
  /** Each live view in this slab and its owner. */
  readonly owners = new Map<Buffer, T>()
  /** The arena's `allocated` when the slab became nearly empty. */
  sparseAt = 0
  constructor(readonly bytes: Buffer) {}
}

/** A body arena for one store: see the module comment. */
export class BodyArena<T> {
  readonly slabBytes: number
  /** Largest body placed in a slab; larger ones get an allocation of their own. */
  readonly maxInSlab: number
  private readonly moved: (owner: T, view: Buffer) => void
  /** Every slab not dropped yet, by its ArrayBuffer (how a view finds its slab). */
  private readonly slabs = new Map<ArrayBufferLike, Slab<T>>()
  /** Slabs no longer written to (full, or passed over), candidates for evacuation. */
  private readonly full = new Set<Slab<T>>()
  /** Full slabs nearly empty, in the order they became so. */
  private readonly sparse = new Set<Slab<T>>()
  /** Bytes handed out since the arena was made: the clock of `sparseAt`. */
  private allocated = 0
  private current: Slab<T> | undefined
  private totalLive = 0
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
    const view = this.allocate(length)
    bytes.copy(view)
    this.track(view, owner)
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
    slab.owners.delete(view)
    const size = aligned(view.length)
    slab.live -= size
    this.totalLive -= size
    this.bodies--
    if (slab === this.current) return
    this.deadInFull += size
    if (slab.live === 0) this.drop(slab)
    else this.checkSparse(slab)
  }

  /**
   * One step of compaction, when the full slabs hold more dead bytes than the bound: evacuates the
   * sparsest full slab. Returns the bytes copied (0 when under the bound).
   */
  compact(): number {
    const oldest = first(this.sparse)
    if (oldest !== undefined && this.allocated - oldest.sparseAt >= this.slabBytes) return this.evacuate(oldest)
    if (this.deadInFull <= Math.max(DEAD_SHARE * this.slabs.size * this.slabBytes, FLOOR_SLABS * this.slabBytes)) return 0
    let sparsest: Slab<T> | undefined
    for (const s of this.full) if (sparsest === undefined || s.live < sparsest.live) sparsest = s
    if (sparsest === undefined) return 0
    return this.evacuate(sparsest)
  }

  /** Forgets every slab (views handed out stay valid: nothing is written to them again). */
  clear(): void {
    for (const s of this.slabs.values()) s.owners.clear()
    this.slabs.clear()
    this.full.clear()
    this.sparse.clear()
    this.current = undefined
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

  /** Copies every live body of `slab` into the current slab, tells their owners, drops `slab`. */
  private evacuate(slab: Slab<T>): number {
    // Out of the candidates first, so that the copies below can never be placed in it.
    this.full.delete(slab)
    this.sparse.delete(slab)
    let copied = 0
    for (const [view, owner] of slab.owners) {
      const copy = this.allocate(view.length)
      view.copy(copy)
      this.track(copy, owner)
      copied += view.length
      this.moved(owner, copy)
    }
    this.totalLive -= slab.live
    this.bodies -= slab.owners.size
    this.deadInFull -= this.slabBytes - slab.live
    slab.owners.clear()
    slab.live = 0
    this.slabs.delete(slab.bytes.buffer)
    this.evacuations++
    this.copiedBytes += copied
    return copied
  }

  private drop(slab: Slab<T>): void {
    this.full.delete(slab)
    this.sparse.delete(slab)
    this.slabs.delete(slab.bytes.buffer)
    this.deadInFull -= this.slabBytes
  }

  /** `length` bytes never handed out before, in the current slab (starting a new one when full). */
  private allocate(length: number): Buffer {
    const size = aligned(length)
    let slab = this.current
    if (slab === undefined || slab.used + size > this.slabBytes) {
      if (slab !== undefined) this.retire(slab)
      slab = new Slab<T>(newSlab(this.slabBytes))
      this.slabs.set(slab.bytes.buffer, slab)
      this.current = slab
    }
    const view = slab.bytes.subarray(slab.used, slab.used + length)
    slab.used += size
    this.allocated += size
    return view
  }

  /** The current slab is full: from now on it is only read, and its unused tail is dead. */
  private retire(slab: Slab<T>): void {
    this.current = undefined
    if (slab.live === 0) {
      this.slabs.delete(slab.bytes.buffer)
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

  private track(view: Buffer, owner: T): void {
    const slab = this.slabs.get(view.buffer) as Slab<T>
    slab.owners.set(view, owner)
    const size = aligned(view.length)
    slab.live += size
    this.totalLive += size
    this.bodies++
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
function newSlab(bytes: number): Buffer {
  return Buffer.from(new ResizableArrayBuffer(bytes, { maxByteLength: bytes }), 0, bytes)
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
