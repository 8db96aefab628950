@testable import LoadTest
import Testing

@Suite struct StreamResumeTests {
    private func order(_ id: String) -> EventOrder? {
        Array(id.utf8).withUnsafeBytes { EventOrder($0) }
    }

    /// Decimal ids (memory engine) and `<epoch>-<ms>-<seq>` (Redis engine) compare as the server
    /// orders them; other shapes, and ids of different epochs, have no order.
    @Test func idsCompareInTheServersOrder() throws {
        #expect(try #require(order("60923514950002")).isAfter(#require(order("60923514950001"))) == true)
        #expect(try #require(order("9")).isAfter(#require(order("10"))) == false)
        let a = try #require(order("tpnnhv1cqmxgc-1796613044961-0"))
        let b = try #require(order("tpnnhv1cqmxgc-1796613044961-1"))
        let c = try #require(order("tpnnhv1cqmxgc-1796613044962-0"))
        #expect(b.isAfter(a) == true && c.isAfter(b) == true && a.isAfter(c) == false && a.isAfter(a) == false)
        #expect(try #require(order("other-1796613044961-5")).isAfter(a) == nil)
        #expect(try #require(order("1796613044961-5")).isAfter(a) == nil)
        #expect(order("chosen-by-me") == nil && order("") == nil && order("1-2-3-4") == nil && order("99999999999999999999") == nil)
    }

    /// A replayed id at or before the last one is a duplicate (once flagged, the stream stays
    /// flagged); `reset` starts a new sequence, so a lower id after it is not one.
    @Test func duplicatesAndResets() {
        var resume = StreamResume()
        func receive(_ id: String) -> Bool { Array(id.utf8).withUnsafeBytes { resume.received(id: $0) } }
        #expect(receive("100") && receive("101"))
        #expect(!receive("101") && !receive("100"))
        #expect(resume.repeated)
        #expect(receive("102"))
        Array("e2-5-0".utf8).withUnsafeBytes { resume.reset(id: $0) }
        #expect(receive("e2-5-1") && !receive("e2-5-1") && receive("e2-6-0"))
        #expect(receive("chosen") && receive("chosen"), "ids without an order are never duplicates")
        #expect(receive("e2-6-1"), "an id without an order forgets the last one's")
    }
}
