import HTTP1
import Reactor
import SSE
import SSEHub

/// The server behind `rill serve`: HTTP/1.1 on one reactor, Server-Sent Events through a `Hub`, a
/// publish endpoint, metrics, a demo page and optional static files. Loop-confined.
///
/// An idle event stream costs the server nothing beyond the hub's entry and the reactor's slot:
/// its state (a `ConnectionStateMachine`: phase, deadline, flags) lives in the slot's `userData`
/// word, requests are parsed from the loop's read buffer by one loop-wide parser, and only a request
/// split across reads takes an entry in `partials` (its parser and unparsed bytes) until it completes.
///
/// Each callback decodes the connection's state once, feeds it the event, and performs the actions
/// the state machine returns (write, shut down, close, pause or resume reading, subscribe…);
/// `store` writes the state back and lists the connection for the deadline sweep when it needs it.
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
    /// Requests split across reads, by fd; only `takePartial` and `holdPartial` change it.
    var partials: [Int32: PartialRequest] = [:]
    /// What the requests in `partials` hold together (their charges), against
    /// `configuration.maximumPartialRequestBytes`.
    public internal(set) var partialRequestBytes = 0
    var writer = ResponseHeadWriter()
    /// Bytes of responses written so far (head and body; event streams excepted): `serve` bounds
    /// one connection's share of a loop turn by its growth.
    var responseBytes = 0
    /// Connections that yielded their turn, to go on at the next (ids), and the list being served.
    var yielded: [UInt64] = []
    var resuming: [UInt64] = []
    var yieldTaskPosted = false
    /// The loop turn (its wake-up count) the loop-wide budget counts, and `responseBytes` at its start.
    var turnWakeups = -1
    var turnStartBytes = 0
    var errorLog = ErrorLog()
    /// Connections with a deadline (ids), swept by one timer while the list is not empty.
    var timed: [UInt64] = []
    var sweepTimer: TimerID? = nil
    let staticFiles: StaticFiles?
    /// Topics published to (here, relayed, or by the ticker): publications may create new topics
    /// while fewer than `maximumTopics` have been published to, whatever subscribers created.
    var publishedTopics: Set<String> = []
    private var tickTimer: TimerID? = nil
    private var logTimer: TimerID? = nil
    /// The event-stream response head (with CORS if configured) and the 503 answer, built once.
    let streamHead: SharedBytes
    let rejection: SharedBytes
    /// The header, idle and linger timeouts, for the connection state machine.
    let timeouts: ConnectionStateMachine.Timeouts
    static let sweepInterval: Duration = .milliseconds(100)
    /// SO_SNDBUF for a connection that pipelined past its share of a turn (the kernel doubles it):
    /// still a full turn's share of responses (`maximumResponseBytesPerTurn` by default) in flight.
    static let yieldingSendBuffer: Int32 = 64 << 10

    /// Listens on `configuration.address` and starts the hub's heartbeats and the ticker.
    public init(loop: EventLoop, configuration: ServerConfiguration = ServerConfiguration()) throws(SystemError) {
        self.loop = loop
        self.configuration = configuration
        hub = Hub(loop: loop, configuration: configuration.hub)
        parser = RequestParser(limits: configuration.limits)
        let fileLimit = Int(clamping: ResourceLimits.openFiles().soft)
        maximumConnections =
            configuration.maximumConnections
            ?? max(1, fileLimit - ServerConfiguration.reservedDescriptors)
        staticFiles = configuration.staticDirectory.map {
            StaticFiles(directory: $0, maximumBytes: configuration.maximumStaticFileBytes)
        }
        timeouts = ConnectionStateMachine.Timeouts(
            header: UInt32(clamping: configuration.headerTimeout.millisecondsRoundedUp),
            idle: UInt32(clamping: configuration.idleTimeout.millisecondsRoundedUp),
            linger: UInt32(clamping: configuration.lingerTimeout.millisecondsRoundedUp),
            body: UInt32(clamping: configuration.bodyTimeout.millisecondsRoundedUp),
            bodyRate: UInt32(clamping: max(0, configuration.minimumBodyRate)))
        var head = FixedResponses.eventStreamHead
        head.removeLast(2)
        if let origin = configuration.corsOrigin { head += Array("Access-Control-Allow-Origin: \(origin)\r\n".utf8) }
        if let worker = configuration.workerIndex { head += Array("X-Rill-Worker: \(worker)\r\n".utf8) }
        head += Array("\r\n".utf8)
        streamHead = SharedBytes(head)
        rejection = SharedBytes(
            FixedResponses.plainText(
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
        let now = self.now
        loop.forEachConnection { connection in
            guard connection != relay?.channel else { return }
            var state = ConnectionStateMachine(connection.userData)
            switch state.drain(now: now, timeouts: timeouts) {
            case .endStream:
                hub.unsubscribe(connection)
                connection.shutdownWrite()
                store(connection, &state)
            case .close:
                connection.close()
            case .none:
                break
            }
        }
    }

    // MARK: - Connections

    public func connectionDidOpen(_ connection: Connection) {
        var state = ConnectionStateMachine()
        switch state.open(
            now: now, timeouts: timeouts, atLimit: heldConnections >= maximumConnections, draining: isDraining)
        {
        case .reject:
            statistics.connectionsRejected += 1
            connection.write(rejection)
            connection.shutdownWrite()
        case .accept:
            heldConnections += 1
            statistics.connectionsTotal += 1
        }
        store(connection, &state)
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        var state = ConnectionStateMachine(connection.userData)
        guard state.bytesArrived(now: now, timeouts: timeouts) == .parse else { return }
        store(connection, &state)
        if var partial = takePartial(connection) {
            partial.buffered.append(contentsOf: bytes)
            continuePartial(connection, &state, partial)
        } else {
            var pending: PendingRequest? = nil
            let consumed = serve(connection, &state, bytes, parser: &parser, pending: &pending)
            keepIfPartial(
                connection, &state, parser: &parser, pending: pending,
                rest: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
        }
    }

    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        hub.connectionWritabilityDidChange(connection, isWritable: isWritable)  // a paused replay goes on
        // Pipelined requests paused while responses piled up (see `serve`): go on.
        guard isWritable else { return }
        var state = ConnectionStateMachine(connection.userData)
        resumeRequests(connection, &state)
    }

    /// Goes on reading and answering a connection's requests after a pause (responses piled up, or
    /// a publication waited for its relayed event), if the state machine says it may.
    func resumeRequests(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        guard connection.isOpen, state.resume() else { return }
        store(connection, &state)
        connection.resumeReading()
        if let partial = takePartial(connection) { continuePartial(connection, &state, partial) }
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let (wasHeld, release) = ConnectionStateMachine(connection.userData).closed()
        if wasHeld { heldConnections -= 1 }
        relay?.waiting[connection.id] = nil
        switch release {
        case .subscription: hub.unsubscribe(connection)
        case .partialRequest:
            if let partial = takePartial(connection) { recycle(partial.parser) }
        case .none: break
        }
        switch reason {
        case .reset, .error: statistics.resets += 1
        default: break
        }
    }

    // MARK: - State and deadlines

    /// The loop's time as the state machine counts it (milliseconds, wrapping).
    var now: UInt32 { UInt32(truncatingIfNeeded: loop.now) }

    /// Writes the state back into the connection's word, and lists the connection for the sweep
    /// if its new state has a deadline the sweep does not know of yet.
    func store(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        if state.enlist() {
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
        let now = self.now
        var kept = 0
        for index in timed.indices {
            let id = timed[index]
            guard let connection = loop.connection(id: id) else { continue }
            var state = ConnectionStateMachine(connection.userData)
            switch state.sweep(now: now) {
            case .keep:
                timed[kept] = id
                kept += 1
            case .forget:
                connection.userData = state.raw
            case .timeOut(let timeout):
                connection.userData = state.raw
                timedOut(connection, timeout)
            }
        }
        timed.removeLast(timed.count - kept)
        if timed.isEmpty {
            if let sweepTimer { loop.cancel(sweepTimer) }
            sweepTimer = nil
            if timed.capacity > 4096 { timed = [] }  // a connect storm's list: give the memory back
        }
    }

    private func timedOut(_ connection: Connection, _ timeout: ConnectionStateMachine.Timeout) {
        switch timeout {
        case .header:
            statistics.headerTimeouts += 1
            // 408 only to a client that sent part of a request (a partial is kept for it).
            if partials[connection.fd] != nil { connection.write(FixedResponses.requestTimeout) }
        case .body:
            statistics.bodyTimeouts += 1
            connection.write(FixedResponses.requestTimeout)
        case .idle:
            statistics.idleTimeouts += 1
        case .linger:
            statistics.lingerTimeouts += 1
        }
        connection.close()
    }

    // MARK: - Publishing

    private func publishTick() {
        statistics.ticks += 1
        publishedTopics.insert(ServerConfiguration.tickTopic)
        _ = try? hub.publish(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic)
    }

    /// The demo ticker's event: the server time, ISO 8601 (a supervisor publishes it for its workers).
    public static func tickEvent() -> OutgoingEvent {
        OutgoingEvent(data: iso8601(nanoseconds: WallClock.nanoseconds()), name: "time")
    }

    /// An event sequenced by the supervisor: delivered here; if this worker took its publication
    /// (`token`), the waiting request gets its 204 and the connection goes on.
    public func deliverRelayed(token: UInt64, topic: String, event: RelayMessage.RelayedEvent) {
        publishedTopics.insert(topic)
        let delivered = try? hub.publish(event.outgoing, topic: topic)
        guard token != 0, let request = relay?.waiting.removeValue(forKey: token),
            let connection = loop.connection(id: token)
        else { return }
        var state = ConnectionStateMachine(connection.userData)
        state.publicationReturned()
        if let delivered {
            statistics.publishes += 1
            respond(connection, &state, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
                head.header("X-Event-Id", delivered.id)
                head.header("X-Subscribers", delivered.subscribers)
            }
        } else {
            refuse(connection, &state, request, .badRequest("event id and name must not contain NUL, CR or LF"))
        }
        resumeRequests(connection, &state)
    }
}
