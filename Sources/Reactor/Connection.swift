#if canImport(Glibc)
import Glibc
#endif

/// Why a connection closed; delivered exactly once per connection, in `connectionDidClose`.
public enum CloseReason: Equatable, Sendable, CustomStringConvertible {
    /// This side closed it (`close()`, `closeAfterFlush()`, or the loop shutting down).
    case local
    /// The peer closed its side and the connection was closed in turn.
    case eof
    /// The peer reset the connection (ECONNRESET, EPIPE).
    case reset
    /// A socket error other than a reset.
    case error(SystemError)
    /// An outgoing connection never opened (refused, unreachable, timed out: ETIMEDOUT).
    case connectFailed(SystemError)

    public var description: String {
        switch self {
        case .local: "closed locally"
        case .eof: "closed by peer"
        case .reset: "reset by peer"
        case .error(let error): "error: \(error)"
        case .connectFailed(let error): "connect failed: \(error)"
        }
    }
}

/// Receives a connection's events on the loop thread. One handler object usually serves every
/// connection of a listener or connector: per-connection state, if any, belongs in the handler's own
/// tables (indexed by `connection.fd`, or found through `connection.userData`), so that an idle
/// connection costs the reactor one fd-table slot and nothing else.
///
/// **Re-entrancy: one rule.** No callback is invoked from inside a call the handler made on a
/// connection (`write`, `shutdownWrite`, `pauseReading`, ...): callbacks run only from the loop's
/// dispatch (readiness, timers, posted tasks) and its safe points between them. A write that crosses
/// the high watermark, or fails, records the change; `connectionWritabilityDidChange` and the failed
/// connection's `connectionDidClose` follow at the next safe point (right after the current event,
/// timer or task). So a handler may loop over many connections writing to each, and its tables are
/// never changed under it. The one exception is what the caller asks for: `close()` (and
/// `closeAfterFlush()` with nothing queued) calls `connectionDidClose(.local)` before it returns.
public protocol ConnectionHandler: AnyObject {
    /// An accepted connection, or an outgoing one whose connect completed.
    func connectionDidOpen(_ connection: Connection)
    /// Bytes arrived. They live in the loop's scratch buffer and are valid only during this call:
    /// keep what you need (only a partial message should need keeping).
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer shut down its writing side. The default closes once queued bytes are flushed;
    /// override to keep writing on a half-closed connection.
    func connectionDidReadEOF(_ connection: Connection)
    /// Queued bytes crossed the high watermark (`false`) or fell back below the low one (`true`).
    /// Delivered at the loop's next safe point, never from inside the `write` that crossed it.
    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool)
    /// The connection is closed and its fd released; called exactly once. The handle is stale now,
    /// except that `userData` still reads its last value during this call.
    func connectionDidClose(_ connection: Connection, reason: CloseReason)
}

extension ConnectionHandler {
    public func connectionDidOpen(_ connection: Connection) {}
    public func connectionDidReadEOF(_ connection: Connection) { connection.closeAfterFlush() }
    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {}
    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {}
}

/// A handle to one TCP connection of an `EventLoop`: its fd plus a generation that tells it apart
/// from a later connection reusing the same fd. Operations on a stale handle do nothing (writes
/// return false). Use it only on the loop's thread, and only while the loop exists.
public struct Connection: Hashable, CustomStringConvertible {
    // unowned(unsafe): a handle is two words and costs no reference counting; it is valid only
    // while the loop lives, which is the case inside every callback.
    unowned(unsafe) let loop: EventLoop
    /// The socket's descriptor, unique among open connections of this process: a good index for
    /// per-connection tables.
    public let fd: Int32
    let generation: UInt32

    init(loop: EventLoop, fd: Int32, generation: UInt32) {
        self.loop = loop
        self.fd = fd
        self.generation = generation
    }

    public static func == (a: Connection, b: Connection) -> Bool { a.fd == b.fd && a.generation == b.generation }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(fd)
        hasher.combine(generation)
    }
    public var description: String { "Connection(fd: \(fd), generation: \(generation))" }

    /// fd and generation in one word: unique over the loop's lifetime, so a timer token or a table
    /// entry can name this connection and never a later one on the same fd (`EventLoop.connection(id:)`).
    public var id: UInt64 { FdSlot.token(fd: fd, generation: generation) }

    /// Open: not yet closed (it may be half-closed).
    public var isOpen: Bool { loop.isCurrent(self) }

    /// Writes as much as the socket takes now and queues a copy of the rest.
    /// Returns false if the connection is closed or its writing side shut down.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool { loop.write(self, bytes, shared: nil) }

    /// Writes shared bytes; an unwritten remainder is queued by reference, never copied.
    @discardableResult
    public func write(_ bytes: SharedBytes) -> Bool { loop.write(self, bytes.bytes, shared: bytes) }

    /// Writes an array's bytes (a remainder is copied).
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { write($0) } }

    /// Bytes written but not yet accepted by the kernel.
    public var queuedBytes: Int { loop.queuedBytes(self) }

    /// Bytes the kernel holds in the socket's send queue, not yet acknowledged by the peer (SIOCOUTQ,
    /// one ioctl): with `queuedBytes`, all this connection's unread output. 0 if closed.
    public var unsentBytes: Int { loop.unsentBytes(self) }

    /// False between crossing the high watermark and draining below the low one.
    public var isWritable: Bool { loop.isWritable(self) }

    /// Sends FIN once queued bytes are flushed; reading goes on until the peer closes.
    public func shutdownWrite() { loop.shutdownWrite(self) }

    /// Closes now, dropping queued bytes; `connectionDidClose(.local)` is called before this returns.
    public func close() { loop.close(self, reason: .local) }

    /// Closes now with a reset (RST, not FIN): what is queued here and in the kernel is dropped and
    /// the socket's memory freed at once; the peer's next read fails with ECONNRESET. For peers that
    /// do not read. `connectionDidClose(.local)` is called before this returns.
    public func abort() { loop.abort(self) }

    /// Stops reading and closes once queued bytes are flushed.
    public func closeAfterFlush() { loop.closeAfterFlush(self) }

    /// Stops delivering reads (the kernel buffers, then the peer is pushed back) until `resumeReading`.
    public func pauseReading() { loop.setReadPaused(self, true) }
    public func resumeReading() { loop.setReadPaused(self, false) }

    /// A free word for the handler's own bookkeeping (an index into its tables, say). Starts at 0.
    public var userData: UInt64 {
        get { loop.userData(self) }
        nonmutating set { loop.setUserData(self, newValue) }
    }

    public func localAddress() throws(SystemError) -> SocketAddress {
        try requireOpen("getsockname")
        return try Socket.localAddress(fd)
    }

    public func peerAddress() throws(SystemError) -> SocketAddress {
        try requireOpen("getpeername")
        return try Socket.peerAddress(fd)
    }

    /// Sets an integer socket option (SO_RCVBUF, TCP_NODELAY, ...).
    public func setOption(level: Int32, name: Int32, value: Int32) throws(SystemError) {
        try requireOpen("setsockopt")
        try Socket.setOption(fd, level, name, value, "option \(name)")
    }

    /// A stale handle's fd number may already belong to another connection: never touch it.
    private func requireOpen(_ operation: String) throws(SystemError) {
        guard isOpen else { throw SystemError(operation: operation, errno: EBADF) }
    }
}

/// The smallest handler: writes back every byte it reads. `rill echo`, the tests and the benchmarks
/// share it; a reading of the reactor's API in four lines.
public final class EchoHandler: ConnectionHandler {
    public init() {}

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }
}
