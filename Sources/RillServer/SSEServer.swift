import HTTP1
import Reactor
import SSE
import SSEHub

/// The server behind `rill serve`: HTTP/1.1 on one reactor, Server-Sent Events through a `Hub`, a
/// publish endpoint, metrics, a demo page and optional static files. Loop-confined.
///
/// An idle event stream costs the server nothing beyond the hub's 28 bytes and the reactor's slot:
/// its phase and deadline live in the slot's `userData` word, requests are parsed from the loop's
/// read buffer by one loop-wide parser, and only a request split across reads takes an entry in
/// `partials` (its parser and unparsed bytes) until it completes.
public final class SSEServer: ConnectionHandler {
    public let configuration: ServerConfiguration
    public let hub: Hub
    /// Set once in `init` (it needs `self` as its handler).
    public private(set) var listener: Listener!
    /// Connections held at most (streams and requests); past it, 503.
    public let maximumConnections: Int
    public internal(set) var statistics = ServerStatistics()
    /// Connections held now (turned-away ones excluded).
    public internal(set) var heldConnections = 0
    /// Set by `beginShutdown`: no new connections, no keep-alive.
    public private(set) var isDraining = false
    /// Under a supervisor (`rill serve --workers`): publications are sequenced there, see `WorkerRelay`.
    public var relay: WorkerRelay?

    // Strong: the loop must outlive the timers this object cancels in deinit.
    let loop: EventLoop
    /// The loop-wide parser: every request that arrives whole in one read is parsed here.
    var parser: RequestParser
    /// Parsers given back by finished partial requests, reused so that steady state allocates nothing.
    var spareParsers: [RequestParser] = []
    /// Requests split across reads, by fd.
    var partials: [Int32: PartialRequest] = [:]
    var writer = ResponseHeadWriter()
    var errorLog = ErrorLog()
    /// Connections with a deadline (ids), swept by one timer while the list is not empty.
    var timed: [UInt64] = []
    var sweepTimer: TimerID? = nil
    let staticFiles: StaticFiles?
    private var tickTimer: TimerID? = nil
    private var logTimer: TimerID? = nil
    /// The event-stream response head (with CORS if configured) and the 503 answer, built once.
    let streamHead: SharedBytes
    let rejection: SharedBytes
    /// Deadlines in milliseconds.
    let headerTimeout: UInt32
    let idleTimeout: UInt32
    let lingerTimeout: UInt32
    static let sweepInterval: Duration = .milliseconds(100)

    /// Listens on `configuration.address` and starts the hub's heartbeats and the ticker.
    public init(loop: EventLoop, configuration: ServerConfiguration = ServerConfiguration()) throws(SystemError) {
        self.loop = loop
        self.configuration = configuration
        hub = Hub(loop: loop, configuration: configuration.hub)
        parser = RequestParser(limits: configuration.limits)
        let fileLimit = Int(clamping: ResourceLimits.openFiles().soft)
        maximumConnections = configuration.maximumConnections
            ?? max(1, fileLimit - ServerConfiguration.reservedDescriptors)
        staticFiles = configuration.staticDirectory.map {
            StaticFiles(directory: $0, maximumBytes: configuration.maximumStaticFileBytes)
        }
        headerTimeout = UInt32(clamping: configuration.headerTimeout.millisecondsRoundedUp)
        idleTimeout = UInt32(clamping: configuration.idleTimeout.millisecondsRoundedUp)
        lingerTimeout = UInt32(clamping: configuration.lingerTimeout.millisecondsRoundedUp)
        var head = FixedResponses.eventStreamHead
        head.removeLast(2)
        if let origin = configuration.corsOrigin { head += Array("Access-Control-Allow-Origin: \(origin)\r\n".utf8) }
        if let worker = configuration.workerIndex { head += Array("X-Rill-Worker: \(worker)\r\n".utf8) }
        head += Array("\r\n".utf8)
        streamHead = SharedBytes(head)
        rejection = SharedBytes(FixedResponses.plainText(
            status: 503, body: "server at its connection limit, retry later", extraHeaders: "Retry-After: 1\r\n"))
        listener = try loop.listen(on: configuration.address, reusePort: configuration.reusePort, handler: self)
        if let tick = configuration.tick, tick > .zero {
            tickTimer = loop.scheduleRepeating(every: tick) { [unowned self] in self.publishTick() }
        }
        if let interval = configuration.logInterval, interval > .zero {
            let text = "\(interval.components.seconds) s"
            logTimer = loop.scheduleRepeating(every: interval) { [unowned self] in self.logErrors(interval: text) }
        }
    }

    deinit {
        for timer in [tickTimer, logTimer, sweepTimer] { if let timer { loop.cancel(timer) } }
    }

    /// Requests currently split across reads (each holds a parser and its unparsed bytes).
    public var partialRequestCount: Int { partials.count }

    // MARK: - Shutting down

    /// Stops accepting and ends every event stream and idle connection cleanly (FIN after what is
    /// queued); requests in progress may finish. Then turn the loop until `openConnections` is 0 (or
    /// a deadline) and call `loop.closeAll()`.
    public func beginShutdown() {
        guard !isDraining else { return }
        isDraining = true
        listener.close()
        if let tickTimer { loop.cancel(tickTimer) }
        tickTimer = nil
        loop.forEachConnection { connection in
            guard connection != relay?.channel else { return }
            var state = ConnectionState(connection.userData)
            switch state.phase {
            case .stream:
                hub.unsubscribe(connection)
                connection.shutdownWrite()
                state.phase = .closing
                setDeadline(connection, &state, after: lingerTimeout)
            case .idle:
                connection.close()
            case .request, .closing, .rejected:
                break
            }
        }
    }

    // MARK: - Connections

    public func connectionDidOpen(_ connection: Connection) {
        var state = ConnectionState(phase: .request)
        if heldConnections >= maximumConnections || isDraining {
            statistics.connectionsRejected += 1
            connection.write(rejection)
            connection.shutdownWrite()
            state.phase = .rejected
            setDeadline(connection, &state, after: lingerTimeout)
            return
        }
        heldConnections += 1
        statistics.connectionsTotal += 1
        setDeadline(connection, &state, after: headerTimeout)
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        var state = ConnectionState(connection.userData)
        switch state.phase {
        case .stream, .closing, .rejected:
            return  // an event stream has nothing more to say; a closing client's bytes are dropped
        case .idle:
            beginRequest(connection, &state)
        case .request:
            break
        }
        if var partial = partials.removeValue(forKey: connection.fd) {
            partial.buffered.append(contentsOf: bytes)
            continuePartial(connection, partial)
        } else {
            var pending: PendingRequest? = nil
            let consumed = serve(connection, bytes, parser: &parser, pending: &pending)
            keepIfPartial(connection, parser: &parser, pending: pending,
                          rest: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
        }
    }

    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        // Pipelined requests paused while responses piled up (see `serve`): go on.
        if isWritable { resumeRequests(connection) }
    }

    /// Goes on reading and answering a connection's requests after a pause (responses piled up, or
    /// a publication waited for its relayed event).
    func resumeRequests(_ connection: Connection) {
        let phase = ConnectionState(connection.userData).phase
        guard connection.isOpen, phase == .request || phase == .idle, relay?.waiting[connection.id] == nil else { return }
        connection.resumeReading()
        if let partial = partials.removeValue(forKey: connection.fd) { continuePartial(connection, partial) }
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let state = ConnectionState(connection.userData)
        if state.isHeld { heldConnections -= 1 }
        relay?.waiting[connection.id] = nil
        switch state.phase {
        case .stream: hub.unsubscribe(connection)
        case .request, .idle:
            if let partial = partials.removeValue(forKey: connection.fd) { recycle(partial.parser) }
        case .closing, .rejected: break
        }
        switch reason {
        case .reset, .error: statistics.resets += 1
        default: break
        }
    }

    // MARK: - Deadlines

    /// Sets the connection's deadline `milliseconds` from now and makes sure the sweep will see it.
    func setDeadline(_ connection: Connection, _ state: inout ConnectionState, after milliseconds: UInt32) {
        state.deadline = UInt32(truncatingIfNeeded: loop.now) &+ milliseconds
        if !state.isSwept {
            state.isSwept = true
            timed.append(connection.id)
            if sweepTimer == nil {
                sweepTimer = loop.scheduleRepeating(every: SSEServer.sweepInterval) { [unowned self] in self.sweep() }
            }
        }
        connection.userData = state.raw
    }

    /// Closes connections past their deadline; forgets those that closed or became streams. The
    /// timer stops when nothing is left to watch, so a server of idle streams never wakes for it.
    private func sweep() {
        let now = UInt32(truncatingIfNeeded: loop.now)
        var kept = 0
        for index in timed.indices {
            let id = timed[index]
            guard let connection = loop.connection(id: id) else { continue }
            var state = ConnectionState(connection.userData)
            guard state.hasDeadline else {
                state.isSwept = false
                connection.userData = state.raw
                continue
            }
            if state.deadline.millisecondsAfter(now) > 0 {
                timed[kept] = id
                kept += 1
                continue
            }
            timedOut(connection, state)
        }
        timed.removeLast(timed.count - kept)
        if timed.isEmpty {
            if let sweepTimer { loop.cancel(sweepTimer) }
            sweepTimer = nil
            if timed.capacity > 4096 { timed = [] }  // a connect storm's list: give the memory back
        }
    }

    static let requestTimeout = FixedResponses.plainText(status: 408, body: "request not received in time")

    /// The first bytes of a request on an idle keep-alive connection: the header timeout starts.
    func beginRequest(_ connection: Connection, _ state: inout ConnectionState) {
        state.phase = .request
        setDeadline(connection, &state, after: headerTimeout)
    }

    private func timedOut(_ connection: Connection, _ state: ConnectionState) {
        switch state.phase {
        case .request:
            statistics.headerTimeouts += 1
            if partials[connection.fd] != nil {
                connection.write(SSEServer.requestTimeout)
            }
            connection.close()
        case .idle:
            statistics.idleTimeouts += 1
            connection.close()
        case .closing, .rejected:
            statistics.lingerTimeouts += 1
            connection.close()
        case .stream:
            break
        }
    }

    // MARK: - Publishing

    private func publishTick() {
        statistics.ticks += 1
        _ = try? hub.publish(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic)
    }

    /// The demo ticker's event: the server time, ISO 8601 (a supervisor publishes it for its workers).
    public static func tickEvent() -> OutgoingEvent {
        OutgoingEvent(data: iso8601(nanoseconds: WallClock.nanoseconds()), name: "time")
    }

    /// An event sequenced by the supervisor: delivered here; if this worker took its publication
    /// (`token`), the waiting request gets its 204 and the connection goes on.
    public func deliverRelayed(token: UInt64, topic: String, event: RelayMessage.RelayedEvent) {
        let delivered = try? hub.publish(event.outgoing, topic: topic)
        guard token != 0, let request = relay?.waiting.removeValue(forKey: token),
              let connection = loop.connection(id: token) else { return }
        guard let delivered else {
            refuse(connection, request, .badRequest("event id and name must not contain NUL, CR or LF"))
            return
        }
        statistics.publishes += 1
        respond(connection, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
            head.header("X-Event-Id", delivered.id)
            head.header("X-Subscribers", delivered.subscribers)
        }
        resumeRequests(connection)
    }
}

