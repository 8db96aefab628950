import Testing
@testable import Reactor

/// Drains everything due at `now`, releasing one-shot timers; returns the payloads in firing order.
private func fire(_ wheel: inout TimerWheel<Int>, at now: UInt64) -> [Int] {
    var fired: [Int] = []
    while let (id, payload) = wheel.popExpired(now: now) {
        wheel.release(id)
        fired.append(payload)
    }
    return fired
}

/// A seeded generator, so a failure reproduces (SplitMix64).
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct TimerWheelTests {
    /// Timers fire at the first tick at or after their deadline, never before, across all levels.
    @Test func firesAtDeadlineAcrossLevels() {
        var wheel = TimerWheel<Int>(now: 0)
        let deadlines: [UInt64] = [
            1, 2, 255, 256, 257, 1000, 65_535, 65_536, 70_000, 16_777_216, 20_000_000, 5_000_000_000
        ]
        for (index, deadline) in deadlines.enumerated() { _ = wheel.schedule(at: deadline, index) }
        var now: UInt64 = 0
        var firedAt: [Int: UInt64] = [:]
        while wheel.count > 0 {
            // Jump the way an idle loop does: straight to the next expiry the wheel reports.
            now = wheel.nextExpiry()!
            for index in fire(&wheel, at: now) { firedAt[index] = now }
        }
        for (index, deadline) in deadlines.enumerated() {
            #expect(
                firedAt[index] == deadline,
                "timer \(index) due at \(deadline) fired at \(String(describing: firedAt[index]))")
        }
    }

    /// Random deadlines fire in deadline order when time advances in random steps.
    @Test func firesInDeadlineOrderWithRandomSteps() {
        var generator = SplitMix64(seed: 0x5EED)
        var wheel = TimerWheel<Int>(now: 0)
        var deadlines: [UInt64] = []
        for index in 0..<5_000 {
            let deadline = UInt64.random(in: 1...3_000_000, using: &generator)
            deadlines.append(deadline)
            _ = wheel.schedule(at: deadline, index)
        }
        var now: UInt64 = 0
        var previous: UInt64 = 0
        var count = 0
        while wheel.count > 0 {
            now += UInt64.random(in: 1...5_000, using: &generator)
            for index in fire(&wheel, at: now) {
                let deadline = deadlines[index]
                #expect(deadline <= now, "fired early")
                #expect(deadline > previous, "fired late: due at \(deadline), already past at \(previous)")
                count += 1
            }
            previous = now
        }
        #expect(count == 5_000)
    }

    /// `nextExpiry` is never later than the earliest deadline, so a loop sleeping until it never misses one.
    @Test func nextExpiryIsNeverLate() {
        var generator = SplitMix64(seed: 0x5EED)
        var wheel = TimerWheel<Int>(now: 0)
        var pending: [UInt64] = []
        for index in 0..<2_000 {
            let deadline = UInt64.random(in: 1...10_000_000, using: &generator)
            pending.append(deadline)
            _ = wheel.schedule(at: deadline, index)
        }
        var wakeups = 0
        while wheel.count > 0 {
            let next = wheel.nextExpiry()!
            let earliest = pending.min()!
            #expect(next <= earliest)
            for index in fire(&wheel, at: next) {
                #expect(pending[index] == next)
                pending[index] = .max
            }
            wakeups += 1
        }
        // Cascades add wake-ups, but far fewer than one per tick.
        #expect(wakeups < 2_000 * 4)
    }

    /// Cancelled timers never fire; cancelling twice, or after firing, is harmless.
    @Test func cancel() {
        var wheel = TimerWheel<Int>(now: 0)
        let keep = wheel.schedule(at: 10, 1)
        let drop = wheel.schedule(at: 10, 2)
        let far = wheel.schedule(at: 1_000_000, 3)
        #expect(wheel.cancel(drop) == 2)
        #expect(wheel.cancel(drop) == nil)
        #expect(wheel.cancel(far) == 3)
        #expect(fire(&wheel, at: 2_000_000) == [1])
        #expect(wheel.cancel(keep) == nil)
        #expect(wheel.count == 0)
        #expect(wheel.nextExpiry() == nil)
    }

    /// A freed node's ID stays dead even after the node is reused for a new timer.
    @Test func staleIDAfterReuse() {
        var wheel = TimerWheel<Int>(now: 0)
        let first = wheel.schedule(at: 5, 1)
        wheel.cancel(first)
        let second = wheel.schedule(at: 5, 2)
        #expect(first.index == second.index)
        #expect(wheel.cancel(first) == nil)
        #expect(wheel.isLive(second))
        #expect(fire(&wheel, at: 5) == [2])
    }

    /// Rearming moves a timer (earlier or later) and keeps its ID.
    @Test func reschedule() {
        var wheel = TimerWheel<Int>(now: 0)
        let later = wheel.schedule(at: 100, 1)
        let sooner = wheel.schedule(at: 100_000, 2)
        wheel.rearm(later, deadline: 300_000)
        wheel.rearm(sooner, deadline: 50)
        #expect(fire(&wheel, at: 99) == [2])
        #expect(fire(&wheel, at: 299_999) == [])
        #expect(fire(&wheel, at: 300_000) == [1])
    }

    /// A deadline in the past fires at the next tick processed.
    @Test func pastDeadline() {
        var wheel = TimerWheel<Int>(now: 1_000)
        _ = wheel.schedule(at: 3, 7)
        #expect(wheel.nextExpiry() == 1_001)
        #expect(fire(&wheel, at: 1_001) == [7])
    }

    /// Deadlines beyond the top level's span (2^32 ticks) are parked and re-placed until due.
    @Test func farDeadlines() {
        var wheel = TimerWheel<Int>(now: 0)
        let far: UInt64 = 1 << 40 + 12_345
        _ = wheel.schedule(at: far, 1)
        var now: UInt64 = 0
        var wakeups = 0
        while wheel.count > 0 {
            now = wheel.nextExpiry()!
            #expect(now <= far)
            let fired = fire(&wheel, at: now)
            if !fired.isEmpty { #expect(now == far) }
            wakeups += 1
        }
        #expect(wakeups < 2_000)
    }

    /// One million timers scheduled and cancelled, then one million fired: the node pool is reused.
    @Test func oneMillionTimers() {
        var wheel = TimerWheel<Int>(now: 0)
        var ids: [TimerID] = []
        ids.reserveCapacity(1_000_000)
        for index in 0..<1_000_000 { ids.append(wheel.schedule(at: UInt64(index % 900_000) + 1, index)) }
        #expect(wheel.count == 1_000_000)
        for id in ids { wheel.cancel(id) }
        #expect(wheel.count == 0)
        #expect(wheel.nextExpiry() == nil)

        for index in 0..<1_000_000 { _ = wheel.schedule(at: UInt64(index % 60_000) + 1, index) }
        var fired = 0
        var now: UInt64 = 0
        while let next = wheel.nextExpiry() {
            now = next
            fired += fire(&wheel, at: now).count
        }
        #expect(fired == 1_000_000)
        #expect(now == 60_000)
    }
}
