import HTTP1
import Reactor
import SSE

extension SSEServer {
    /// Carries out a complete request and answers it.
    func complete(_ connection: Connection, _ state: inout ConnectionStateMachine, _ request: PendingRequest) {
        statistics.requests += 1
        switch request.action {
        case .demoPage:
            respond(
                connection, &state, request, status: 200, contentType: "text/html; charset=utf-8", body: DemoPage.html)
        case .metrics:
            respond(
                connection, &state, request, status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: metricsText().utf8)
        case .subscribe(let topics, let lastEventID):
            state.subscribed()
            store(connection, &state)  // before the hub writes (a replay may close the connection)
            connection.write(streamHead)
            hub.subscribe(connection, topics: topics, lastEventID: lastEventID)
        case .publish(let topic, let name, let id) where relay != nil:
            // Its id and name were validated when it was routed (`publication`).
            guard let relay, relay.channel != nil else {
                respond(connection, &state, request, status: 503, body: "no supervisor\n".utf8)
                break
            }
            relay.forward(
                RelayMessage.RelayedEvent(data: request.body, id: id, name: name), topic: topic,
                request: request, from: connection)
            state.publicationForwarded()
            store(connection, &state)
        case .publish(let topic, let name, let id):
            do {
                let event = OutgoingEvent(data: request.body, id: id, name: name)
                publishedTopics.insert(topic)
                let (assigned, subscribers) = try hub.publish(event, topic: topic)
                statistics.publishes += 1
                respond(connection, &state, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
                    head.header("X-Event-Id", assigned)
                    head.header("X-Subscribers", subscribers)
                }
            } catch {
                refuse(connection, &state, request, .badRequest("event id and name must not contain NUL, CR or LF"))
            }
        case .staticFile(let path):
            switch staticFiles!.read(path) {
            case .success(let bytes):
                statistics.staticFiles += 1
                respond(connection, &state, request, status: 200, contentType: nil, body: bytes) { head in
                    head.header("Content-Type", StaticFiles.contentType(of: path))
                }
            case .failure(let failure):
                statistics.staticFailures += 1
                switch failure {
                case .notFound: refuse(connection, &state, request, .notFound)
                case .tooLarge: respond(connection, &state, request, status: 413, body: "file too large\n".utf8)
                case .unavailable:
                    respond(connection, &state, request, status: 503, body: "out of file descriptors\n".utf8)
                }
            }
        case .preflight(let allow):
            respond(connection, &state, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
                head.header("Access-Control-Allow-Methods", allow)
                head.header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
                head.header("Access-Control-Max-Age", 600)
            }
        case .refuse(let refusal):
            refuse(connection, &state, request, refusal)
        }
    }

    func refuse(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ request: PendingRequest,
        _ refusal: Refusal
    ) {
        switch refusal {
        case .notFound:
            statistics.notFound += 1
            respond(connection, &state, request, status: 404, body: "not found\n".utf8)
        case .methodNotAllowed(let allow):
            statistics.methodNotAllowed += 1
            respond(connection, &state, request, status: 405, body: "method not allowed\n".utf8) {
                $0.header("Allow", allow)
            }
        case .unauthorized:
            statistics.unauthorized += 1
            respond(connection, &state, request, status: 401, body: "publishing needs a valid token\n".utf8) {
                $0.header("WWW-Authenticate", "Bearer")
            }
        case .badRequest(let reason):
            statistics.badRequests += 1
            respond(connection, &state, request, status: 400, body: (reason + "\n").utf8)
        case .topicLimit:
            statistics.topicsExhausted += 1
            respond(connection, &state, request, status: 503, body: "too many topics, try later\n".utf8) {
                $0.header("Retry-After", 60)
            }
        case .expectationFailed:
            statistics.badRequests += 1
            respond(connection, &state, request, status: 417, body: "only 100-continue is understood\n".utf8)
        }
    }

    /// A response with a body (plain text unless told otherwise); `headers` adds any others. The
    /// Content-Length is the body's (none for a 204, RFC 9110 8.6).
    func respond(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ request: PendingRequest, status: Int,
        contentType: StaticString? = "text/plain; charset=utf-8", body: some Collection<UInt8>,
        headers: (inout ResponseHeadWriter) -> Void = { _ in }
    ) {
        writer.start(status: status)
        if let contentType { writer.header("Content-Type", contentType) }
        headers(&writer)
        if status != 204 { writer.header("Content-Length", body.count) }
        send(connection, &state, request, body: body)
    }

    /// A plain-text response, for a caller outside a connection callback (the relay): it decodes
    /// and stores the connection's state itself.
    func respond(_ connection: Connection, _ request: PendingRequest, status: Int, body: some Collection<UInt8>) {
        var state = ConnectionStateMachine(connection.userData)
        respond(connection, &state, request, status: status, body: body)
    }

    /// Adds the headers every response shares, writes head and body in one buffer, then either
    /// waits for the next request or closes.
    private func send(
        _ connection: Connection, _ state: inout ConnectionStateMachine, _ request: PendingRequest,
        body: some Collection<UInt8>
    ) {
        if let origin = configuration.corsOrigin { writer.header("Access-Control-Allow-Origin", origin) }
        if !request.keepAlive { writer.header("Connection", "close") }
        let response = request.isHEAD ? writer.finish() : writer.finish(body: body)
        responseBytes &+= response.count
        connection.write(response)
        perform(state.responded(keepAlive: request.keepAlive, now: now, timeouts: timeouts), connection, &state)
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
}
