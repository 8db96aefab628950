import HTTP1
import Reactor
#if canImport(Glibc)
import Glibc
#endif

extension HTTPServer {
    // MARK: - Parsing

    /// Parses and answers the requests in `bytes`; returns how many bytes it consumed. Stops early
    /// when the connection becomes a stream or closes (the rest is not parsed), or when responses
    /// pile up unread, or a response streams or is deferred (reading pauses; the caller keeps the rest).
    func serve(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ bytes: UnsafeRawBufferPointer,
        parser: inout RequestParser, pending: inout PendingRequest?
    ) -> Int {
        var offset = 0
        // This connection's share of the loop turn: requests answered and response bytes written.
        var answered = 0
        let bytesBefore = responseBytes
        startTurnIfNew()
        var corked = false
        defer { if corked { cork(connection, false) } }
        while true {
            let window = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let step = parser.parse(window)
            switch step.event {
            case .needMore:
                return offset + step.consumed
            case .head:
                pending = requestHead(
                    parser.head, window, connection, &state, arrived: window.count - step.consumed, answered: &answered)
            case .body(let range):
                state.bodyArrived(range.count, now: now, timeouts: timeouts)
                if var request = pending, request.collectsBody {
                    pending = nil  // uniquely referenced while it grows
                    if request.body.count + range.count > request.bodyLimit! {
                        refuseBody(connection, &state)
                    } else {
                        request.body.append(contentsOf: window[range.range])
                        pending = request
                    }
                }
            case .end:
                if let request = pending {
                    pending = nil
                    answered += 1
                    complete(connection, &state, request)
                }
            case .error(let error):
                statistics.parseErrors[error.status, default: 0] += 1
                connection.write(FixedResponses.response(for: error))
                perform(state.parseFailed(now: now, timeouts: timeouts), connection, &state)
            }
            offset += step.consumed
            guard connection.isOpen else {
                parser.reset()
                pending = nil
                return bytes.count
            }
            // Only with more to parse: a read that ends with its last request owes nothing to later.
            let ownShareUsed =
                answered >= configuration.maximumRequestsPerTurn
                || responseBytes &- bytesBefore >= configuration.maximumResponseBytesPerTurn
            let overBudget = offset < bytes.count && (ownShareUsed || turnBudgetSpent)
            switch state.stepParsed(isWritable: connection.isWritable, overBudget: overBudget) {
            case .proceed:
                if !corked && answered > 0 && offset < bytes.count {
                    // Pipelined: the answers to this read go out together when it is done.
                    corked = true
                    cork(connection, true)
                }
                continue
            case .stop:
                parser.reset()
                pending = nil
                return bytes.count
            case .pause:
                store(connection, &state)
                connection.pauseReading()
                return offset
            case .yield:
                store(connection, &state)
                connection.pauseReading()
                resumeNextTurn(connection, pipelinedPastItsShare: ownShareUsed)
                return offset
            }
        }
    }

    /// TCP_CORK on a pipelining connection while its requests of one read are answered: the kernel
    /// then sends their answers as a few full segments when the cork comes off, not one small
    /// segment each (on loopback the sender's thread also does the receiver's work for each), which
    /// was most of what a pipeline flood cost a turn (Benchmarks/results/hostile-check.md). The
    /// cork never outlives the call: answers must not wait for the kernel's cork timer.
    func cork(_ connection: Connection, _ on: Bool) {
        guard connection.isOpen else { return }
        var value: Int32 = on ? 1 : 0
        // Failure only costs the coalescing: the answers still go out, one segment each.
        _ = setsockopt(connection.fd, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// After a read: if a request is unfinished, or bytes are left (reading paused), the connection
    /// takes the parser and a copy of the rest into `partials`, and the loop-wide parser is replaced.
    func keepIfPartial(
        _ connection: Connection, _ state: inout ConnectionStateMachine, parser: inout RequestParser,
        pending: PendingRequest?, rest: UnsafeRawBufferPointer
    ) {
        guard connection.isOpen, !parser.isIdle || !rest.isEmpty || pending != nil,
            state.requestUnfinished(now: now, timeouts: timeouts)
        else { return }
        let partial = PartialRequest(parser: parser, buffered: Array(rest), pending: pending)
        guard fitsPartialBudget(partial.heldBytes, connection, &state) else {
            parser.reset()
            return
        }
        store(connection, &state)
        parser = spareParsers.popLast() ?? RequestParser(limits: configuration.limits)
        holdPartial(connection, partial)
    }

    /// Goes on with a partial request whose buffer has grown (or whose reading resumed).
    /// Consuming, and callers pass it with `consume`: a caller's copy still alive during the call
    /// would share the body's buffer, so that each read's append copied the whole body so far
    /// (copy-on-write), quadratic in a large body.
    func continuePartial(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ taken: consuming PartialRequest
    ) {
        var partial = consume taken
        let start = partial.start
        let consumed = partial.buffered.withUnsafeBytes {
            serve(
                connection, &state, UnsafeRawBufferPointer(rebasing: $0[start...]), parser: &partial.parser,
                pending: &partial.pending)
        }
        let end = start + consumed
        let unfinished = !partial.parser.isIdle || end < partial.buffered.count || partial.pending != nil
        if connection.isOpen && unfinished && state.requestUnfinished(now: now, timeouts: timeouts) {
            if end == partial.buffered.count {
                // All taken (a body's bytes went to the body): a read's worth of capacity is not kept.
                partial.buffered.removeAll(keepingCapacity: partial.buffered.capacity <= 4096)
                partial.start = 0
            } else if end > partial.buffered.count / 2 {
                // Mostly consumed: move the rest down once (amortized O(1) per byte).
                partial.buffered.removeFirst(end)
                partial.start = 0
            } else {
                partial.start = end
            }
            guard fitsPartialBudget(partial.heldBytes, connection, &state) else {
                recycle(partial.parser)
                return
            }
            store(connection, &state)
            holdPartial(connection, partial)
        } else {
            recycle(partial.parser)
        }
    }

    // MARK: - The budget for partial requests

    /// Takes a connection's partial request out of `partials` (and its charge off the budget).
    func takePartial(_ connection: Connection) -> PartialRequest? {
        guard let partial = partials.removeValue(forKey: connection.fd) else { return nil }
        partialRequestBytes -= partial.charge
        return partial
    }

    /// Puts a partial request into `partials`, charged with what it holds now.
    func holdPartial(_ connection: Connection, _ partial: PartialRequest) {
        var partial = partial
        partial.charge = partial.heldBytes
        partialRequestBytes += partial.charge
        partials[connection.fd] = partial
    }

    /// Whether a partial request holding `bytes` fits the budget beside the others; if not, the
    /// client gets 503 with Retry-After and the connection closes (after the linger).
    func fitsPartialBudget(_ bytes: Int, _ connection: Connection, _ state: inout ConnectionStateMachine) -> Bool {
        guard partialRequestBytes + bytes > configuration.maximumPartialRequestBytes else { return true }
        refuseOverBudget(connection, &state)
        return false
    }

    private func refuseOverBudget(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        statistics.partialRequestsRefused += 1
        connection.write(FixedResponses.partialBudgetExhausted)
        perform(state.responded(keepAlive: false, now: now, timeouts: timeouts), connection, &state)
        // Reading may have paused (a pipeline kept for later): the linger reads, to see the close.
        connection.resumeReading()
    }

    /// A collected body past its route's limit: 413 and close.
    private func refuseBody(_ connection: Connection, _ state: inout ConnectionStateMachine) {
        statistics.parseErrors[413, default: 0] += 1
        connection.write(FixedResponses.response(for: .bodyTooLarge))
        perform(state.parseFailed(now: now, timeouts: timeouts), connection, &state)
    }

    /// A routed head whose body follows: the body deadline starts; a collected body whose
    /// Content-Length will not arrive in this read reserves it whole, if the budget allows
    /// (else 503 and close, before the client sends it: false).
    private func startBody(
        _ request: inout PendingRequest, _ framing: BodyFraming, _ connection: Connection,
        _ state: inout ConnectionStateMachine, arrived: Int
    ) -> Bool {
        state.bodyStarted(now: now, timeouts: timeouts)
        guard request.collectsBody, case .length(let length) = framing, length > arrived else { return true }
        guard partialRequestBytes + length <= configuration.maximumPartialRequestBytes else {
            refuseOverBudget(connection, &state)
            return false
        }
        request.body.reserveCapacity(length)
        return true
    }

    // MARK: - Routing

    /// Routes a request whose head has arrived (ranges index into `bytes`): a request without a
    /// body is answered now; one with a body gets its route's check now and its handler at the end
    /// (returned as pending), or, with `Expect`, `100 Continue` or an answer now.
    private func requestHead(
        _ head: MessageHead, _ bytes: UnsafeRawBufferPointer, _ connection: Connection,
        _ state: inout ConnectionStateMachine, arrived: Int, answered: inout Int
    ) -> PendingRequest? {
        let target = RequestTarget(head.target, in: bytes)
        let match = router.match(
            method: head.method, path: target.path, in: bytes, cors: configuration.corsOrigin != nil)
        var request = PendingRequest(
            keepAlive: head.keepAlive && !isDraining, isHEAD: bytes.equals(head.method, "HEAD"))
        if case .route(let index, let parameter) = match {
            request.route = index
            request.parameter = parameter
            request.bodyLimit = router.routes[index].bodyLimit
        }

        func answerNow(keepAlive: Bool) {
            answered += 1
            request.keepAlive = keepAlive
            run(match, HTTPRequest(bytes: bytes, head: head, parameter: request.parameter), connection, &state, request)
        }

        guard head.framing != .none else {
            answerNow(keepAlive: request.keepAlive)
            return nil
        }
        // Copied only for a request with a body (a copy retains the route's closures).
        let route = request.route.map { router.routes[$0] }
        if case .length(let length) = head.framing, let limit = request.bodyLimit, length > limit {
            refuseBody(connection, &state)
            return nil
        }
        let view = HTTPRequest(bytes: bytes, head: head, parameter: request.parameter)
        if let expect = head.headers.value(of: "expect", in: bytes) {
            guard let route, route.bodyLimit != nil else {
                // Refused before its body, or a body nobody reads: answer now and close, rather than
                // wait for a body the client may hold back.
                answerNow(keepAlive: false)
                return nil
            }
            guard bytes.equalsIgnoringCase(expect, "100-continue") else {
                answered += 1
                statistics.requests += 1
                statistics.expectationsFailed += 1
                var responder = responder(connection, state, request, keepAlive: false)
                responder.respond(status: 417, text: "only 100-continue is understood\n")
                state = responder.state
                return nil
            }
            if let check = route.check {
                var responder = responder(connection, state, request, keepAlive: false)
                check(view, &responder)
                state = responder.state
                if responder.hasResponded {
                    answered += 1
                    statistics.requests += 1
                    return nil
                }
            }
            guard startBody(&request, head.framing, connection, &state, arrived: arrived) else { return nil }
            connection.write(FixedResponses.continueResponse)
        } else {
            // The answer comes at the end, after the body: a refusal decided now is held until then.
            var responder = responder(connection, state, request, holds: true)
            switch match {
            case .route:
                route?.check?(view, &responder)
            default:
                run(match, view, &responder)
            }
            request.held = responder.held
            guard startBody(&request, head.framing, connection, &state, arrived: arrived) else { return nil }
        }
        if request.held == nil {
            request.headBytes = Array(bytes[0..<head.length])
            request.head = head
        }
        return request
    }

    private func responder(
        _ connection: Connection, _ state: ConnectionStateMachine, _ request: PendingRequest,
        keepAlive: Bool? = nil, holds: Bool = false
    ) -> HTTPResponder {
        HTTPResponder(
            server: self, connection: connection, state: state, keepAlive: keepAlive ?? request.keepAlive,
            isHEAD: request.isHEAD, holds: holds)
    }

    /// Answers a complete request now: its handler, or the router's own answer.
    private func run(
        _ match: Router.Match, _ view: HTTPRequest, _ connection: Connection, _ state: inout ConnectionStateMachine,
        _ request: PendingRequest, checked: Bool = false
    ) {
        statistics.requests += 1
        var responder = responder(connection, state, request)
        run(match, view, &responder, checked: checked)
        state = responder.state
    }

    private func run(
        _ match: Router.Match, _ view: HTTPRequest, _ responder: inout HTTPResponder, checked: Bool = false
    ) {
        switch match {
        case .route(let index, _):
            if !checked, let check = router.routes[index].check {
                check(view, &responder)
                if responder.hasResponded { return }
            }
            router.routes[index].handler(view, &responder)
            if !responder.hasResponded {
                responder.respond(status: 500, text: "the handler gave no response\n")
            }
        case .notFound:
            statistics.notFound += 1
            responder.respond(status: 404, text: "not found\n")
        case .methodNotAllowed(let allow):
            statistics.methodNotAllowed += 1
            responder.respond(status: 405, body: "method not allowed\n".utf8) { $0.header("Allow", allow) }
        case .preflight(let allow):
            responder.respond(status: 204, contentType: nil) { head in
                head.header("Access-Control-Allow-Methods", allow)
                head.header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
                head.header("Access-Control-Max-Age", 600)
            }
        }
    }

    /// A request whose body has arrived: its held answer, or its handler with the copied head.
    private func complete(_ connection: Connection, _ state: inout ConnectionStateMachine, _ request: PendingRequest) {
        if let held = request.held {
            statistics.requests += 1
            send(held, keepAlive: request.keepAlive, connection, &state)
            return
        }
        guard let head = request.head, let route = request.route else { return }
        request.headBytes.withUnsafeBytes { bytes in
            let view = HTTPRequest(bytes: bytes, head: head, parameter: request.parameter, body: request.body)
            run(.route(route, parameter: request.parameter), view, connection, &state, request, checked: true)
        }
    }

    // MARK: - Writing responses

    /// Adds the headers every response shares (CORS, `Connection: close`) to the writer's head.
    func finishHead(keepAlive: Bool) {
        if let origin = configuration.corsOrigin { writer.header("Access-Control-Allow-Origin", origin) }
        if !keepAlive { writer.header("Connection", "close") }
    }

    /// Writes a final response, then either waits for the next request or closes.
    func send(_ response: [UInt8], keepAlive: Bool, _ connection: Connection, _ state: inout ConnectionStateMachine) {
        responseBytes &+= response.count
        connection.write(response)
        perform(state.responded(keepAlive: keepAlive, now: now, timeouts: timeouts), connection, &state)
    }

    /// Writes a final response of shared bytes (no copy), as `send`.
    func send(_ response: SharedBytes, keepAlive: Bool, _ connection: Connection, _ state: inout ConnectionStateMachine)
    {
        responseBytes &+= response.count
        connection.write(response)
        perform(state.responded(keepAlive: keepAlive, now: now, timeouts: timeouts), connection, &state)
    }

    /// Carries out what the state machine decided after a final response, and stores the state.
    func perform(
        _ action: ConnectionStateMachine.ResponseAction, _ connection: Connection,
        _ state: inout ConnectionStateMachine
    ) {
        switch action {
        case .awaitNextRequest: break
        case .shutdownAndLinger: connection.shutdownWrite()
        }
        store(connection, &state)
    }

    // MARK: - Turns

    /// Lists a connection that yielded its turn (see `StepAction.yield`) to go on at a later loop
    /// turn: one task per turn serves the listed connections in order, after the events of that
    /// turn, until the turn's budget is spent.
    func resumeNextTurn(_ connection: Connection, pipelinedPastItsShare: Bool) {
        statistics.turnsYielded += 1
        if pipelinedPastItsShare {
            // A client that pipelines past its share may not be reading its answers at all: a small
            // kernel send buffer makes the socket stop taking them sooner (the queue then reaches
            // the loop's high watermark and reading pauses until it drains), so such a client holds
            // a few hundred KiB of the server's kernel memory rather than the autotuned megabytes.
            try? connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: HTTPServer.yieldingSendBuffer)
        }
        yielded.append(connection.id)
        postResumption()
    }

    private func postResumption() {
        guard !yieldTaskPosted else { return }
        yieldTaskPosted = true
        // The task runs on this loop's thread, the only one that touches the server.
        // Weakly: a task still queued when the embedder drops the server must not keep it (and so
        // its loop, with the loop's descriptors) alive; the fuzz target found that cycle.
        nonisolated(unsafe) weak let server = self
        loop.remote.execute { _ in server?.resumeYielded() }
    }

    /// A later loop turn: connections that yielded go on, in order, each with a fresh share, while
    /// the turn's budget lasts; the rest wait for the next turn, first in line. One that is not
    /// writable waits for its socket to drain instead (`connectionWritabilityDidChange`).
    private func resumeYielded() {
        yieldTaskPosted = false
        startTurnIfNew()
        swap(&yielded, &resuming)
        var index = 0
        while index < resuming.count && !turnBudgetSpent {
            let id = resuming[index]
            index += 1
            guard let connection = loop.connection(id: id), connection.isWritable else { continue }
            var state = ConnectionStateMachine(connection.userData)
            resumeRequests(connection, &state)
        }
        if index < resuming.count {
            // Not reached this turn: ahead of those that yielded again just now.
            yielded.insert(contentsOf: resuming[index...], at: 0)
            postResumption()
        }
        resuming.removeAll(keepingCapacity: true)
    }

    /// The loop turn's budget of response bytes, for all connections together, is spent.
    var turnBudgetSpent: Bool { responseBytes &- turnStartBytes >= configuration.maximumResponseBytesPerLoopTurn }

    /// Starts the loop-wide budget afresh if the loop has woken since it last started.
    func startTurnIfNew() {
        let wakeups = loop.statistics.wakeups
        guard wakeups != turnWakeups else { return }
        turnWakeups = wakeups
        turnStartBytes = responseBytes
    }

    /// Keeps a finished partial's parser (and its grown header storage) for the next one.
    func recycle(_ parser: RequestParser) {
        guard spareParsers.count < 64 else { return }
        var parser = parser
        parser.reset()
        spareParsers.append(parser)
    }
}
