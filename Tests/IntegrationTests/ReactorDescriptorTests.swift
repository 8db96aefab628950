import CEpoll
import Testing
@testable import Reactor
#if canImport(Glibc)
import Glibc
#endif

// Reactor unit tests that open descriptors. They live here, under `Loopback`, and not in
// ReactorTests: every test target runs in one process, and a descriptor opened by a parallel test
// would break the descriptor count that each Loopback test checks.

/// Records closes.
final class RecordedCloses: ConnectionHandler {
    var reasons: [CloseReason] = []
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { reasons.append(reason) }
}

extension Loopback {
    @Suite struct ErrorPolicyTests {
        /// epoll_ctl refusing a change (here ENOENT; in production ENOMEM) closes that connection with
        /// the error, at the next safe point: never a trap, never a callback inside the caller's call.
        @Test func refusedInterestChangeClosesTheConnection() throws {
            let loop = try EventLoop(clock: .manual(ManualClock()))
            let (left, right) = try EventLoop.makeSocketPair()
            let handler = RecordedCloses()
            let connection = try loop.adopt(connectedSocket: left, handler: handler)
            let peer = try loop.adopt(connectedSocket: right, handler: RecordedCloses())
            // Take the fd out of the epoll set behind the loop's back: its next epoll_ctl(MOD) fails.
            #expect(cepoll_ctl(loop.epollFD, EPOLL_CTL_DEL, left, 0, 0) == 0)
            connection.pauseReading()
            #expect(handler.reasons.isEmpty, "called back from inside pauseReading")
            #expect(!connection.write(Array("refused".utf8)), "a failed connection takes no writes")
            loop.runOnce(maximumWait: .zero)
            #expect(handler.reasons == [.error(SystemError(operation: "epoll_ctl(mod)", errno: ENOENT))])
            #expect(!connection.isOpen)
            peer.close()
        }
    }

    @Suite struct FdTableTests {
        /// The fd table grows with the fds used, not with RLIMIT_NOFILE (which may be 2^30).
        @Test func growsLazily() throws {
            let loop = try EventLoop()
            #expect(loop.slots.capacity <= 4096, "table reserved \(loop.slots.capacity) slots up front")
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

    @Suite struct ManualClockTimerTests {
        /// On a loop's manual clock, one long `advanceTime` fires every timer at its own deadline (the
        /// loop's `now` reads the deadline inside the callback), across all levels, in deadline order.
        @Test func advanceTimeFiresEachAtItsDeadline() throws {
            let loop = try EventLoop(clock: .manual(ManualClock()))
            let delays: [Int64] = [1, 2, 255, 256, 257, 1000, 65_535, 65_536, 70_000, 16_777_216, 20_000_000]
            var fired: [(UInt64, UInt64)] = []
            for delay in delays.reversed() {
                loop.schedule(after: .milliseconds(delay)) { fired.append((UInt64(delay), loop.now)) }
            }
            loop.advanceTime(by: .milliseconds(20_000_000))
            #expect(fired.map(\.0) == delays.map(UInt64.init))
            #expect(fired.allSatisfy { $0.0 == $0.1 }, "\(fired.filter { $0.0 != $0.1 })")
            #expect(loop.now == 20_000_000)
            #expect(loop.scheduledTimers == 0)
        }
    }
}

extension Loopback.ManualClockTimerTests {
    /// A delay too long to count in milliseconds is "never", not a trap or an instant timer.
    @Test func hugeDelaysSaturate() throws {
        let loop = try EventLoop(clock: .manual(ManualClock()))
        var fired = 0
        let once = loop.schedule(after: .seconds(Int64.max)) { fired += 1 }
        let repeating = loop.scheduleRepeating(every: .seconds(1e18)) { fired += 1 }
        loop.advanceTime(by: .seconds(86_400 * 365))
        #expect(fired == 0)
        #expect(loop.isScheduled(once) && loop.isScheduled(repeating))
        loop.cancel(once)
        loop.cancel(repeating)
    }
}
