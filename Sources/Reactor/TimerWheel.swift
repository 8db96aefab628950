/// Identifies one scheduled timer. Stale IDs (fired or cancelled) are recognised by their generation
/// and ignored, so cancelling twice or cancelling after firing is harmless.
public struct TimerID: Hashable, Sendable {
    let index: UInt32
    let generation: UInt32

    /// Names no timer; cancelling it does nothing.
    static let none = TimerID(index: .max, generation: .max)
}

/// A hierarchical hashed timing wheel (Varghese & Lauck; the classic Linux `timer_list` layout):
/// four levels of 256 slots, level L slot width 256^L ticks. Scheduling and cancelling are O(1)
/// (link or unlink in a doubly linked bucket); a timer is moved down a level at most three times
/// before it fires. Occupancy bitmaps let `nextExpiry` and `popExpired` skip empty slots, so an idle
/// loop wakes only when a bucket is due, not every tick.
///
/// Nodes live in one array with a free list: after warm-up, scheduling allocates nothing.
/// Time is in abstract ticks (the event loop uses 1 ms). Not thread-safe; loop-confined.
struct TimerWheel<Payload> {
    private static var slotBits: UInt64 { 8 }
    private static var slotMask: UInt64 { 255 }
    private static var levels: Int { 4 }
    private static var none: UInt32 { .max }
    /// The bucket of timers whose tick has been processed but which `popExpired` has not yet returned.
    private static var firingBucket: Int { levels * 256 }
    /// Placement cap for deadlines beyond the top level's span; such timers are re-placed on cascade.
    private static var maximumDelta: UInt64 { 1 << 32 - 1 }

    private struct Node {
        var deadline: UInt64
        var next: UInt32
        var prev: UInt32
        var bucket: Int32  // -1: detached (popped, or free)
        var generation: UInt32
        var payload: Payload?
    }

    /// The next tick to process: every timer with a deadline before it has been moved to firing.
    private(set) var pending: UInt64
    private var heads: [UInt32]
    private var occupancy: [UInt64]  // 4 words (256 bits) per level
    private var nodes: [Node] = []
    private var freeHead: UInt32 = TimerWheel.none
    /// Timers scheduled and neither fired nor cancelled (popped-but-not-released ones included).
    private(set) var count = 0

    init(now: UInt64 = 0) {
        pending = now + 1
        heads = Array(repeating: TimerWheel.none, count: TimerWheel.levels * 256 + 1)
        occupancy = Array(repeating: 0, count: TimerWheel.levels * 4)
    }

    /// Schedules `payload` to fire once `deadline` (in ticks) has passed. A deadline in the past fires
    /// at the next tick processed.
    mutating func schedule(at deadline: UInt64, _ payload: Payload) -> TimerID {
        let index: UInt32
        if freeHead != TimerWheel.none {
            index = freeHead
            freeHead = nodes[Int(index)].next
            nodes[Int(index)].payload = payload
            nodes[Int(index)].deadline = deadline
        } else {
            index = UInt32(nodes.count)
            nodes.append(
                Node(
                    deadline: deadline, next: TimerWheel.none, prev: TimerWheel.none,
                    bucket: -1, generation: 0, payload: payload))
        }
        count += 1
        link(index, into: bucket(for: deadline))
        return TimerID(index: index, generation: nodes[Int(index)].generation)
    }

    /// Cancels a timer; returns its payload if it was still scheduled (or popped and not yet released).
    @discardableResult
    mutating func cancel(_ id: TimerID) -> Payload? {
        guard isLive(id) else { return nil }
        let index = Int(id.index)
        if nodes[index].bucket >= 0 { unlink(id.index) }
        let payload = nodes[index].payload
        free(id.index)
        return payload
    }

    /// Whether `id` is still scheduled (or popped and not yet released).
    func isLive(_ id: TimerID) -> Bool {
        Int(id.index) < nodes.count && nodes[Int(id.index)].generation == id.generation
            && nodes[Int(id.index)].payload != nil
    }

    /// The deadline `id` was scheduled for, if it is live.
    func deadline(of id: TimerID) -> UInt64? {
        isLive(id) ? nodes[Int(id.index)].deadline : nil
    }

    /// Returns the next timer due at or before `now`, detached from the wheel but still live: the
    /// caller must `release` it (one-shot) or `rearm` it (repeating). Nil when nothing more is due.
    mutating func popExpired(now: UInt64) -> (TimerID, Payload)? {
        while true {
            let head = heads[TimerWheel.firingBucket]
            if head != TimerWheel.none {
                unlink(head)
                let node = nodes[Int(head)]
                return (TimerID(index: head, generation: node.generation), node.payload!)
            }
            guard count > 0, pending <= now else { return nil }
            advanceOneStep(upTo: now)
        }
    }

    /// Frees a popped one-shot timer. Stale IDs are ignored.
    mutating func release(_ id: TimerID) {
        guard isLive(id), nodes[Int(id.index)].bucket < 0 else { return }
        free(id.index)
    }

    /// Re-links a popped (or still scheduled) timer for a new deadline, keeping its ID.
    mutating func rearm(_ id: TimerID, deadline: UInt64) {
        guard isLive(id) else { return }
        if nodes[Int(id.index)].bucket >= 0 { unlink(id.index) }
        nodes[Int(id.index)].deadline = deadline
        link(id.index, into: bucket(for: deadline))
    }

    /// The earliest tick at which something is due: a timer's deadline, or a cascade of a higher-level
    /// bucket (which may be earlier than any deadline in it). Nil when no timer is scheduled.
    func nextExpiry() -> UInt64? {
        if heads[TimerWheel.firingBucket] != TimerWheel.none { return pending - 1 }
        var best: UInt64? = nil
        for level in 0..<TimerWheel.levels {
            let shift = UInt64(level) * TimerWheel.slotBits
            let span: UInt64 = 1 << shift
            // The first tick >= pending at which this level's buckets are visited.
            let base = (pending + span - 1) & ~(span - 1)
            let startDigit = Int((base >> shift) & TimerWheel.slotMask)
            guard let slot = nextOccupied(level: level, from: startDigit) ?? nextOccupied(level: level, from: 0)
            else { continue }
            let tick = base + (UInt64((slot - startDigit) & 255) << shift)
            if best == nil || tick < best! { best = tick }
        }
        return best
    }

    // MARK: - Ticks

    /// Processes tick `pending` (cascading higher levels at boundaries and moving due timers to the
    /// firing bucket), then jumps straight to the next tick at which any bucket is due, or past `now`.
    private mutating func advanceOneStep(upTo now: UInt64) {
        let tick = pending
        let digit = Int(tick & TimerWheel.slotMask)
        if digit == 0 {
            var level = 1
            while level < TimerWheel.levels {
                let levelDigit = Int((tick >> (UInt64(level) * TimerWheel.slotBits)) & TimerWheel.slotMask)
                cascade(level: level, slot: levelDigit)
                if levelDigit != 0 { break }
                level += 1
            }
        }
        pending = tick + 1
        if heads[digit] != TimerWheel.none {
            moveToFiring(bucket: digit)
            return
        }
        // Skipped ticks hold nothing: `nextExpiry` includes every cascade of an occupied bucket.
        pending = min(nextExpiry() ?? now + 1, now + 1)
    }

    private mutating func cascade(level: Int, slot: Int) {
        let bucket = level * 256 + slot
        var index = heads[bucket]
        guard index != TimerWheel.none else { return }
        heads[bucket] = TimerWheel.none
        clearOccupied(bucket)
        while index != TimerWheel.none {
            let next = nodes[Int(index)].next
            link(index, into: self.bucket(for: nodes[Int(index)].deadline))
            index = next
        }
    }

    private mutating func moveToFiring(bucket: Int) {
        // Prepend the whole bucket to the firing list (order among equal ticks is not promised).
        var index = heads[bucket]
        heads[bucket] = TimerWheel.none
        clearOccupied(bucket)
        while index != TimerWheel.none {
            let next = nodes[Int(index)].next
            link(index, into: TimerWheel.firingBucket)
            index = next
        }
    }

    private func bucket(for deadline: UInt64) -> Int {
        let expires = max(deadline, pending)
        let delta = min(expires - pending, TimerWheel.maximumDelta)
        let placed = pending + delta
        var level = 0
        while level < TimerWheel.levels - 1 && delta >= 1 << ((UInt64(level) + 1) * TimerWheel.slotBits) {
            level += 1
        }
        return level * 256 + Int((placed >> (UInt64(level) * TimerWheel.slotBits)) & TimerWheel.slotMask)
    }

    // MARK: - Lists and bitmaps

    private mutating func link(_ index: UInt32, into bucket: Int) {
        let head = heads[bucket]
        nodes[Int(index)].next = head
        nodes[Int(index)].prev = TimerWheel.none
        nodes[Int(index)].bucket = Int32(bucket)
        if head != TimerWheel.none { nodes[Int(head)].prev = index }
        heads[bucket] = index
        if bucket < TimerWheel.firingBucket { occupancy[bucket >> 6] |= 1 << UInt64(bucket & 63) }
    }

    private mutating func unlink(_ index: UInt32) {
        let node = nodes[Int(index)]
        let bucket = Int(node.bucket)
        if node.prev != TimerWheel.none {
            nodes[Int(node.prev)].next = node.next
        } else {
            heads[bucket] = node.next
            if node.next == TimerWheel.none && bucket < TimerWheel.firingBucket { clearOccupied(bucket) }
        }
        if node.next != TimerWheel.none { nodes[Int(node.next)].prev = node.prev }
        nodes[Int(index)].bucket = -1
    }

    private mutating func free(_ index: UInt32) {
        nodes[Int(index)].payload = nil
        nodes[Int(index)].bucket = -1
        nodes[Int(index)].generation &+= 1
        nodes[Int(index)].next = freeHead
        freeHead = index
        count -= 1
    }

    private mutating func clearOccupied(_ bucket: Int) {
        occupancy[bucket >> 6] &= ~(1 << UInt64(bucket & 63))
    }

    /// The first occupied slot of `level` at or after `slot` (no wrap-around).
    private func nextOccupied(level: Int, from slot: Int) -> Int? {
        var slot = slot
        while slot < 256 {
            let word = occupancy[level * 4 + slot >> 6] >> UInt64(slot & 63)
            if word != 0 { return slot + word.trailingZeroBitCount }
            slot = (slot | 63) + 1
        }
        return nil
    }
}
