import HTTPServer
import Reactor
import SSE
import SSEHub
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Writes `total` pattern bytes into a streamed response as fast as it takes them; when `write`
/// says no, waits for `onWritable`.
private final class Pump {
    let stream: ResponseStream
    let total: Int
    var sent = 0
    /// Times `write` said to wait, and times `onWritable` called back.
    var refusals = 0
    var resumptions = 0
    var closedEarly = false

    init(_ stream: ResponseStream, total: Int) {
        self.stream = stream
        self.total = total
        stream.onWritable { [unowned self] in
            resumptions += 1
            run()
        }
        stream.onClose { [unowned self] in closedEarly = true }
    }

    func run() {
        while sent < total {
            let piece = (sent..<min(sent + 16_384, total)).map(patternByte)
            sent += piece.count
            guard stream.write(piece) else {
                refusals += 1
                return
            }
        }
        stream.finish()
    }
}

/// What handlers keep for the test to act on later, on the loop thread.
private final class Kept {
    var pumps: [Pump] = []
    var deferred: [DeferredResponse] = []
    var streams: [EventStream] = []
}

extension Loopback {
    /// The `HTTPServer` library with routes of the test's own, over loopback, on a manual clock.
    @Suite struct EmbeddedServerTests {
        /// Exact, prefix and parameter routes, query decoding, a collected body, 404, 405 with Allow
        /// and a handler that gives no answer (500), pipelined on one connection and answered in
        /// order; HEAD gets the head alone; a body past the route's limit gets 413.
        @Test func routesAndResponses() throws {
            try expectNoFDLeak {
                let harness = try EmbeddedHarness { router, _ in
                    router.get("/hello") { request, responder in
                        responder.respond(status: 200, text: "hello \(request.query("name") ?? "you")")
                    }
                    router.get("/items/:id") { request, responder in
                        responder.respond(status: 200, text: "item \(request.pathParameter ?? "?")")
                    }
                    router.get("/files/*") { request, responder in
                        responder.respond(status: 200, text: "file \(request.pathParameter ?? "?")")
                    }
                    router.post("/echo", collectingBody: 8) { request, responder in
                        responder.respond(status: 200, contentType: "application/octet-stream", body: request.body)
                    }
                    router.get("/silent") { _, _ in }
                }
                let requests = [
                    "GET /hello?name=J%C3%BCrgen+Z HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /items/a%20b HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /files/css/x.css?v=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
                    "GET /silent HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
                    "DELETE /items/1 HTTP/1.1\r\nHost: t\r\n\r\n",
                    "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                ]
                let pipelined = try harness.open(requests.joined())
                #expect(harness.awaitClose(pipelined))
                let responses = harness.responses(pipelined)
                #expect(responses.map(\.status) == [200, 200, 200, 200, 500, 404, 405, 200])
                #expect(responses.map(\.text).prefix(4) == ["hello Jürgen Z", "item a b", "file css/x.css", "hello"])
                #expect(responses[3].header("Content-Type") == "application/octet-stream")
                #expect(responses[6].header("Allow") == "GET, HEAD")
                #expect(responses.last?.header("Connection") == "close")
                #expect(harness.server.statistics.notFound == 1 && harness.server.statistics.methodNotAllowed == 1)

                let head = try harness.exchange("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") == "9")
                let tooLong = try harness.exchange("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n123456789")
                #expect(tooLong.status == 413)
                harness.shutDown()
            }
        }

        /// A streamed response to a client that does not read: `write` says to wait once the
        /// connection's queue is full, `onWritable` resumes it when the client reads, and every
        /// byte arrives, in order. Chunked, the connection then answers the pipelined request
        /// behind it; close-delimited, it closes. A client that leaves mid-stream is `onClose`.
        @Test(arguments: [ResponseStream.Framing.chunked, .closeDelimited])
        func streamedResponseUnderBackpressure(framing: ResponseStream.Framing) throws {
            try expectNoFDLeak {
                let kept = Kept()
                let total = 1 << 20
                let harness = try EmbeddedHarness { router, _ in
                    router.get("/stream", includingHEAD: false) { _, responder in
                        // A small kernel buffer: the loop's queue, not the kernel, takes the backlog.
                        try? responder.connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 4096)
                        let pump = Pump(
                            responder.stream(contentType: "application/octet-stream", framing: framing), total: total)
                        kept.pumps.append(pump)
                        pump.run()
                    }
                    router.get("/after") { _, responder in responder.respond(status: 200, text: "after") }
                }
                let reader = try harness.open(
                    "GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
                reader.pauseReading()
                #expect(drive(harness.loop) { kept.pumps.first?.refusals ?? 0 > 0 })
                let pump = try #require(kept.pumps.first)
                #expect(pump.sent < total, "the whole body went out to a client that reads nothing")
                reader.resumeReading()
                let expected = framing == .chunked ? 2 : 1
                #expect(drive(harness.loop) { harness.responses(reader).count == expected })
                let responses = harness.responses(reader)
                #expect(responses.first?.body == (0..<total).map(patternByte))
                #expect(pump.resumptions >= 1 && pump.sent == total && !pump.closedEarly)
                switch framing {
                case .chunked:
                    #expect(responses.first?.header("Transfer-Encoding") == "chunked")
                    #expect(responses.last?.text == "after")
                case .closeDelimited:
                    #expect(responses.first?.header("Content-Length") == nil)
                    #expect(responses.first?.header("Connection") == "close")
                    #expect(harness.awaitClose(reader))
                }

                let leaver = try harness.open("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
                leaver.pauseReading()
                #expect(drive(harness.loop) { kept.pumps.count == 2 && kept.pumps[1].refusals > 0 })
                leaver.abort()
                #expect(drive(harness.loop) { kept.pumps[1].closedEarly })
                let written = kept.pumps[1].stream.write([1])
                #expect(!kept.pumps[1].stream.isOpen && !written)
                harness.shutDown()
            }
        }

        /// `Expect: 100-continue`: a head the route's check lets through gets `100 Continue`, then
        /// its answer after the body; one the check refuses is answered at once (no 100) and
        /// closed; an unknown expectation gets 417, an over-long body 413, neither a 100. Without
        /// Expect, a refusal is held until the body has arrived, and the connection is kept.
        @Test func expectContinue() throws {
            try expectNoFDLeak {
                let harness = try EmbeddedHarness { router, _ in
                    router.post(
                        "/upload", collectingBody: 16,
                        check: { request, responder in
                            if request.header("x-key") != "k" { responder.respond(status: 401, text: "no key\n") }
                        }
                    ) { request, responder in
                        responder.respond(status: 200, text: "got \(request.body.count)")
                    }
                }
                let head = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                let accepted = try harness.open(head + "X-Key: k\r\nExpect: 100-continue\r\n\r\n")
                #expect(drive(harness.loop) { harness.clients.peer(accepted).interim == [100] })
                #expect(harness.responses(accepted).isEmpty)
                accepted.write(Array("body".utf8))
                #expect(harness.awaitResponses(accepted, 1).map(\.text) == ["got 4"])

                let refused = try harness.open(head + "Expect: 100-continue\r\n\r\n")
                #expect(harness.awaitClose(refused))
                #expect(harness.responses(refused).map(\.status) == [401])
                #expect(harness.responses(refused).first?.header("Connection") == "close")
                #expect(harness.clients.peer(refused).interim.isEmpty)

                let unknown = try harness.exchange(head + "X-Key: k\r\nExpect: something\r\n\r\n")
                #expect(unknown.status == 417)
                let tooLong = try harness.open(
                    "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\nX-Key: k\r\nExpect: 100-continue\r\n\r\n")
                #expect(harness.awaitResponses(tooLong, 1).map(\.status) == [413])
                #expect(harness.clients.peer(tooLong).interim.isEmpty)
                tooLong.close()

                let heldRefusal = try harness.open(head + "\r\nbody" + "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(harness.awaitResponses(heldRefusal, 2).map(\.status) == [401, 404])
                heldRefusal.close()
                #expect(harness.server.statistics.expectationsFailed == 1)
                harness.shutDown()
            }
        }

        /// Deadlines on the manual clock: a stalled body gets 408 after `bodyTimeout`, a head that
        /// never completes 408 after `headerTimeout` (a silent client is closed without a word), an
        /// unused keep-alive connection closes after `idleTimeout`; a deferred answer and an event
        /// stream have no deadline. Nothing happens until the test moves time.
        @Test func timeoutsOnTheManualClock() throws {
            try expectNoFDLeak {
                let kept = Kept()
                let harness = try EmbeddedHarness {
                    $0.headerTimeout = .seconds(10)
                    $0.bodyTimeout = .seconds(5)
                    $0.minimumBodyRate = 0
                    $0.idleTimeout = .seconds(60)
                } routes: { router, hub in
                    router.get("/hello") { _, responder in responder.respond(status: 200, text: "hi") }
                    router.post("/upload", collectingBody: 64) { _, responder in responder.respond(status: 204, text: "") }
                    router.get("/later") { _, responder in kept.deferred.append(responder.deferred()) }
                    router.eventStream("/events", hub: hub) { _ in .accept(topics: ["t"]) }
                }
                let silent = try harness.open("")
                let partialHead = try harness.open("GET /hello HTTP/1.1\r\nHo")
                let stalledBody = try harness.open("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
                let idle = try harness.open("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                let waiting = try harness.open("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")
                let stream = try harness.open("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
                let all = [silent, partialHead, stalledBody, idle, waiting, stream]
                let clients = harness.clients
                #expect(
                    drive(harness.loop) {
                        harness.server.heldConnections == 6 && harness.server.partialRequestCount >= 2
                            && harness.responses(idle).count == 1 && kept.deferred.count == 1
                            && clients.peer(stream).streaming
                    })
                let closed = { all.map { clients.peer($0).closed } }
                drive(harness.loop, for: .milliseconds(50)) { false }
                #expect(closed() == [false, false, false, false, false, false], "real time fired a deadline")

                harness.loop.advanceTime(by: .milliseconds(5_200))
                #expect(drive(harness.loop) { clients.peer(stalledBody).closed })
                #expect(closed() == [false, false, true, false, false, false])
                #expect(harness.responses(stalledBody).map(\.status) == [408])
                #expect(harness.server.statistics.bodyTimeouts == 1)

                harness.loop.advanceTime(by: .seconds(5))
                #expect(drive(harness.loop) { clients.peer(silent).closed && clients.peer(partialHead).closed })
                #expect(closed() == [true, true, true, false, false, false])
                #expect(harness.responses(partialHead).map(\.status) == [408])
                #expect(harness.responses(silent).isEmpty)
                #expect(harness.server.statistics.headerTimeouts == 2)

                harness.loop.advanceTime(by: .seconds(50))
                #expect(drive(harness.loop) { clients.peer(idle).closed })
                #expect(closed() == [true, true, true, true, false, false])
                #expect(harness.server.statistics.idleTimeouts == 1)

                #expect(kept.deferred[0].respond(status: 200, body: "late".utf8))
                #expect(harness.awaitResponses(waiting, 1).map(\.text) == ["late"])
                #expect(!clients.peer(stream).closed)
                harness.shutDown()
            }
        }

        /// An event-stream route with its own token check: 401 (asking for a bearer token) and 403,
        /// each with its body, open no stream; an accepted one gets a welcome of its own (`onOpen`),
        /// resumes after Last-Event-ID from the header or the query, and gets its topics' events;
        /// `EventStream.send` reaches one stream only.
        @Test func eventStreamRouteWithAuth() throws {
            try expectNoFDLeak {
                let kept = Kept()
                let harness = try EmbeddedHarness { router, hub in
                    router.eventStream("/events", hub: hub) { request in
                        guard let given = request.bearerToken ?? request.query("token") else {
                            return .unauthorized("token needed\n")
                        }
                        guard given == "t0ken" else { return .forbidden("wrong token\n") }
                        let topics = request.queryValues("topic")
                        return .accept(topics: topics.isEmpty ? ["main"] : topics)
                    } onOpen: { stream, request in
                        kept.streams.append(stream)
                        _ = try? stream.send(OutgoingEvent(data: "welcome \(request.query("name") ?? "")", name: "hello"))
                    }
                }
                let missing = try harness.exchange("GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(missing.status == 401 && missing.text == "token needed\n")
                #expect(missing.header("WWW-Authenticate") == "Bearer")
                let wrongQuery = try harness.exchange("GET /events?token=nope HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(wrongQuery.status == 403 && wrongQuery.text == "wrong token\n")
                let wrongHeader = try harness.exchange(
                    "GET /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t0ke\r\n\r\n")
                #expect(wrongHeader.status == 403)
                #expect(harness.hub.statistics.subscriptionsTotal == 0)

                let ids = try (1...3).map { try harness.hub.publish(OutgoingEvent(data: "e\($0)"), topic: "main").id }
                let fresh = try harness.open(
                    "GET /events?name=a HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t0ken\r\n\r\n")
                let byQuery = try harness.open(
                    "GET /events?token=t0ken&lastEventId=\(ids[0])&name=b HTTP/1.1\r\nHost: t\r\n\r\n")
                let byHeader = try harness.open(
                    "GET /events?token=t0ken&topic=main&topic=other HTTP/1.1\r\nHost: t\r\nLast-Event-ID: \(ids[1])\r\n\r\n")
                let clients = harness.clients
                let data = { (connection: Connection) in clients.peer(connection).received.map(\.dataString) }
                #expect(drive(harness.loop) { kept.streams.count == 3 && data(byQuery).count == 3 && data(byHeader).count == 2 })
                #expect(clients.peer(fresh).responses.first?.header("Content-Type") == "text/event-stream")
                #expect(drive(harness.loop) { data(fresh).count == 1 })
                #expect(data(fresh) == ["welcome a"])
                #expect(clients.peer(fresh).received.first?.type == "hello")
                #expect(data(byQuery) == ["e2", "e3", "welcome b"])
                #expect(data(byHeader) == ["e3", "welcome "])

                _ = try harness.hub.publish(OutgoingEvent(data: "e4"), topic: "main")
                _ = try harness.hub.publish(OutgoingEvent(data: "o1"), topic: "other")
                #expect(try kept.streams[0].send(OutgoingEvent(data: "only a")))
                #expect(drive(harness.loop) { data(fresh).count == 3 && data(byQuery).count == 4 && data(byHeader).count == 4 })
                drive(harness.loop, for: .milliseconds(20)) { false }
                #expect(data(fresh) == ["welcome a", "e4", "only a"])
                #expect(data(byQuery).suffix(1) == ["e4"])
                #expect(data(byHeader).suffix(2) == ["e4", "o1"])

                fresh.close()
                #expect(drive(harness.loop) { !kept.streams[0].isOpen })
                #expect(try !kept.streams[0].send(OutgoingEvent(data: "gone")))
                harness.shutDown()
                #expect(clients.peer(byQuery).closeReason == .local, "shutdown ends streams with a FIN")
            }
        }

        /// A deferred response holds the requests pipelined behind it until it is given, then they
        /// are answered in order; a client that reset the connection before gets nothing (`respond`
        /// says so).
        @Test func deferredResponses() throws {
            try expectNoFDLeak {
                let kept = Kept()
                let harness = try EmbeddedHarness { router, _ in
                    router.get("/later") { _, responder in kept.deferred.append(responder.deferred()) }
                    router.get("/now") { _, responder in responder.respond(status: 200, text: "now") }
                }
                let pipelined = try harness.open(
                    "GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /now HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(drive(harness.loop) { kept.deferred.count == 1 })
                drive(harness.loop, for: .milliseconds(20)) { false }
                #expect(harness.responses(pipelined).isEmpty, "the request behind a deferred one waits")
                let stillThere = kept.deferred[0].isOpen
                #expect(stillThere)
                #expect(kept.deferred[0].respond(status: 202, body: "done".utf8))
                let responses = harness.awaitResponses(pipelined, 2)
                #expect(responses.map { "\($0.status) \($0.text)" } == ["202 done", "200 now"])
                let again = kept.deferred[0].respond(status: 200, body: "again".utf8)
                #expect(!again, "a request is answered once")

                let leaver = try harness.open("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(drive(harness.loop) { kept.deferred.count == 2 })
                leaver.abort()  // a reset: reading is paused while an answer is deferred, so a FIN would wait for it
                let left = kept.deferred[1]
                #expect(drive(harness.loop) { !left.isOpen })
                let tooLate = kept.deferred[1].respond(status: 200, body: "too late".utf8)
                #expect(!tooLate)
                harness.shutDown()
            }
        }
    }
}
