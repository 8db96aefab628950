import Testing
@testable import Reactor
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ValueTypeTests {
    /// Dotted quads parse, anything else is refused.
    @Test(arguments: [
        ("127.0.0.1", UInt32(0x7F00_0001)), ("127.0.0.2", 0x7F00_0002), ("0.0.0.0", 0), ("localhost", 0x7F00_0001),
        ("255.255.255.255", 0xFFFF_FFFF),
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

@Suite struct FdTableTests {
    /// The fd table grows with the fds used, not with RLIMIT_NOFILE (which may be 2^30).
    @Test func growsLazily() throws {
        let loop = try EventLoop()
        #expect(loop.slots.capacity < 4096, "table reserved \(loop.slots.capacity) slots up front")
        loop.ensureSlot(5_000)
        #expect(loop.slots.count == 5_001)
        #expect(loop.slots.capacity < 20_000)
        #expect(loop.slots[5_000].kind == .free)
    }
}

@Suite struct FileDescriptorTests {
    /// Open, write, status, read back and close a file; a missing file is a typed error.
    @Test func fileRoundTrip() throws {
        let path = "/tmp/rill-fd-test-\(getpid())"
        defer { unlink(path) }
        let fd = try FileDescriptor.open(path, flags: O_CREAT | O_RDWR | O_TRUNC, mode: 0o600)
        let text = Array("hello, file".utf8)
        #expect(try text.withUnsafeBytes { try FileDescriptor.write(fd, $0) } == .done(text.count))
        #expect(try FileDescriptor.status(fd).st_size == text.count)
        #expect(lseek(fd, 0, SEEK_SET) == 0)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(try buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) } == .done(text.count))
        #expect(Array(buffer.prefix(text.count)) == text)
        #expect(try buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) } == .done(0))
        FileDescriptor.close(fd)
        #expect(throws: SystemError(operation: "open(\(path)-missing)", errno: ENOENT)) {
            try FileDescriptor.open(path + "-missing", flags: O_RDONLY)
        }
    }

    /// A non-blocking descriptor with nothing to read is `.wouldBlock`, not an error.
    @Test func wouldBlockIsAValue() throws {
        let (left, right) = try EventLoop.makeSocketPair()
        defer {
            FileDescriptor.close(left)
            FileDescriptor.close(right)
        }
        #expect(fcntl(left, F_SETFL, fcntl(left, F_GETFL) | O_NONBLOCK) == 0)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try buffer.withUnsafeMutableBytes { try FileDescriptor.read(left, into: $0) } == .wouldBlock)
    }
}
