import HTTP1
import Reactor
import RillBytes
import SSE
import SSEHub

/// How a handler answers its request, once: a fixed response, a streamed one, an event stream,
/// or later (`deferred`). One per request, passed `inout` to the handler; loop-confined.
public struct HTTPResponder {
    unowned let server: HTTPServer
    public let connection: Connection
    var state: ConnectionStateMachine
    let keepAlive: Bool
    let isHEAD: Bool
    /// A check on a head whose body follows keeps its answer until the body has arrived.
    let holds: Bool
    var held: [UInt8]? = nil
    /// Whether the request has been answered (or its answer deferred or streamed).
    public private(set) var hasResponded = false

    init(
        server: HTTPServer, connection: Connection, state: ConnectionStateMachine, keepAlive: Bool, isHEAD: Bool,
        holds: Bool = false
    ) {
        self.server = server
        self.connection = connection
        self.state = state
        self.keepAlive = keepAlive
        self.isHEAD = isHEAD
        self.holds = holds
    }

    /// A response with a body (plain text unless told otherwise); `headers` adds others. The
    /// Content-Length is the body's (none for 1xx, 204, 304). HEAD requests get the head only.
    public mutating func respond(
        status: Int, contentType: StaticString? = "text/plain; charset=utf-8",
        body: some Collection<UInt8> = EmptyCollection(), headers: (inout ResponseHeadWriter) -> Void = { _ in }
    ) {
        precondition(!hasResponded, "a request is answered once")
        hasResponded = true
        server.writer.start(status: status)
        if let contentType, status != 204 { server.writer.header("Content-Type", contentType) }
        headers(&server.writer)
        if status != 204 && status != 304 && status >= 200 { server.writer.header("Content-Length", body.count) }
        server.finishHead(keepAlive: keepAlive)
        let response = isHEAD ? server.writer.finish() : server.writer.finish(body: body)
        if holds {
            held = response
        } else {
            server.send(response, keepAlive: keepAlive, connection, &state)
        }
    }

    /// A plain-text response.
    public mutating func respond(status: Int, text: String) {
        respond(status: status, body: text.utf8)
    }

    /// A response built once (`HTTPServer.prepare`): one write of shared bytes, no allocation.
    public mutating func respond(_ prepared: PreparedResponse) {
        precondition(!hasResponded, "a request is answered once")
        hasResponded = true
        let bytes = prepared.bytes(keepAlive: keepAlive, isHEAD: isHEAD)
        if holds {
            held = bytes.array
        } else {
            server.send(bytes, keepAlive: keepAlive, connection, &state)
        }
    }

    /// Begins a streamed response: the head now, the body through the returned handle (which
    /// reports backpressure), until `finish()`. Pipelined requests wait for it. `.chunked` keeps
    /// the connection; `.closeDelimited` ends it with the body.
    public mutating func stream(
        status: Int = 200, contentType: StaticString? = "text/plain; charset=utf-8",
        framing: ResponseStream.Framing = .chunked, headers: (inout ResponseHeadWriter) -> Void = { _ in }
    ) -> ResponseStream {
        precondition(!hasResponded && !holds, "a request is answered once, and a check may only respond")
        hasResponded = true
        let keepAlive = framing == .chunked && keepAlive
        server.writer.start(status: status)
        if let contentType { server.writer.header("Content-Type", contentType) }
        headers(&server.writer)
        if framing == .chunked { server.writer.header("Transfer-Encoding", "chunked") }
        server.finishHead(keepAlive: keepAlive)
        server.responseBytes &+= server.writer.bytes.count + 2
        _ = connection.write(server.writer.finish())
        state.streamingStarted()
        server.store(connection, &state)
        return ResponseStream(server: server, connection: connection, framing: framing, keepAlive: keepAlive)
    }

    /// Answers later (from the loop thread): the connection reads nothing more until then, and no
    /// timeout ends it meanwhile. A closed connection's deferred response is dropped.
    public mutating func deferred() -> DeferredResponse {
        precondition(!hasResponded && !holds, "a request is answered once, and a check may only respond")
        hasResponded = true
        state.responseDeferred()
        server.store(connection, &state)
        return DeferredResponse(server: server, id: connection.id, keepAlive: keepAlive, isHEAD: isHEAD)
    }

    /// Answers with an event stream subscribed to `topics` of `hub` (which replays what followed
    /// `lastEventID`, sends heartbeats and drops the subscriber if it falls too far behind).
    ///
    /// `headers` are added to the stream's head and `firstEvent` (encoded) is written before any of
    /// the hub's: how a stream that cannot resume says so (`event: reset`). Both are for rare
    /// streams: the usual head is one shared buffer, this one is built for the occasion.
    public mutating func eventStream(
        hub: Hub, topics: [String], lastEventID: String? = nil,
        headers: [(name: String, value: String)] = [], firstEvent: SharedBytes? = nil
    ) -> EventStream {
        precondition(!hasResponded && !holds, "a request is answered once, and a check may only respond")
        hasResponded = true
        state.subscribed(hub: server.index(of: hub))
        server.store(connection, &state)  // before the hub writes (a replay may close the connection)
        if headers.isEmpty {
            _ = connection.write(server.streamHead)
        } else {
            var head = Array(server.streamHead.bytes.dropLast(2))
            for (name, value) in headers { head += Array("\(name): \(value)\r\n".utf8) }
            head += [13, 10]
            _ = connection.write(head)
        }
        if let firstEvent { _ = connection.write(firstEvent) }
        hub.subscribe(connection, topics: topics, lastEventID: lastEventID)
        return EventStream(connection: connection)
    }
}

/// A whole response built once: its bytes for keep-alive and closing connections, with and
/// without the body (HEAD), shared by every request that gets it.
public struct PreparedResponse: Sendable {
    let keepAlive: SharedBytes
    let closing: SharedBytes
    let keepAliveHead: SharedBytes
    let closingHead: SharedBytes

    /// The size of the whole keep-alive response (head and body), what keeping it costs, about.
    public var byteCount: Int { keepAlive.count }

    func bytes(keepAlive: Bool, isHEAD: Bool) -> SharedBytes {
        switch (keepAlive, isHEAD) {
        case (true, false): self.keepAlive
        case (false, false): closing
        case (true, true): keepAliveHead
        case (false, true): closingHead
        }
    }
}

/// An event stream opened by `HTTPResponder.eventStream`: the hub writes its topics' events and
/// heartbeats; `send` writes an event to this connection only. Loop-confined; a plain value (the
/// server keeps nothing per stream but the connection's word).
public struct EventStream {
    public let connection: Connection

    /// Whether the client is still connected.
    public var isOpen: Bool { connection.isOpen }

    /// Writes `event` to this stream only (encoded once here); false if the stream is closed or
    /// its queue is past the loop's high watermark.
    @discardableResult
    public func send(_ event: OutgoingEvent) throws(EventEncodingError) -> Bool {
        send(try EventEncoder.encodeShared(event))
    }

    /// Writes an event encoded already (by `EventEncoder.encodeShared`), shared with other streams.
    @discardableResult
    public func send(_ encoded: SharedBytes) -> Bool {
        guard connection.isOpen else { return false }
        return connection.write(encoded)
    }

    /// Ends the stream (the hub forgets it when the connection closes).
    public func close() { connection.closeAfterFlush() }
}
