import Reactor
@testable import SSEHub
import Testing

/// Last-Event-ID lookups in a history ring: generated ids by position, chosen ids by a table.
struct HistoryLookupTests {
    private func ring(_ sequences: [UInt64], id: (UInt64) -> String = { decimalString($0) }) -> HistoryRing {
        var ring = HistoryRing()
        for sequence in sequences {
            ring.append(
                HistoryEntry(sequence: sequence, id: id(sequence), bytes: SharedBytes([1])),
                countLimit: 1_000, byteLimit: .max)
        }
        return ring
    }

    /// A generated id is found whether the topic's sequences are contiguous or have gaps.
    @Test func generatedIDsByPosition() {
        let contiguous = ring(Array(1...500))
        #expect(contiguous.sequence(ofID: "1") == 1)
        #expect(contiguous.sequence(ofID: "321") == 321)
        #expect(contiguous.sequence(ofID: "500") == 500)
        #expect(contiguous.sequence(ofID: "501") == nil)
        #expect(contiguous.sequence(ofID: "0") == nil)
        let sparse = ring(stride(from: 3, through: 3_000, by: 7).map { UInt64($0) })
        for sequence in stride(from: 3, through: 3_000, by: 7) {
            #expect(sparse.sequence(ofID: decimalString(UInt64(sequence))) == UInt64(sequence))
        }
        #expect(sparse.sequence(ofID: "4") == nil, "between two kept sequences")
    }

    /// Ids a publisher chose, including ones that look like numbers, are found in the ring's table.
    @Test func chosenIDsByTable() {
        let chosen = ring(Array(1...50)) { "order-\($0)" }
        #expect(chosen.sequence(ofID: "order-17") == 17)
        #expect(chosen.sequence(ofID: "17") == nil)
        let numeric = ring(Array(10...20)) { "\($0 * 100)" }  // sequence 12 has id "1200"
        #expect(numeric.sequence(ofID: "1200") == 12)
        #expect(numeric.sequence(ofID: "012") == nil)
    }

    /// The table follows the ring: an evicted entry's chosen id is gone, a repeated id names its
    /// newest entry, and evicting an older entry with that id keeps the newer one findable.
    @Test func chosenIDsFollowEviction() {
        var ring = HistoryRing()
        func add(_ sequence: UInt64, _ id: String) {
            ring.append(HistoryEntry(sequence: sequence, id: id, bytes: SharedBytes([1])), countLimit: 3, byteLimit: .max)
        }
        add(1, "a")
        add(2, "b")
        add(3, "a")
        #expect(ring.sequence(ofID: "a") == 3)
        add(4, "c")  // evicts 1 ("a", older): "a" still names 3
        #expect(ring.sequence(ofID: "a") == 3)
        add(5, "d")  // evicts 2
        #expect(ring.sequence(ofID: "b") == nil)
        add(6, "e")  // evicts 3
        #expect(ring.sequence(ofID: "a") == nil)
        #expect(ring.sequence(ofID: "e") == 6)
    }

    /// Only canonical decimal strings name a sequence.
    @Test func decimalValues() {
        #expect(decimalValue("0") == 0)
        #expect(decimalValue("18446744073709551615") == .max)
        #expect(decimalValue("18446744073709551616") == nil)
        #expect(decimalValue("007") == nil)
        #expect(decimalValue("") == nil)
        #expect(decimalValue("-1") == nil)
        #expect(decimalValue("12a") == nil)
    }

    /// Replay starts at the first entry newer than the given sequence.
    @Test func firstIndexAfter() {
        let sparse = ring([2, 4, 8, 16])
        #expect(sparse.firstIndex(after: 0) == 0)
        #expect(sparse.firstIndex(after: 4) == 2)
        #expect(sparse.firstIndex(after: 5) == 2)
        #expect(sparse.firstIndex(after: 16) == 4)
    }
}
