import HTTP1
import Reactor
import RillBytes
import SSEHub

/// The body of a streamed response, written by its handler on the loop thread. `write` says
/// whether more may be written now; when it says no, wait for `onWritable` (the connection's
/// queue drained below the loop's low watermark). End with `finish()`. A plain value: the server
/// keeps the callbacks, by connection, only while the response streams.
public struct ResponseStream {
    /// How the body is delimited.
    public enum Framing: Sendable, Equatable {
        /// `Transfer-Encoding: chunked`: the connection stays open for more requests afterwards.
        case chunked
        /// The body runs until the server closes the connection.
        case closeDelimited
    }

    unowned let server: HTTPServer
    public let connection: Connection
    public let framing: Framing
    let keepAlive: Bool

    /// Whether the response is still streaming (not finished, the client still connected).
    public var isOpen: Bool {
        connection.isOpen && ConnectionStateMachine(connection.userData).phase == .streaming
    }

    /// Writes `bytes` (one chunk, if chunked; empty writes are skipped); returns whether more may be
    /// written now. Nothing is written once the stream is closed.
    @discardableResult
    public func write(_ bytes: some Collection<UInt8>) -> Bool {
        guard isOpen else { return false }
        guard !bytes.isEmpty else { return connection.isWritable }
        switch framing {
        case .chunked:
            server.chunk.removeAll(keepingCapacity: true)
            appendHex(bytes.count, to: &server.chunk)
            server.chunk += [13, 10]
            server.chunk.append(contentsOf: bytes)
            server.chunk += [13, 10]
            _ = connection.write(server.chunk)
        case .closeDelimited:
            let written = bytes.withContiguousStorageIfAvailable { connection.write(UnsafeRawBufferPointer($0)) }
            if written == nil { _ = connection.write(Array(bytes)) }
        }
        return connection.isWritable
    }

    /// Calls `callback` each time the connection becomes writable again while the stream is open.
    public func onWritable(_ callback: @escaping () -> Void) {
        guard isOpen else { return }
        server.streamCallbacks[connection.id, default: .init()].writable = callback
    }

    /// Calls `callback` if the connection closes before `finish()` (the client went away).
    public func onClose(_ callback: @escaping () -> Void) {
        guard isOpen else { return }
        server.streamCallbacks[connection.id, default: .init()].closed = callback
    }

    /// Ends the body: the last chunk (chunked; the connection goes on with the next request) or
    /// our side's shutdown (close-delimited).
    public func finish() {
        guard isOpen else { return }
        if framing == .chunked { _ = connection.write(Self.lastChunk) }
        server.streamCallbacks[connection.id] = nil
        var state = ConnectionStateMachine(connection.userData)
        server.perform(
            state.responded(keepAlive: keepAlive, now: server.now, timeouts: server.timeouts), connection, &state)
        server.resumeRequests(connection, &state)
    }

    private static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    private func appendHex(_ value: Int, to buffer: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        while shift >= 0 {
            buffer.append(digits.utf8Start[(value >> shift) & 0xF])
            shift -= 4
        }
    }
}

/// The callbacks of a streaming response.
struct StreamCallbacks {
    var writable: (() -> Void)? = nil
    var closed: (() -> Void)? = nil
}

/// A response a handler gives later, on the loop thread (`HTTPResponder.deferred()`): the
/// connection reads nothing more until then. If the client has gone, answering does nothing.
/// A plain value: the connection's id and what the answer needs.
public struct DeferredResponse {
    unowned let server: HTTPServer
    /// The connection's identity (fd and generation): a later connection on the same fd is not it.
    public let id: UInt64
    let keepAlive: Bool
    let isHEAD: Bool

    /// Whether the client is still there to be answered.
    public var isOpen: Bool { server.loop.connection(id: id) != nil }

    /// Answers with an event stream (see `HTTPResponder.eventStream`): for a stream that could not
    /// open at once (the events it resumes after are not here yet). False if the client has gone.
    @discardableResult
    public func eventStream(
        hub: Hub, topics: [String], lastEventID: String? = nil,
        headers: [(name: String, value: String)] = [], firstEvent: SharedBytes? = nil
    ) -> Bool {
        guard let connection = server.loop.connection(id: id) else { return false }
        var state = ConnectionStateMachine(connection.userData)
        guard state.isAwaitingResponse else { return false }
        state.deferredAnswered()
        state.deferredStreamOpened()
        var responder = HTTPResponder(
            server: server, connection: connection, state: state, keepAlive: keepAlive, isHEAD: isHEAD)
        _ = responder.eventStream(
            hub: hub, topics: topics, lastEventID: lastEventID, headers: headers, firstEvent: firstEvent)
        if connection.isOpen { connection.resumeReading() }
        return true
    }

    /// Answers (see `HTTPResponder.respond`); the connection then goes on with its next request.
    /// False if the client has gone.
    @discardableResult
    public func respond(
        status: Int, contentType: StaticString? = "text/plain; charset=utf-8",
        body: some Collection<UInt8> = EmptyCollection(), headers: (inout ResponseHeadWriter) -> Void = { _ in }
    ) -> Bool {
        guard let connection = server.loop.connection(id: id) else { return false }
        var state = ConnectionStateMachine(connection.userData)
        guard state.isAwaitingResponse else { return false }
        state.deferredAnswered()
        var responder = HTTPResponder(
            server: server, connection: connection, state: state, keepAlive: keepAlive, isHEAD: isHEAD)
        responder.respond(status: status, contentType: contentType, body: body, headers: headers)
        state = responder.state
        server.resumeRequests(connection, &state)
        return true
    }
}
