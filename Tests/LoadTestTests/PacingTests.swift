@testable import LoadTest
import Testing

@Suite struct PacingTests {
    /// Open loop: request k is due at start + k/rate, whether or not earlier ones went out.
    @Test func openLoopScheduleIsFixedInAdvance() {
        let schedule = OpenLoopSchedule(start: 1_000, rate: 4)  // one every 250 ms
        #expect(schedule.intended(0) == 1_000)
        #expect(schedule.intended(1) == 1_000 + 250_000_000)
        #expect(schedule.intended(8) == 1_000 + 2_000_000_000)
        #expect(schedule.due(0, now: 1_000) == 1_000)
        #expect(schedule.due(1, now: 1_000 + 249_999_999) == nil)
        // Late: the intended time is still the schedule's, so the delay shows in the latency.
        #expect(schedule.due(1, now: 9_000_000_000) == 1_000 + 250_000_000)
    }

    /// Open loop with a limit: nothing is due past it.
    @Test func openLoopLimit() {
        let schedule = OpenLoopSchedule(start: 0, rate: 1_000, limit: 3)
        #expect(schedule.due(2, now: .max / 2) != nil)
        #expect(schedule.due(3, now: .max / 2) == nil)
    }

    /// The ramp allows one connection at once, then `rate` per second from its base, capped at the goal.
    @Test func rampAllowsRatePerSecond() {
        let ramp = RampSchedule(start: 5_000_000_000, base: 100, goal: 1_100, rate: 200)
        #expect(ramp.allowed(now: 5_000_000_000) == 101)
        #expect(ramp.allowed(now: 5_500_000_000) == 201)
        #expect(ramp.allowed(now: 9_999_999_999) == 1_100)
        #expect(ramp.allowed(now: 60_000_000_000) == 1_100)
        #expect(ramp.allowed(now: 0) == 101, "a clock before the start counts as the start")
        #expect(RampSchedule(start: 0, base: 0, goal: 7, rate: 0).allowed(now: 0) == 7, "rate 0: all at once")
    }

    /// The ring queue keeps FIFO order across growth and wrap-around.
    @Test func ringQueueIsFIFO() {
        var queue = RingQueue<Int>()
        var expected: [Int] = []
        var popped: [Int] = []
        for round in 0..<100 {
            for value in 0..<(round % 7) {
                queue.push(round * 10 + value)
                expected.append(round * 10 + value)
            }
            for _ in 0..<(round % 5) { if let value = queue.pop() { popped.append(value) } }
        }
        while let value = queue.pop() { popped.append(value) }
        #expect(popped == expected)
        #expect(queue.isEmpty && queue.first == nil)
    }
}

@Suite struct GapCounterTests {
    /// The counter agrees with a scan of every stream through opens, events, publications (one at a
    /// time and in jumps) and closes.
    @Test func agreesWithAScan() {
        var counter = GapCounter()
        var levels: [Int?] = []  // nil: closed
        var generator = SplitMix(seed: 42)
        var published = 0
        func scan() -> Int { levels.reduce(0) { $0 + (($1 ?? .max) < published ? 1 : 0) } }
        for _ in 0..<5_000 {
            switch generator.next() % 10 {
            case 0, 1:
                levels.append(published)
                counter.opened(at: published)
            case 2, 3, 4, 5, 6:
                let open = levels.indices.filter { levels[$0] != nil }
                guard let pick = open.randomElement(using: &generator) else { continue }
                counter.advanced(from: levels[pick]!)
                levels[pick]! += 1
            case 7:
                let open = levels.indices.filter { levels[$0] != nil }
                guard let pick = open.randomElement(using: &generator) else { continue }
                counter.closed(at: levels[pick]!)
                levels[pick] = nil
            default:
                published += generator.next() % 4 == 0 ? Int(generator.next() % 50) : 1
                counter.publish(published)
            }
            #expect(counter.behind == scan())
            if counter.behind != scan() { return }
        }
        counter.publish(0)
        published = 0
        #expect(counter.behind == 0, "a lower count recounts")
    }
}

/// A seeded generator, so a failure repeats.
struct SplitMix: RandomNumberGenerator {
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
