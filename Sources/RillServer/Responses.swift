import HTTP1
import Reactor
import SSE

extension SSEServer {
    /// Carries out a complete request and answers it.
    func complete(_ connection: Connection, _ request: PendingRequest) {
        statistics.requests += 1
        switch request.action {
        case .demoPage:
            respond(connection, request, status: 200, contentType: "text/html; charset=utf-8", body: DemoPage.html)
        case .metrics:
            respond(connection, request, status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                    body: metricsText().utf8)
        case .subscribe(let topics, let lastEventID):
            var state = ConnectionState(connection.userData)
            state.phase = .stream
            connection.userData = state.raw
            connection.write(streamHead)
            hub.subscribe(connection, topics: topics, lastEventID: lastEventID)
        case .publish(let topic, let name, let id) where relay != nil:
            do {
                try EventEncoder.validate(OutgoingEvent(data: [], id: id, name: name))
                relay!.forward(RelayMessage.RelayedEvent(data: request.body, id: id, name: name), topic: topic,
                               request: request, from: connection)
            } catch {
                refuse(connection, request, .badRequest("event id and name must not contain NUL, CR or LF"))
            }
        case .publish(let topic, let name, let id):
            do {
                let event = OutgoingEvent(data: request.body, id: id, name: name)
                let (assigned, subscribers) = try hub.publish(event, topic: topic)
                statistics.publishes += 1
                respond(connection, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
                    head.header("X-Event-Id", assigned)
                    head.header("X-Subscribers", subscribers)
                }
            } catch {
                refuse(connection, request, .badRequest("event id and name must not contain NUL, CR or LF"))
            }
        case .staticFile(let path):
            switch staticFiles!.read(path) {
            case .success(let bytes):
                statistics.staticFiles += 1
                respond(connection, request, status: 200, contentType: nil, body: bytes) { head in
                    head.header("Content-Type", StaticFiles.contentType(of: path))
                }
            case .failure(let failure):
                statistics.staticFailures += 1
                switch failure {
                case .notFound: refuse(connection, request, .notFound)
                case .tooLarge: respond(connection, request, status: 413, body: "file too large\n".utf8)
                case .unavailable: respond(connection, request, status: 503, body: "out of file descriptors\n".utf8)
                }
            }
        case .preflight(let allow):
            respond(connection, request, status: 204, contentType: nil, body: EmptyCollection()) { head in
                head.header("Access-Control-Allow-Methods", allow)
                head.header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
                head.header("Access-Control-Max-Age", 600)
            }
        case .refuse(let refusal):
            refuse(connection, request, refusal)
        }
    }

    func refuse(_ connection: Connection, _ request: PendingRequest, _ refusal: Refusal) {
        switch refusal {
        case .notFound:
            statistics.notFound += 1
            respond(connection, request, status: 404, body: "not found\n".utf8)
        case .methodNotAllowed(let allow):
            statistics.methodNotAllowed += 1
            respond(connection, request, status: 405, body: "method not allowed\n".utf8) { $0.header("Allow", allow) }
        case .unauthorized:
            statistics.unauthorized += 1
            respond(connection, request, status: 401, body: "publishing needs a valid token\n".utf8) {
                $0.header("WWW-Authenticate", "Bearer")
            }
        case .badRequest(let reason):
            statistics.badRequests += 1
            respond(connection, request, status: 400, body: (reason + "\n").utf8)
        case .topicLimit:
            statistics.topicsExhausted += 1
            respond(connection, request, status: 503, body: "too many topics, try later\n".utf8) {
                $0.header("Retry-After", 60)
            }
        case .expectationFailed:
            statistics.badRequests += 1
            respond(connection, request, status: 417, body: "only 100-continue is understood\n".utf8)
        }
    }

    /// A response with a body (plain text unless told otherwise); `headers` adds any others. The
    /// Content-Length is the body's (none for a 204, RFC 9110 8.6).
    func respond(_ connection: Connection, _ request: PendingRequest, status: Int,
                 contentType: StaticString? = "text/plain; charset=utf-8", body: some Collection<UInt8>,
                 headers: (inout ResponseHeadWriter) -> Void = { _ in }) {
        writer.start(status: status)
        if let contentType { writer.header("Content-Type", contentType) }
        headers(&writer)
        if status != 204 { writer.header("Content-Length", body.count) }
        send(connection, request, body: body)
    }

    /// Adds the headers every response shares, writes head and body in one buffer, then either
    /// waits for the next request or closes.
    private func send(_ connection: Connection, _ request: PendingRequest, body: some Collection<UInt8>) {
        if let origin = configuration.corsOrigin { writer.header("Access-Control-Allow-Origin", origin) }
        if !request.keepAlive { writer.header("Connection", "close") }
        connection.write(request.isHEAD ? writer.finish() : writer.finish(body: body))
        if request.keepAlive {
            var state = ConnectionState(connection.userData)
            state.phase = .idle
            setDeadline(connection, &state, after: idleTimeout)
        } else {
            finishWithClose(connection)
        }
    }

    /// The last response is queued: shut our side down and let the client close (the linger timeout
    /// closes it if it does not), so it reads the response instead of a reset.
    func finishWithClose(_ connection: Connection) {
        connection.shutdownWrite()
        var state = ConnectionState(connection.userData)
        state.phase = .closing
        setDeadline(connection, &state, after: lingerTimeout)
    }
}
