import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every test that opens descriptors lives under this suite, run one at a time, so that each can
/// check that the process's open-fd count is back to where it started.
@Suite(.serialized, .timeLimit(.minutes(2))) struct Loopback {}

/// Open descriptors of this process, from /proc/self/fd.
func openFDCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count - 1  // the directory stream's own fd
}

/// Runs `body` and expects every descriptor it opened to be closed afterwards.
func expectNoFDLeak(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) rethrows {
    let before = openFDCount()
    try body()
    expectBackTo(before, sourceLocation: sourceLocation)
}

/// Whether the process's descriptors are back to `before`. Other test targets run beside the
/// serialized `Loopback` suite in this process (HTTP1Tests reads its corpus with `fopen`), so a count
/// may include one of their short-lived descriptors: fewer than `before` afterwards is one of those
/// gone, not a fault, and more is given a bounded while to settle before it counts as a leak.
func expectBackTo(_ before: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    _ = eventually(timeout: .seconds(5)) { openFDCount() <= before }
    #expect(openFDCount() <= before, "descriptors leaked", sourceLocation: sourceLocation)
}

/// Turns `loop` until `done()` or the time limit; returns whether `done()` became true.
@discardableResult
func drive(_ loop: EventLoop, for limit: Duration = .seconds(20), until done: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while !done() {
        if clock.now > deadline { return false }
        loop.runOnce(maximumWait: .milliseconds(20))
    }
    return true
}

let loopback = SocketAddress(ip: 0x7F00_0001, port: 0)

/// A blocking client socket for tests that want a peer outside any loop.
final class BlockingClient {
    let fd: Int32

    init(connectingTo address: SocketAddress, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(operation: "socket", errno: errno) }
        if let receiveBuffer { setOption(SOL_SOCKET, SO_RCVBUF, receiveBuffer) }
        var storage = sockaddr_in()
        storage.sin_family = sa_family_t(AF_INET)
        storage.sin_port = address.port.bigEndian
        storage.sin_addr.s_addr = address.ip.bigEndian
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError(operation: "connect", errno: code)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Reads once: nil on EOF, error or the 10 s timeout.
    func receive(upTo count: Int = 65_536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, 0) }
        guard received > 0 else { return nil }
        return Array(buffer.prefix(received))
    }

    /// Reads until EOF (or `limit` bytes); returns everything read.
    func receiveAll(limit: Int = 64 << 20) -> [UInt8] {
        var all: [UInt8] = []
        while all.count < limit, let chunk = receive() { all += chunk }
        return all
    }

    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with RST instead of FIN (SO_LINGER with a zero timeout).
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
}

/// Records what a handler saw, for assertions.
final class Recorder: ConnectionHandler {
    var opened: [Connection] = []
    var received: [Int32: [UInt8]] = [:]
    var eofs: [Connection] = []
    var closes: [(Connection, CloseReason)] = []
    var writability: [Bool] = []
    var onOpen: ((Connection) -> Void)?
    var onRead: ((Connection, UnsafeRawBufferPointer) -> Void)?
    var onEOF: ((Connection) -> Void)?
    var onWritability: ((Connection, Bool) -> Void)?

    func connectionDidOpen(_ connection: Connection) {
        opened.append(connection)
        onOpen?(connection)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        received[connection.fd, default: []] += bytes
        onRead?(connection, bytes)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        eofs.append(connection)
        if let onEOF { onEOF(connection) } else { connection.closeAfterFlush() }
    }

    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        writability.append(isWritable)
        onWritability?(connection, isWritable)
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        closes.append((connection, reason))
    }
}

/// The byte at `index` of a deterministic test stream (a prime modulus, so chunk edges never align).
func patternByte(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: index % 251) }

extension Loopback {
    /// The package's directory (for its Scripts/).
    static let packageRoot = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
}

/// A loopback port nobody listens on right now (for servers the tests start by their own config).
func freeLoopbackPort() throws -> UInt16 {
    let loop = try EventLoop()
    final class Nobody: ConnectionHandler {
        func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    }
    let listener = try loop.listen(on: SocketAddress("127.0.0.1", port: 0)!, handler: Nobody())
    let port = listener.address.port
    listener.close()
    return port
}

/// A counting semaphore (sem_t) for handshakes between a test and a loop thread: no polling, no sleeps.
final class Semaphore: @unchecked Sendable {
    // @unchecked: sem_t is made for sharing between threads; its address never changes.
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(semaphore, 0, 0) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func signal() { sem_post(semaphore) }

    /// Waits for one signal, at most `limit`; returns whether it came.
    func wait(limit: Duration = .seconds(10)) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanoseconds = Int(deadline.tv_nsec) + Int(limit.components.attoseconds / 1_000_000_000)
        deadline.tv_sec += Int(limit.components.seconds) + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        while sem_timedwait(semaphore, &deadline) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}

/// A result handed from the loop thread to a waiting test thread.
private final class ResultBox<Value>: @unchecked Sendable {
    // @unchecked: written before a semaphore signal, read after the wait.
    var value: Value?
}

extension EventLoopRemote {
    /// Runs `body` on the loop thread and waits until it has run; returns its result.
    func sync<Value: Sendable>(_ body: @escaping @Sendable (EventLoop) -> Value) -> Value {
        let done = Semaphore()
        let box = ResultBox<Value>()
        execute { loop in
            box.value = body(loop)
            done.signal()
        }
        precondition(done.wait(limit: .seconds(60)), "the loop did not run the task")
        return box.value!
    }

    /// Advances the loop's manual clock on the loop thread (firing the timers due), and returns
    /// once that is done.
    func advanceTime(by delta: Duration) {
        sync { loop in loop.advanceTime(by: delta) }
    }
}
