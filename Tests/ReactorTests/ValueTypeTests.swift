import Testing
@testable import Reactor
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ValueTypeTests {
    /// Dotted quads parse, anything else is refused.
    @Test(arguments: [
        ("127.0.0.1", UInt32(0x7F00_0001)), ("127.0.0.2", 0x7F00_0002), ("0.0.0.0", 0), ("localhost", 0x7F00_0001),
        ("255.255.255.255", 0xFFFF_FFFF)
    ])
    func parsesIPv4(text: String, expected: UInt32) {
        #expect(SocketAddress(text, port: 80)?.ip == expected)
        #expect(SocketAddress(text, port: 80)?.description == (text == "localhost" ? "127.0.0.1:80" : "\(text):80"))
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1..2.3", "a.b.c.d", "1.2.3.4 ", "0001.2.3.4"])
    func refusesNonIPv4(text: String) {
        #expect(SocketAddress(text, port: 1) == nil)
    }

    /// Durations become whole milliseconds, rounded up so timers never fire early.
    @Test func durationRounding() {
        #expect(Duration.milliseconds(5).millisecondsRoundedUp == 5)
        #expect(Duration.microseconds(1).millisecondsRoundedUp == 1)
        #expect(Duration.microseconds(1_001).millisecondsRoundedUp == 2)
        #expect(Duration.seconds(15).millisecondsRoundedUp == 15_000)
        #expect(Duration.zero.millisecondsRoundedUp == 0)
        #expect(Duration.milliseconds(-3).millisecondsRoundedUp == 0)
        #expect(Duration.seconds(Int64.max).millisecondsRoundedUp == .max, "saturates instead of trapping")
        #expect(Duration.seconds(1e18).millisecondsRoundedUp == .max)
    }

    /// The write queue gathers chunks in order from a partial first chunk and consumes across chunks.
    @Test func writeQueueGatherAndConsume() {
        let queue = WriteQueue()
        let first = SharedBytes(Array("hello ".utf8))
        let second = SharedBytes(Array("world".utf8))
        queue.append(first, offset: 2)
        queue.append(second)
        #expect(queue.byteCount == 9)
        let vectors = UnsafeMutableBufferPointer<iovec>.allocate(capacity: 4)
        defer { vectors.deallocate() }
        func pending() -> String {
            let count = queue.gather(into: vectors)
            var bytes: [UInt8] = []
            for vector in vectors.prefix(count) {
                bytes += UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(pending() == "llo world")
        queue.consume(5)
        #expect(pending() == "orld")
        queue.consume(4)
        #expect(queue.isEmpty)
        #expect(pending() == "")
    }

    /// An idle connection's reactor state is one table slot; keep it small.
    @Test func slotIsSmall() {
        #expect(MemoryLayout<FdSlot>.stride <= 48, "FdSlot is \(MemoryLayout<FdSlot>.stride) bytes")
    }
}
