import HTTP1
import Reactor
import SSE
#if canImport(Glibc)
import Glibc
#endif

/// A request split across reads: its parser (mid-message) and the bytes not yet consumed.
struct PartialRequest {
    var parser: RequestParser
    var buffered: [UInt8]
    /// Where the unconsumed bytes of `buffered` begin: a pipeline served a share at a time moves
    /// this mark, not its bytes (a `removeFirst` per turn would move the whole backlog each time).
    var start = 0
    var pending: PendingRequest?
    /// What it holds, as counted against the server's budget for partial requests while it is in
    /// `partials`: its buffers' capacities (a body with a Content-Length is reserved whole).
    var charge = 0

    var heldBytes: Int { buffered.capacity + (pending?.body.capacity ?? 0) }
}

/// What a request head asked for, kept until the request's end (its body, if any, has arrived).
struct PendingRequest {
    enum Action {
        case demoPage
        case metrics
        case subscribe(topics: [String], lastEventID: String?)
        case publish(topic: String, name: String?, id: String?)
        case staticFile(String)
        case preflight(allow: StaticString)
        case refuse(Refusal)
    }

    var action: Action
    var keepAlive: Bool
    var isHEAD: Bool
    /// The body, collected only for a publication.
    var body: [UInt8] = []

    var collectsBody: Bool {
        if case .publish = action { return true }
        return false
    }
}

/// What routing decided on a request's head.
enum HeadDecision {
    /// Take the body (if any), then carry the request out at its end.
    case awaitEnd(PendingRequest)
    /// Write `100 Continue` (the client waits for it before sending the body), then as `awaitEnd`.
    case continueThenAwaitEnd(PendingRequest)
    /// Answer now (the request is refused, `keepAlive` is off): the connection closes.
    case answerNow(PendingRequest)
}

/// A well-formed request the server will not carry out.
enum Refusal {
    case notFound
    case methodNotAllowed(allow: StaticString)
    case unauthorized
    case badRequest(String)
    case topicLimit
    case expectationFailed
}

extension SSEServer {
    // MARK: - Parsing

    /// Parses and answers the requests in `bytes`; returns how many bytes it consumed. Stops early
    /// when the connection becomes a stream or closes (the rest is not parsed), or when responses
    /// pile up unread (reading pauses; the caller keeps the rest).
    func serve(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ bytes: UnsafeRawBufferPointer,
        parser: inout RequestParser, pending: inout PendingRequest?
    ) -> Int {
        var offset = 0
        // This connection's share of the loop turn: requests answered and response bytes written.
        var answered = 0
        let bytesBefore = responseBytes
        startTurnIfNew()
        while true {
            let window = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let step = parser.parse(window)
            switch step.event {
            case .needMore:
                return offset + step.consumed
            case .head:
                switch requestHead(parser.head, window) {
                case .awaitEnd(var request):
                    guard
                        startBody(
                            &request, parser.head.framing, connection, &state, arrived: window.count - step.consumed)
                    else {
                        break
                    }
                    pending = request
                case .continueThenAwaitEnd(var request):
                    guard
                        startBody(
                            &request, parser.head.framing, connection, &state, arrived: window.count - step.consumed)
                    else {
                        break
                    }
                    connection.write(FixedResponses.continueResponse)
                    pending = request
                case .answerNow(let request):
                    pending = nil
                    answered += 1
                    complete(connection, &state, request)
                }
            case .body(let range):
                state.bodyArrived(range.count, now: now, timeouts: timeouts)
                if pending?.collectsBody == true { pending?.body.append(contentsOf: window[range.range]) }
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
    func continuePartial(_ connection: Connection, _ state: inout ConnectionStateMachine, _ partial: PartialRequest) {
        var partial = partial
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
    private func holdPartial(_ connection: Connection, _ partial: PartialRequest) {
        var partial = partial
        partial.charge = partial.heldBytes
        partialRequestBytes += partial.charge
        partials[connection.fd] = partial
    }

    /// Whether a partial request holding `bytes` fits the budget beside the others; if not, the
    /// client gets 503 with Retry-After and the connection closes (after the linger).
    private func fitsPartialBudget(_ bytes: Int, _ connection: Connection, _ state: inout ConnectionStateMachine)
        -> Bool
    {
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

    /// A routed head whose body follows: the body deadline starts; a publication whose
    /// Content-Length will not arrive in this read reserves it whole, if the budget allows
    /// (else 503 and close, before the client sends it: false).
    private func startBody(
        _ request: inout PendingRequest, _ framing: BodyFraming, _ connection: Connection,
        _ state: inout ConnectionStateMachine, arrived: Int
    ) -> Bool {
        guard framing != .none else { return true }
        state.bodyStarted(now: now, timeouts: timeouts)
        guard request.collectsBody, case .length(let length) = framing, length > arrived else { return true }
        guard partialRequestBytes + length <= configuration.maximumPartialRequestBytes else {
            refuseOverBudget(connection, &state)
            return false
        }
        request.body.reserveCapacity(length)
        return true
    }

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
            try? connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: SSEServer.yieldingSendBuffer)
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

    // MARK: - Routing

    /// Decides, from the head, what the request will get; the caller carries the decision out.
    /// Ranges index into `bytes`.
    private func requestHead(_ head: MessageHead, _ bytes: UnsafeRawBufferPointer) -> HeadDecision {
        let method = head.method
        let isGET = bytes.equals(method, "GET")
        let isHEAD = bytes.equals(method, "HEAD")
        let isPOST = bytes.equals(method, "POST")
        let isOPTIONS = bytes.equals(method, "OPTIONS")
        let target = RequestTarget(head.target, in: bytes)
        var request = PendingRequest(
            action: .refuse(.notFound), keepAlive: head.keepAlive && !isDraining, isHEAD: isHEAD)
        let cors = configuration.corsOrigin != nil

        func methods(_ allowed: Bool, allow: StaticString, corsAllow: StaticString) -> Bool {
            if allowed { return true }
            request.action =
                isOPTIONS && cors
                ? .preflight(allow: corsAllow) : .refuse(.methodNotAllowed(allow: cors ? corsAllow : allow))
            return false
        }

        let path = target.path
        if target.isRoot(in: bytes) {
            if methods(isGET || isHEAD, allow: "GET, HEAD", corsAllow: "GET, HEAD, OPTIONS") {
                request.action = .demoPage
            }
        } else if bytes.equals(path, "/sse") {
            if methods(isGET, allow: "GET", corsAllow: "GET, OPTIONS") {
                request.action = subscription(target, head, bytes)
            }
        } else if bytes.equals(path, "/publish") {
            if methods(isPOST, allow: "POST", corsAllow: "POST, OPTIONS") {
                request.action = publication(target, head, bytes)
            }
        } else if bytes.equals(path, "/metrics") {
            if methods(isGET || isHEAD, allow: "GET, HEAD", corsAllow: "GET, HEAD, OPTIONS") {
                request.action = .metrics
            }
        } else if let staticFiles = staticFiles, bytes.hasPrefix(path, "/static/") {
            if methods(isGET || isHEAD, allow: "GET, HEAD", corsAllow: "GET, HEAD, OPTIONS") {
                request.action = staticFileAction(path, bytes, staticFiles)
            }
        }

        if let expect = head.headers.value(of: "expect", in: bytes), head.framing != .none {
            if case .publish = request.action, bytes.equalsIgnoringCase(expect, "100-continue") {
                return .continueThenAwaitEnd(request)
            }
            // Refused before its body: answer now and close, rather than wait for a body the
            // client may hold back.
            if case .publish = request.action { request.action = .refuse(.expectationFailed) }
            request.keepAlive = false
            return .answerNow(request)
        }
        return .awaitEnd(request)
    }

    private func subscription(_ target: RequestTarget, _ head: MessageHead, _ bytes: UnsafeRawBufferPointer)
        -> PendingRequest.Action
    {
        guard let parameters = target.parameters(in: bytes) else { return .refuse(.badRequest("malformed query")) }
        var topics: [String] = []
        var lastEventID: String? = nil
        for (name, value) in parameters {
            switch name {
            case "topic":
                if !value.isEmpty && !topics.contains(value) { topics.append(value) }
            case "lastEventId", "last-event-id":
                lastEventID = value
            default:
                break
            }
        }
        if let header = head.headers.value(of: "last-event-id", in: bytes) {
            lastEventID = String(decoding: bytes[header.range], as: UTF8.self)
        }
        if topics.isEmpty { topics = [ServerConfiguration.defaultTopic] }
        guard topics.count <= configuration.maximumTopicsPerSubscription else {
            return .refuse(.badRequest("at most \(configuration.maximumTopicsPerSubscription) topics"))
        }
        guard topicsFit(topics) else { return .refuse(.topicLimit) }
        return .subscribe(topics: topics, lastEventID: lastEventID.flatMap { $0.isEmpty ? nil : $0 })
    }

    private func publication(_ target: RequestTarget, _ head: MessageHead, _ bytes: UnsafeRawBufferPointer)
        -> PendingRequest.Action
    {
        if let token = configuration.publishToken {
            guard let header = head.headers.value(of: "authorization", in: bytes),
                bearerTokenMatches(UnsafeRawBufferPointer(rebasing: bytes[header.range]), token)
            else {
                return .refuse(.unauthorized)
            }
        }
        guard let parameters = target.parameters(in: bytes) else { return .refuse(.badRequest("malformed query")) }
        var topic = ServerConfiguration.defaultTopic
        var name: String? = nil
        var id: String? = nil
        for (key, value) in parameters {
            switch key {
            case "topic": if !value.isEmpty { topic = value }
            case "event": if !value.isEmpty { name = value }
            case "id": if !value.isEmpty { id = value }
            default: break
            }
        }
        // Refused here, before the body and before the hub: a refused publication uses no id.
        do {
            try EventEncoder.validate(OutgoingEvent(data: [], id: id, name: name))
        } catch {
            return .refuse(.badRequest("event id and name must not contain NUL, CR or LF"))
        }
        guard publishedTopics.contains(topic) || publishedTopics.count < configuration.maximumTopics else {
            return .refuse(.topicLimit)
        }
        return .publish(topic: topic, name: name, id: id)
    }

    /// New topics may be created by a subscription only below the configured limit. (Publications
    /// have their own count, `publishedTopics`: topics that subscribers alone created, which the hub
    /// keeps for good, must not let anyone who can open a connection deny publishing.)
    private func topicsFit(_ topics: [String]) -> Bool {
        let new = topics.filter { !hub.hasTopic($0) }.count
        return new == 0 || hub.topicCount + new <= configuration.maximumTopics
    }

    private func staticFileAction(_ path: ByteRange, _ bytes: UnsafeRawBufferPointer, _ files: StaticFiles)
        -> PendingRequest.Action
    {
        let relative = UnsafeRawBufferPointer(
            rebasing: bytes[(Int(path.start) + "/static/".utf8.count)..<Int(path.end)])
        guard let decoded = percentDecoded(relative, plusIsSpace: false) else {
            return .refuse(.badRequest("malformed path"))
        }
        guard let safe = StaticFiles.safeRelativePath(decoded) else { return .refuse(.notFound) }
        return .staticFile(safe)
    }
}

/// `Bearer <token>`, compared in time independent of where the first difference is.
func bearerTokenMatches(_ value: UnsafeRawBufferPointer, _ token: String) -> Bool {
    let prefix = Array("bearer ".utf8)
    guard value.count == prefix.count + token.utf8.count else { return false }
    for (index, byte) in prefix.enumerated() where value[index] | 0x20 != byte | 0x20 { return false }
    var difference: UInt8 = 0
    for (index, byte) in token.utf8.enumerated() { difference |= value[prefix.count + index] ^ byte }
    return difference == 0
}
