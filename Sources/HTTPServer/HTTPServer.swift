import HTTP1
import Reactor
import RillBytes
import SSE
import SSEHub

/// An embeddable HTTP/1.1 server on one reactor loop: routes (`Router`), keep-alive,
/// pipelining, `Expect: 100-continue`, streamed and deferred responses and SSE event streams bound
/// to a `Hub`, with every limit and timeout of `rill serve` (see `Configuration`). Handlers run on
/// the loop thread. Loop-confined.
///
/// An idle event stream costs the server nothing beyond the hub's entry and the reactor's slot:
/// its state (a `ConnectionStateMachine`: phase, deadline, flags, hub) lives in the slot's
/// `userData` word, requests are parsed from the loop's read buffer by one loop-wide parser, and
/// only a request split across reads takes an entry in `partials` (its parser and unparsed bytes)
/// until it completes.
///
/// Each callback decodes the connection's state once, feeds it the event, and performs the actions
/// the state machine returns; `store` writes the state back and lists the connection for the
/// deadline sweep when it needs it.
public final class HTTPServer: ConnectionHandler {
    public let configuration: Configuration
    public let router: Router
    /// Set once in `init` (it needs `self` as its handler).
    public internal(set) var listener: Listener!
    /// Connections held at most (streams and requests); past it, 503.
    public let maximumConnections: Int
    public internal(set) var statistics = Statistics()
    /// Connections held now (turned-away ones excluded).
    public internal(set) var heldConnections = 0
    /// Set by `beginShutdown`: no new connections, no keep-alive.
    public internal(set) var isDraining = false
    /// The listener was closed at the connection limit, to be reopened with room (see `shedListenerIfFull`).
    var listenerShed = false
    /// `stopAccepting` was called: the listener stays closed.
    var acceptingStopped = false
    /// Counters of listeners closed at the limit.
    var retiredAcceptErrors = 0
    var retiredExhaustionPauses = 0

    // Strong: the loop must outlive the timers this object cancels in deinit.
    public let loop: EventLoop
    /// The hubs event streams are bound to; a stream's word holds its hub's index.
    var hubs: [Hub] = []
    /// The loop-wide parser: every request that arrives whole in one read is parsed here.
    var parser: RequestParser
    /// Parsers given back by finished partial requests, reused so that steady state allocates nothing.
    var spareParsers: [RequestParser] = []
    /// Requests split across reads, by fd; only `takePartial` and `holdPartial` change it.
    var partials: [Int32: PartialRequest] = [:]
    /// What the requests in `partials` hold together, against `maximumPartialRequestBytes`.
    public internal(set) var partialRequestBytes = 0
    /// Streaming responses' callbacks, by connection id (only while they stream).
    var streamCallbacks: [UInt64: StreamCallbacks] = [:]
    var writer = ResponseHeadWriter()
    /// A chunk being framed (reused).
    var chunk: [UInt8] = []
    /// Bytes of responses written so far (event streams excepted): bounds one connection's share
    /// of a loop turn by its growth.
    var responseBytes = 0
    /// Connections that yielded their turn, to go on at the next (ids), and the list being served.
    var yielded: [UInt64] = []
    var resuming: [UInt64] = []
    var yieldTaskPosted = false
    /// The loop turn (its wake-up count) the loop-wide budget counts, and `responseBytes` at its start.
    var turnWakeups = -1
    var turnStartBytes = 0
    /// Connections with a deadline (ids), swept by one timer while the list is not empty.
    var timed: [UInt64] = []
    var sweepTimer: TimerID? = nil
    /// The graceful drain's slice timer (`beginDrain`), while streams remain to be ended.
    var drainTimer: TimerID? = nil
    /// The event-stream response head (with CORS and the configured headers) and the 503, built once.
    let streamHead: SharedBytes
    let rejection: SharedBytes
    let timeouts: ConnectionStateMachine.Timeouts
    static let sweepInterval: Duration = .milliseconds(100)
    /// SO_SNDBUF for a connection that pipelined past its share of a turn (the kernel doubles it):
    /// still a full turn's share of responses (`maximumResponseBytesPerTurn` by default) in flight.
    static let yieldingSendBuffer: Int32 = 64 << 10

    /// Listens on `configuration.address` and serves `router`'s routes.
    public init(loop: EventLoop, configuration: Configuration = Configuration(), router: Router) throws(SystemError) {
        self.loop = loop
        self.configuration = configuration
        self.router = router
        parser = RequestParser(limits: configuration.limits)
        let fileLimit = Int(clamping: ResourceLimits.openFiles().soft)
        maximumConnections =
            configuration.maximumConnections ?? max(1, fileLimit - Configuration.reservedDescriptors)
        timeouts = configuration.timeouts
        var head = FixedResponses.eventStreamHead
        head.removeLast(2)
        if let origin = configuration.corsOrigin { head += Array("Access-Control-Allow-Origin: \(origin)\r\n".utf8) }
        for (name, value) in configuration.eventStreamHeaders { head += Array("\(name): \(value)\r\n".utf8) }
        head += Array("\r\n".utf8)
        streamHead = SharedBytes(head)
        rejection = SharedBytes(
            FixedResponses.plainText(
                status: 503, body: "server at its connection limit, retry later", extraHeaders: "Retry-After: 1\r\n"))
        listener = try loop.listen(on: configuration.address, reusePort: configuration.reusePort, handler: self)
    }

    deinit {
        if let sweepTimer { loop.cancel(sweepTimer) }
        if let drainTimer { loop.cancel(drainTimer) }
    }

    /// Requests currently split across reads (each holds a parser and its unparsed bytes).
    public var partialRequestCount: Int { partials.count }

    /// A response built once, for handlers to answer with `respond(_:)` at no cost per request
    /// (the server's CORS header included).
    public func prepare(
        status: Int, contentType: StaticString? = "text/plain; charset=utf-8", body: some Collection<UInt8>,
        headers: (inout ResponseHeadWriter) -> Void = { _ in }
    ) -> PreparedResponse {
        func build(keepAlive: Bool, withBody: Bool) -> SharedBytes {
            var writer = ResponseHeadWriter()
            writer.start(status: status)
            if let contentType { writer.header("Content-Type", contentType) }
            headers(&writer)
            if status != 204 && status != 304 { writer.header("Content-Length", body.count) }
            if let origin = configuration.corsOrigin { writer.header("Access-Control-Allow-Origin", origin) }
            if !keepAlive { writer.header("Connection", "close") }
            return SharedBytes(withBody ? writer.finish(body: body) : writer.finish())
        }
        return PreparedResponse(
            keepAlive: build(keepAlive: true, withBody: true), closing: build(keepAlive: false, withBody: true),
            keepAliveHead: build(keepAlive: true, withBody: false),
            closingHead: build(keepAlive: false, withBody: false))
    }

    /// The index of `hub` among the hubs event streams are bound to (added on first use).
    func index(of hub: Hub) -> Int {
        if let index = hubs.firstIndex(where: { $0 === hub }) { return index }
        precondition(hubs.count < 256, "at most 256 hubs per server")
        hubs.append(hub)
        return hubs.count - 1
    }

    // MARK: - Shutting down

    /// Stops accepting and ends every event stream and idle connection cleanly (FIN after what is
    /// queued); requests in progress may finish. Then turn the loop until `loop.openConnections`
    /// falls (or a deadline) and call `loop.closeAll()`.
    public func beginShutdown() {
        guard !isDraining else { return }
        isDraining = true
        listener.close()
        let now = self.now
        loop.forEachConnection(handledBy: self) { connection in
            var state = ConnectionStateMachine(connection.userData)
            switch state.drain(now: now, timeouts: timeouts) {
            case .endStream:
                endStream(connection, &state)
            case .close:
                connection.close()
            case .none:
                break
            }
        }
    }

    /// Ends an event stream the state machine let go (`drain` said `.endStream`): out of its hub,
    /// then a FIN after what is queued.
    func endStream(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        hubs[state.hub].unsubscribe(connection)
        connection.shutdownWrite()
        store(connection, &state)
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
            shedListenerIfFull()
        }
        store(connection, &state)
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        var state = ConnectionStateMachine(connection.userData)
        switch state.bytesArrived(now: now, timeouts: timeouts) {
        case .discard:
            return
        case .keep:
            // A response is in progress: the bytes wait, unparsed, with the rest of the pipeline.
            var partial =
                takePartial(connection)
                ?? PartialRequest(parser: spareParsers.popLast() ?? RequestParser(limits: configuration.limits))
            partial.buffered.append(contentsOf: bytes)
            guard fitsPartialBudget(partial.heldBytes, connection, &state) else {
                recycle(partial.parser)
                return
            }
            holdPartial(connection, partial)
            connection.pauseReading()
        case .parse:
            store(connection, &state)
            if var partial = takePartial(connection) {
                partial.buffered.append(contentsOf: bytes)
                continuePartial(connection, &state, consume partial)
            } else {
                var pending: PendingRequest? = nil
                let consumed = serve(connection, &state, bytes, parser: &parser, pending: &pending)
                keepIfPartial(
                    connection, &state, parser: &parser, pending: pending,
                    rest: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        }
    }

    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        var state = ConnectionStateMachine(connection.userData)
        switch state.phase {
        case .stream:
            hubs[state.hub].connectionWritabilityDidChange(connection, isWritable: isWritable)  // a paused replay
        case .streaming:
            if isWritable { streamCallbacks[connection.id]?.writable?() }
        default:
            // Pipelined requests paused while responses piled up (see `serve`): go on.
            if isWritable { resumeRequests(connection, &state) }
        }
    }

    /// Goes on reading and answering a connection's requests after a pause (responses piled up, a
    /// deferred or streamed response ended, a new loop turn), if the state machine says it may.
    func resumeRequests(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        guard connection.isOpen, state.resume() else { return }
        store(connection, &state)
        connection.resumeReading()
        if let partial = takePartial(connection) { continuePartial(connection, &state, consume partial) }
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let state = ConnectionStateMachine(connection.userData)
        let (wasHeld, release) = state.closed()
        if wasHeld {
            heldConnections -= 1
            if listenerShed { rejoinIfRoom() }
        }
        switch release {
        case .subscription: hubs[state.hub].unsubscribe(connection)
        case .partialRequest:
            if let partial = takePartial(connection) { recycle(partial.parser) }
        case .streamedResponse:
            if let partial = takePartial(connection) { recycle(partial.parser) }
            streamCallbacks.removeValue(forKey: connection.id)?.closed?()
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
                sweepTimer = loop.scheduleRepeating(every: HTTPServer.sweepInterval) { [unowned self] in self.sweep() }
            }
        }
        connection.userData = state.raw
    }

    /// Closes connections past their deadline; forgets those that closed or lost their deadline.
    /// The timer stops when nothing is left to watch, so a server of idle streams never wakes for it.
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
}
