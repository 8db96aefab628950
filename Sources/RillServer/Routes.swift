import HTTP1
import HTTPServer
import RillBytes
import SSE
import SSEHub

/// A well-formed request `rill serve` will not carry out.
enum Refusal: Error {
    case notFound
    case unauthorized
    case badRequest(String)
    case topicLimit
}

extension SSEServer {
    /// Writes a refusal (and counts it).
    func refuse(_ responder: inout HTTPResponder, _ refusal: Refusal) {
        switch refusal {
        case .notFound:
            counters.notFound += 1
            responder.respond(status: 404, text: "not found\n")
        case .unauthorized:
            counters.unauthorized += 1
            responder.respond(status: 401, body: "publishing needs a valid token\n".utf8) {
                $0.header("WWW-Authenticate", "Bearer")
            }
        case .badRequest(let reason):
            counters.badRequests += 1
            responder.respond(status: 400, text: reason + "\n")
        case .topicLimit:
            counters.topicsExhausted += 1
            responder.respond(status: 503, body: "too many topics, try later\n".utf8) { $0.header("Retry-After", 60) }
        }
    }

    // MARK: - /sse

    func subscription(_ request: HTTPRequest) -> EventStreamDecision {
        guard let parameters = request.queryParameters else { return refusal(.badRequest("malformed query")) }
        var topics: [String] = []
        for (name, value) in parameters where name == "topic" {
            if !value.isEmpty && !topics.contains(value) { topics.append(value) }
        }
        if topics.isEmpty { topics = [ServerConfiguration.defaultTopic] }
        guard topics.count <= configuration.maximumTopicsPerSubscription else {
            return refusal(.badRequest("at most \(configuration.maximumTopicsPerSubscription) topics"))
        }
        guard topicsFit(topics) else { return refusal(.topicLimit) }
        if let lastEventID = request.lastEventID, let engine, engine.hasNotRead(lastEventID) {
            return .later { [unowned self] response in
                engine.whenRead(past: lastEventID) { [unowned self] in
                    openStream(response, topics: topics, lastEventID: lastEventID)
                }
            }
        }
        if let lastEventID = request.lastEventID, let reason = resetReason(for: lastEventID, topics: topics) {
            let (headers, firstEvent) = announceReset(reason)
            return .reset(topics: topics, headers: headers, firstEvent: firstEvent)
        }
        return .accept(topics: topics)
    }

    /// A stream that waited for the engine to read up to its Last-Event-ID: opened as a replay if
    /// it can resume now, else with `event: reset`.
    private func openStream(_ response: DeferredResponse, topics: [String], lastEventID: String) {
        if let reason = resetReason(for: lastEventID, topics: topics) {
            let (headers, firstEvent) = announceReset(reason)
            response.eventStream(hub: hub, topics: topics, headers: headers, firstEvent: firstEvent)
        } else {
            response.eventStream(hub: hub, topics: topics, lastEventID: lastEventID)
        }
    }

    /// What a stream that cannot resume opens with (the `Rill-Reset` header and `event: reset` at the
    /// newest position), counted once here.
    private func announceReset(_ reason: StreamReset.Reason) -> (headers: [(name: String, value: String)], firstEvent: SharedBytes) {
        counters.replayResets[reason, default: 0] += 1
        return ([(StreamReset.header, reason.rawValue)], StreamReset.event(reason, position: hub.lastDeliveredID))
    }

    /// Why a stream cannot resume after `lastEventID`: it names another epoch (the engine says), or
    /// none of `topics` keeps it. Nil: the hub replays from it.
    private func resetReason(for lastEventID: String, topics: [String]) -> StreamReset.Reason? {
        if let engine {
            if let reason = engine.resetReason(for: lastEventID) { return reason }
        } else if let base = configuration.epochBase, let value = UInt64(lastEventID), value <= base {
            return .epoch  // an id of an earlier start of the memory engine
        }
        return hub.canResume(after: lastEventID, topics: topics) ? nil : .unknown
    }

    private func refusal(_ refusal: Refusal) -> EventStreamDecision {
        switch refusal {
        case .notFound:
            counters.notFound += 1
            return .refuse(status: 404, body: "not found\n")
        case .unauthorized:
            counters.unauthorized += 1
            return .refuse(status: 401, body: "unauthorized\n")
        case .badRequest(let reason):
            counters.badRequests += 1
            return .refuse(status: 400, body: reason + "\n")
        case .topicLimit:
            counters.topicsExhausted += 1
            return .refuse(status: 503, body: "too many topics, try later\n", headers: [("Retry-After", "60")])
        }
    }

    /// New topics may be created by a subscription only below the configured limit. (Publications
    /// have their own count, `publishedTopics`: topics that subscribers alone created, which the hub
    /// keeps for good, must not let anyone who can open a connection deny publishing.)
    private func topicsFit(_ topics: [String]) -> Bool {
        let new = topics.filter { !hub.hasTopic($0) }.count
        return new == 0 || hub.topicCount + new <= configuration.maximumTopics
    }

    // MARK: - /publish

    /// Topic, event name and id of a publication, from its query.
    private func publicationTarget(_ request: HTTPRequest) -> Result<(topic: String, name: String?, id: String?), Refusal> {
        guard let parameters = request.queryParameters else { return .failure(.badRequest("malformed query")) }
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
            return .failure(.badRequest("event id and name must not contain NUL, CR or LF"))
        }
        guard publishedTopics.contains(topic) || publishedTopics.count < configuration.maximumTopics else {
            return .failure(.topicLimit)
        }
        return .success((topic, name, id))
    }

    /// The check on a publication's head, before its body (and before `100 Continue`).
    func publicationRefusal(_ request: HTTPRequest) -> Refusal? {
        if let token = configuration.publishToken {
            guard let header = request.headerBytes("authorization"), bearerTokenMatches(header, token) else {
                return .unauthorized
            }
        }
        if case .failure(let refusal) = publicationTarget(request) { return refusal }
        return nil
    }

    /// A publication whose body has arrived: to the hub, or to the sequencer (answered later).
    func publish(_ request: HTTPRequest, _ responder: inout HTTPResponder) {
        let target: (topic: String, name: String?, id: String?)
        switch publicationTarget(request) {
        case .failure(let refusal): return refuse(&responder, refusal)
        case .success(let found): target = found
        }
        switch publications {
        case .sequencer(let sequencer):
            // Its id and name were validated above.
            sequencer.sequence(
                RelayMessage.RelayedEvent(data: request.body, id: target.id, name: target.name), topic: target.topic,
                response: responder.deferred())
        case .localHub:
            do {
                let event = OutgoingEvent(data: request.body, id: target.id, name: target.name)
                publishedTopics.insert(target.topic)
                let (assigned, subscribers) = try hub.publish(event, topic: target.topic)
                counters.publishes += 1
                responder.respond(status: 204, contentType: nil) { head in
                    head.header("X-Event-Id", assigned)
                    head.header("X-Subscribers", subscribers)
                }
            } catch {
                refuse(&responder, .badRequest("event id and name must not contain NUL, CR or LF"))
            }
        }
    }

    // MARK: - /static/*

    func staticFile(_ request: HTTPRequest, _ responder: inout HTTPResponder) {
        let rawPath = request.pathParameterBytes
        if let kept = staticFileCache.response(for: rawPath) {
            counters.staticFiles += 1
            return responder.respond(kept)
        }
        guard let decoded = percentDecoded(rawPath, plusIsSpace: false) else {
            return refuse(&responder, .badRequest("malformed path"))
        }
        guard let path = StaticFiles.safeRelativePath(decoded), let staticFiles else {
            return refuse(&responder, .notFound)
        }
        switch staticFiles.read(path) {
        case .success(let file):
            counters.staticFiles += 1
            let contentType = StaticFiles.contentType(of: path)
            guard file.bytes.count <= StaticFileCache.maximumFileBytes else {
                return responder.respond(status: 200, contentType: nil, body: file.bytes) { head in
                    head.header("Content-Type", contentType)
                }
            }
            let response = http.prepare(status: 200, contentType: nil, body: file.bytes) { head in
                head.header("Content-Type", contentType)
            }
            staticFileCache.store(
                rawPath: rawPath, fullPath: staticFiles.path(of: path), identity: .init(file.status),
                fileBytes: file.bytes.count, response: response)
            responder.respond(response)
        case .failure(let failure):
            counters.staticFailures += 1
            switch failure {
            case .notFound: refuse(&responder, .notFound)
            case .tooLarge: responder.respond(status: 413, text: "file too large\n")
            case .unavailable: responder.respond(status: 503, text: "out of file descriptors\n")
            }
        }
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
