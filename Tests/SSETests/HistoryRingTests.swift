import Reactor
@testable import SSEHub
import Testing

/// The per-topic history ring: bounds by count and bytes, order across wrap-around, lookups.
struct HistoryRingTests {
    private func entry(_ sequence: UInt64, size: Int = 10) -> HistoryEntry {
        HistoryEntry(sequence: sequence, id: "e\(sequence)", bytes: SharedBytes([UInt8](repeating: 0, count: size)))
    }

    @Test func keepsTheNewestWithinTheCountAcrossWrapAround() {
        var ring = HistoryRing()
        for sequence in 1...1_000 as ClosedRange<UInt64> {
            ring.append(entry(sequence), countLimit: 7, byteLimit: .max)
            let expected = Array((sequence > 6 ? sequence - 6 : 1)...sequence)
            #expect((0..<ring.count).map { ring[$0].sequence } == expected)
        }
        #expect(ring.byteCount == 70)
        #expect(ring.sequence(ofID: "e995") == 995)
        #expect(ring.sequence(ofID: "e993") == nil, "dropped")
        #expect(ring.entries(after: 997).map(\.sequence) == [998, 999, 1000])
        #expect(ring.entries(after: 1000).isEmpty)
    }

    @Test func byteBoundDropsOldestButKeepsTheNewest() {
        var ring = HistoryRing()
        for sequence in 1...5 as ClosedRange<UInt64> {
            ring.append(entry(sequence, size: 100), countLimit: 100, byteLimit: 350)
        }
        #expect((0..<ring.count).map { ring[$0].sequence } == [3, 4, 5])
        ring.append(entry(6, size: 1_000), countLimit: 100, byteLimit: 350)
        #expect((0..<ring.count).map { ring[$0].sequence } == [6], "one event over the byte bound is still kept")
        for sequence in 7...20 as ClosedRange<UInt64> {
            ring.append(entry(sequence, size: 100), countLimit: 100, byteLimit: 350)
        }
        #expect((0..<ring.count).map { ring[$0].sequence } == [18, 19, 20])
        #expect(ring.byteCount == 300)
    }

    /// Removing the oldest (the hub's global budget does) reports its size and keeps the order.
    @Test func removeOldestReportsItsSize() {
        var ring = HistoryRing()
        for sequence in 1...3 as ClosedRange<UInt64> {
            ring.append(entry(sequence, size: Int(sequence) * 10), countLimit: 10, byteLimit: .max)
        }
        #expect(ring.oldestSequence == 1)
        #expect(ring.removeOldest() == 10)
        #expect(ring.oldestSequence == 2 && ring.byteCount == 50)
        #expect(ring.removeOldest() == 20 && ring.removeOldest() == 30)
        #expect(ring.oldestSequence == nil && ring.removeOldest() == 0 && ring.byteCount == 0)
        ring.append(entry(9), countLimit: 10, byteLimit: .max)
        #expect(ring.sequence(ofID: "e9") == 9)
    }

    @Test func countLimitZeroKeepsNothing() {
        var ring = HistoryRing()
        ring.append(entry(1), countLimit: 0, byteLimit: .max)
        #expect(ring.count == 0)
    }
}

/// The hub's idle memory per subscriber: one membership in its flat table (plus two 4-byte fds).
@Test func membershipIsSmall() {
    #expect(MemoryLayout<Hub.Membership>.stride == 24, "Membership is \(MemoryLayout<Hub.Membership>.stride) bytes")
}
