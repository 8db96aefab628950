import Foundation
import Reactor
import Testing

@testable import LoadTest

@Suite struct TimelineTests {
    /// Buckets read back within their 12.5 % width, exactly below 16 µs, and the maximum at 100.
    @Test func bucketPercentilesStayWithinABucket() {
        var buckets = LatencyBuckets()
        for value in 1...1_000 { buckets.record(UInt64(value) * 1_000) }  // 1 ms … 1 s
        #expect(buckets.total == 1_000)
        for (percent, exact) in [(50.0, 500_000.0), (90, 900_000), (99, 990_000)] {
            let read = Double(buckets.percentile(percent))
            #expect(abs(read - exact) / exact < 0.125, "p\(percent): \(read) vs \(exact)")
        }
        #expect(buckets.percentile(100) == 1_000_000)
        var small = LatencyBuckets()
        for value in [3, 3, 7, 15] { small.record(UInt64(value)) }
        #expect(small.percentile(50) == 3 && small.percentile(75) == 7 && small.percentile(100) == 15)
        #expect(LatencyBuckets().percentile(99) == 0)
        // Huge values land in the last bucket instead of out of bounds.
        var huge = LatencyBuckets()
        huge.record(UInt64.max)
        #expect(huge.total == 1)
    }

    /// Every value's bucket middle is within the bucket's bounds, and bucket indexes rise with values.
    @Test func bucketIndexesAreMonotonic() {
        var previous = -1
        var value: UInt64 = 0
        while value < 1 << 40 {
            let index = LatencyBuckets.index(value)
            #expect(index >= previous)
            previous = index
            let middle = LatencyBuckets.value(index)
            #expect(value < 16 ? middle == value : Double(middle) / Double(value) < 1.13 && Double(value) / Double(middle) < 1.13)
            value = value < 64 ? value + 1 : value + value / 7
        }
    }

    /// Two workers' buckets merge to the buckets of all their values, and survive JSON.
    @Test func bucketsMergeAndEncodeSparsely() throws {
        var a = LatencyBuckets(), b = LatencyBuckets(), both = LatencyBuckets()
        for value in stride(from: UInt64(10), to: 5_000, by: 37) { a.record(value); both.record(value) }
        for value in stride(from: UInt64(900), to: 90_000, by: 301) { b.record(value); both.record(value) }
        a.merge(b)
        #expect(a == both)
        let json = try JSONEncoder().encode(a)
        #expect(try JSONDecoder().decode(LatencyBuckets.self, from: json) == a)
        #expect(json.count < 4_000, "sparse: \(json.count) bytes")
    }

    /// Timelines merge by wall-clock second: shared seconds add up, the others interleave in order.
    @Test func timelinesMergeBySecond() {
        func second(_ at: UInt64, open: Int, events: Int, error: LoadErrorClass? = nil) -> LoadTimeline.Second {
            var entry = LoadTimeline.Second(at: at)
            entry.open = open
            entry.events = events
            if let error { entry.errors[error] = 1 }
            entry.event.record(UInt64(events))
            return entry
        }
        var a = LoadTimeline(), b = LoadTimeline()
        a.append(second(100, open: 10, events: 5))
        a.append(second(101, open: 20, events: 7, error: .connectRefused))
        b.append(second(99, open: 1, events: 1))
        b.append(second(101, open: 30, events: 3, error: .connectRefused))
        b.append(second(103, open: 30, events: 2))
        a.merge(b)
        #expect(a.seconds.map(\.at) == [99, 100, 101, 103])
        #expect(a.seconds.map(\.open) == [1, 10, 50, 30])
        #expect(a.seconds[2].events == 10 && a.seconds[2].errors == [.connectRefused: 2] && a.seconds[2].event.total == 2)
        // The same second appended twice is merged, not repeated.
        a.append(second(103, open: 5, events: 1))
        #expect(a.seconds.count == 4 && a.seconds[3].open == 35)
    }

    /// The clock closes a second only once it has ended, from the counts' growth since the last one.
    @Test func clockClosesEndedSecondsFromCountGrowth() {
        var recorder = LoadRecorder()
        var clock = TimelineClock()
        var status = LoadCounts()
        clock.tick(&recorder, status: status, wallSeconds: 1_000)
        status.opened = 40
        status.open = 40
        status.events = 100
        recorder.secondLatency.event.record(2_000)
        #expect(!clock.isDue(1_000) && clock.isDue(1_001))
        clock.tick(&recorder, status: status, wallSeconds: 1_000)
        #expect(recorder.timeline.seconds.isEmpty)
        clock.tick(&recorder, status: status, wallSeconds: 1_001)
        status.opened = 50
        status.open = 45
        status.error(.resetByServer)
        clock.tick(&recorder, status: status, wallSeconds: 1_001, force: true)
        let seconds = recorder.timeline.seconds
        #expect(seconds.count == 2)
        #expect(seconds[0].at == 1_000 && seconds[0].opened == 40 && seconds[0].events == 100 && seconds[0].event.total == 1)
        #expect(seconds[1].at == 1_001 && seconds[1].opened == 10 && seconds[1].open == 45)
        #expect(seconds[1].errors == [.resetByServer: 1] && seconds[1].event.total == 0)
        #expect(recorder.secondLatency.event.total == 0)
    }
}
