/// A connection for Swift concurrency, in the spirit of SwiftNIO's `NIOAsyncChannel`: the bytes
/// that arrive as an `AsyncSequence` of chunks (`inbound`), and writes that suspend while the
/// connection is over its high watermark. It is an actor isolated to its loop's executor, so code
/// isolated to it (`listen(on:asyncHandler:)` hands the handler an `isolated AsyncConnection`)
/// reads and writes with no hop at all: a chunk that arrives resumes the waiting reader as one job
/// on the loop, in the same turn.
///
/// Backpressure, both ways: chunks the reader has not taken yet are held up to
/// `maximumBufferedChunks`, then the socket is no longer read (the kernel's buffer fills and the
/// peer is pushed back) until the reader is down to `resumeReadingAt`; a write that leaves the
/// connection above the loop's high watermark returns only once it has drained below the low one.
///
/// Memory: a chunk is an array of the bytes one read brought (at most the loop's read buffer). The
/// last chunk handed out is kept (if at most `recycledCapacity` bytes), and its storage reused for
/// the next read once the reader has let go of it, so a request/response exchange allocates nothing
/// per message. That keeps one small buffer per connection: async connections are for protocols
/// with a task per connection, not for the mass of idle streams the callback API serves.
public actor AsyncConnection {
    /// How many chunks a lagging reader may leave unread.
    public struct Configuration: Sendable {
        /// Unread chunks at which reading pauses.
        public var maximumBufferedChunks = 16
        /// Unread chunks at (or below) which reading resumes.
        public var resumeReadingAt = 4

        public init(maximumBufferedChunks: Int = 16, resumeReadingAt: Int = 4) {
            precondition(maximumBufferedChunks >= 1 && resumeReadingAt < maximumBufferedChunks)
            self.maximumBufferedChunks = maximumBufferedChunks
            self.resumeReadingAt = resumeReadingAt
        }
    }

    /// Chunk storage up to this size is reused across reads (see the type's doc).
    public static let recycledCapacity = 16 * 1024

    /// The loop this connection belongs to, as its executor.
    public nonisolated let loopExecutor: EventLoopRemote
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loopExecutor.asUnownedSerialExecutor() }

    let configuration: Configuration
    // nonisolated(unsafe): set once, on the loop thread, before any other use; the handle is used only
    // from code isolated to this actor, which runs on the loop thread while the loop lives.
    nonisolated(unsafe) var connection: Connection? = nil

    private var chunks = ChunkQueue()
    private var reader: UnsafeContinuation<[UInt8]?, any Error>? = nil
    private var writers: [UnsafeContinuation<Void, any Error>] = []
    private var opener: UnsafeContinuation<Void, any Error>? = nil
    private var state = State.connecting
    private var readingPaused = false
    private var recycled: [UInt8] = []
    /// The most chunks that were ever waiting for the reader (never above `maximumBufferedChunks`).
    public private(set) var mostBufferedChunks = 0

    enum State {
        case connecting
        case open
        /// The peer shut down its side; writing may go on.
        case readClosed
        case closed(CloseReason)
    }

    init(executor: EventLoopRemote, configuration: Configuration) {
        loopExecutor = executor
        self.configuration = configuration
    }

    /// The bytes that arrive, chunk by chunk. It ends when the peer shuts down its side or the
    /// connection is closed here, and throws `AsyncConnectionError` on a reset or error. One reader.
    public nonisolated var inbound: Inbound { Inbound(connection: self) }

    /// Chunks waiting for the reader.
    public var bufferedChunks: Int { chunks.count }

    /// Whether it is open (possibly half-closed).
    public var isOpen: Bool {
        if case .closed = state { return false }
        return true
    }

    // MARK: - Reading

    /// The next chunk; nil once the peer shut down its side (or it was closed here).
    func read() async throws -> [UInt8]? {
        switch try poll() {
        case .chunk(let chunk): return chunk
        case .end: return nil
        case .waiting: return try await withUnsafeThrowingContinuation { awaitChunk($0) }
        }
    }

    /// What a read finds without waiting.
    enum ReadStep {
        case chunk([UInt8])
        case end
        case waiting
    }

    /// The next chunk if one is here, the end (or the error that ended it), or `.waiting`.
    func poll() throws -> ReadStep {
        if let chunk = chunks.popFirst() {
            if readingPaused && chunks.count <= configuration.resumeReadingAt {
                readingPaused = false
                connection?.resumeReading()
            }
            keep(chunk)
            return .chunk(chunk)
        }
        switch state {
        case .readClosed: return .end
        case .closed(let reason):
            _ = try AsyncConnection.end(reason)
            return .end
        case .connecting, .open: return .waiting
        }
    }

    /// Makes `reader` the one resumed by the next chunk, the end or an error (after `poll` said `.waiting`).
    func awaitChunk(_ reader: UnsafeContinuation<[UInt8]?, any Error>) {
        precondition(self.reader == nil, "AsyncConnection.inbound has one reader at a time")
        self.reader = reader
    }

    private static func end(_ reason: CloseReason) throws -> [UInt8]? {
        switch reason {
        case .local, .eof: return nil
        default: throw AsyncConnectionError.closed(reason)
        }
    }

    /// Remembers the chunk handed out, to reuse its storage once the reader lets go of it.
    private func keep(_ chunk: [UInt8]) {
        if chunk.capacity <= AsyncConnection.recycledCapacity { recycled = chunk }
    }

    func received(_ bytes: UnsafeRawBufferPointer) {
        var chunk: [UInt8] = []
        swap(&chunk, &recycled)
        if chunk.capacity >= bytes.count {
            chunk.removeAll(keepingCapacity: true)  // in place unless the reader still holds it
        } else {
            chunk = []
        }
        chunk.append(contentsOf: bytes)
        if let reader {
            self.reader = nil
            keep(chunk)
            reader.resume(returning: chunk)
            return
        }
        chunks.append(chunk)
        mostBufferedChunks = max(mostBufferedChunks, chunks.count)
        if chunks.count >= configuration.maximumBufferedChunks && !readingPaused {
            readingPaused = true
            connection?.pauseReading()
        }
    }

    // MARK: - Writing

    /// Writes `bytes` (what the socket does not take now is queued, a copy), then waits while the
    /// connection is above its high watermark. Throws `AsyncConnectionError.closed` once closed.
    public func write(_ bytes: [UInt8]) async throws {
        guard let connection = try writableConnection(), connection.write(bytes) else { throw closedError }
        // Not a call to `drain` unless it must wait: an async call is an executor switch (cheap, not free).
        if !connection.isWritable { try await drain(connection) }
    }

    /// Writes shared bytes (a remainder is queued by reference), then waits as `write(_:)` does.
    public func write(_ bytes: SharedBytes) async throws {
        guard let connection = try writableConnection(), connection.write(bytes) else { throw closedError }
        if !connection.isWritable { try await drain(connection) }
    }

    private func writableConnection() throws -> Connection? {
        switch state {
        case .closed(let reason): throw AsyncConnectionError.closed(reason)
        case .connecting: preconditionFailure("write before the connection opened")
        case .open, .readClosed: return connection
        }
    }

    private var closedError: AsyncConnectionError {
        if case .closed(let reason) = state { return .closed(reason) }
        return .closed(.local)
    }

    private func drain(_ connection: Connection) async throws {
        while !connection.isWritable {
            if case .closed(let reason) = state { throw AsyncConnectionError.closed(reason) }
            try await withUnsafeThrowingContinuation { writers.append($0) }
        }
    }

    /// Sends FIN once queued bytes are flushed; reading goes on.
    public func shutdownWrite() { connection?.shutdownWrite() }

    /// Closes now (queued bytes are dropped); the reader sees the end, waiting writers throw.
    public func close() { connection?.close() }

    /// Stops reading and closes once queued bytes are flushed.
    public func closeAfterFlush() { connection?.closeAfterFlush() }

    // MARK: - Lifecycle

    /// Waits until an outgoing connection is open. Throws `AsyncConnectionError.closed` if it failed.
    func opened() async throws {
        switch state {
        case .connecting: try await withUnsafeThrowingContinuation { opener = $0 }
        case .open, .readClosed: return
        case .closed(let reason): throw AsyncConnectionError.closed(reason)
        }
    }

    func didOpen() {
        state = .open
        opener.take()?.resume()
    }

    func didReadEOF() {
        guard case .open = state else { return }
        state = .readClosed
        reader.take()?.resume(returning: nil)
    }

    func didChangeWritability(_ isWritable: Bool) {
        guard isWritable else { return }
        let waiting = writers
        writers.removeAll()
        for writer in waiting { writer.resume() }
    }

    func didClose(_ reason: CloseReason) {
        state = .closed(reason)
        connection = nil
        recycled = []
        let error = AsyncConnectionError.closed(reason)
        opener.take()?.resume(throwing: error)
        if let reader = reader.take() {
            do { reader.resume(returning: try AsyncConnection.end(reason)) } catch { reader.resume(throwing: error) }
        }
        let waiting = writers
        writers.removeAll()
        for writer in waiting { writer.resume(throwing: error) }
    }
}

/// Why an `AsyncConnection` refused a write or ended its inbound sequence with an error.
public enum AsyncConnectionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The connection is closed, and this is how it closed.
    case closed(CloseReason)

    public var description: String {
        switch self {
        case .closed(let reason): "connection closed (\(reason))"
        }
    }
}

/// The loop's callbacks, delivered on the loop thread and so isolated to the actor's executor.
extension AsyncConnection: ConnectionHandler {
    public nonisolated func connectionDidOpen(_ connection: Connection) {
        assumeIsolated { $0.didOpen() }
    }

    /// Every chunk read comes here, so it does not go through `assumeIsolated` (two allocations per
    /// call, see `onLoopThread`).
    public nonisolated func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        onLoopThread(receiveChunk, bytes)
    }

    public nonisolated func connectionDidReadEOF(_ connection: Connection) {
        assumeIsolated { $0.didReadEOF() }
    }

    public nonisolated func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        assumeIsolated { $0.didChangeWritability(isWritable) }
    }

    public nonisolated func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        assumeIsolated { $0.didClose(reason) }
    }
}

/// Hot paths isolated to an `AsyncConnection`, for `onLoopThread`: functions with no captures.
private func receiveChunk(_ connection: isolated AsyncConnection, _ bytes: UnsafeRawBufferPointer) {
    connection.received(bytes)
}

private func pollChunk(_ connection: isolated AsyncConnection) throws -> AsyncConnection.ReadStep {
    try connection.poll()
}

private func awaitNextChunk(_ connection: isolated AsyncConnection, _ reader: UnsafeContinuation<[UInt8]?, any Error>) {
    connection.awaitChunk(reader)
}

extension AsyncConnection {
    /// Calls `function`, isolated to this connection, from code that runs on the loop's thread
    /// (this actor's executor) without being statically isolated to it: `assumeIsolated` without
    /// its cost, which was two allocations per call (the closure's context made escaping, and a
    /// thunk). `function` has no captures, so there is no context to allocate; an isolated parameter
    /// is an ordinary one in the calling convention.
    @inline(__always)
    nonisolated func onLoopThread<Argument>(
        _ function: @escaping (isolated AsyncConnection, Argument) -> Void, _ argument: Argument
    ) {
        assert(loopExecutor.isOnLoopThread, "an AsyncConnection is used on its loop's thread")
        unsafeBitCast(function, to: ((AsyncConnection, Argument) -> Void).self)(self, argument)
    }

    @inline(__always)
    nonisolated func onLoopThread<Result>(
        _ function: @escaping (isolated AsyncConnection) throws -> Result
    ) throws -> Result {
        assert(loopExecutor.isOnLoopThread, "an AsyncConnection is used on its loop's thread")
        return try unsafeBitCast(function, to: ((AsyncConnection) throws -> Result).self)(self)
    }
}

extension AsyncConnection {
    /// The chunks of an `AsyncConnection`, as they arrive.
    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = [UInt8]
        let connection: AsyncConnection

        public func makeAsyncIterator() -> Iterator { Iterator(connection: connection) }

        public struct Iterator: AsyncIteratorProtocol {
            let connection: AsyncConnection

            public mutating func next() async throws -> [UInt8]? { try await connection.read() }

            /// From code isolated to the connection itself (a `listen(asyncHandler:)` handler), no
            /// executor switch at all: the chunk is taken, or the wait begun, synchronously in the
            /// caller's isolation. (Calling the async `read` would switch to the connection's executor
            /// and back, twice per chunk: the runtime checks the task's executor preference under a
            /// lock each time.) From anywhere else, `read` with its hop.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> [UInt8]? {
                guard let actor, actor === connection else { return try await connection.read() }
                switch try connection.onLoopThread(pollChunk) {
                case .chunk(let chunk): return chunk
                case .end: return nil
                case .waiting:
                    let connection = connection
                    return try await withUnsafeThrowingContinuation { reader in
                        connection.onLoopThread(awaitNextChunk, reader)
                    }
                }
            }
        }
    }
}

/// A FIFO of chunks: an array and a head index (compacted as it drains), no per-chunk node.
struct ChunkQueue {
    private var storage: [[UInt8]] = []
    private var head = 0

    var count: Int { storage.count - head }

    mutating func append(_ chunk: [UInt8]) { storage.append(chunk) }

    mutating func popFirst() -> [UInt8]? {
        guard head < storage.count else { return nil }
        var chunk: [UInt8] = []
        swap(&chunk, &storage[head])
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        }
        return chunk
    }
}
