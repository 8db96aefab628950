import HTTP1
import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `SSEServer` end to end over loopback: HTTP in, events out.
    @Suite struct ServerTests {
        /// Subscribers of different topics get exactly the events of their topics, framed, in order;
        /// the default topic is used when none is named; POST /publish answers 204 with the id and
        /// the number of subscribers reached.
        @Test func publishAndReceiveOnTopics() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let a = try harness.subscribe(3, path: "/sse?topic=a")
                let ab = try harness.subscribe(2, path: "/sse?topic=a&topic=b")
                let plain = try harness.subscribe(1)
                let toA = try harness.publish("one", query: "topic=a&event=note")
                #expect(toA.status == 204)
                #expect(toA.header("X-Subscribers") == "5")
                #expect(toA.header("Content-Length") == nil)
                let toB = try harness.publish("two\nlines", query: "topic=b&id=custom-7")
                #expect(toB.header("X-Event-Id") == "custom-7")
                #expect(toB.header("X-Subscribers") == "2")
                try harness.publish("three")
                let clients = harness.clients
                #expect(
                    drive(harness.loop) {
                        a.allSatisfy { clients.peer($0).received.count == 1 }
                            && ab.allSatisfy { clients.peer($0).received.count == 2 }
                            && clients.peer(plain[0]).received.count == 1
                    })
                for connection in a {
                    let event = clients.peer(connection).received[0]
                    #expect(
                        event.dataString == "one" && event.type == "note"
                            && event.lastEventID == toA.header("X-Event-Id"))
                }
                for connection in ab {
                    #expect(clients.peer(connection).received.map(\.dataString) == ["one", "two\nlines"])
                    #expect(clients.peer(connection).received.last?.lastEventID == "custom-7")
                }
                #expect(clients.peer(plain[0]).received.map(\.dataString) == ["three"])
                let head = clients.peer(a[0]).responses[0]
                #expect(head.status == 200)
                #expect(head.header("Cache-Control") == "no-cache")
                #expect(head.header("X-Accel-Buffering") == "no")
                harness.shutDown()
            }
        }

        /// 1,200 concurrent subscribers each get each of 10 events exactly once, in order.
        @Test func thousandsOfSubscribersEachGetEveryEventOnce() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let streams = try harness.subscribe(1_200)
                for index in 1...10 {
                    #expect(try harness.publish("t=\(index)").header("X-Subscribers") == "1200")
                }
                let clients = harness.clients
                #expect(drive(harness.loop) { streams.allSatisfy { clients.peer($0).received.count >= 10 } })
                drive(harness.loop, for: .milliseconds(50)) { false }
                for connection in streams {
                    #expect(clients.peer(connection).received.map(\.dataString) == (1...10).map { "t=\($0)" })
                }
                #expect(harness.server.hub.statistics.eventWrites == 12_000)
                harness.shutDown()
                #expect(streams.allSatisfy { clients.peer($0).closed })
            }
        }

        /// Reconnecting with Last-Event-ID (header or query) replays what came after it; an unknown id
        /// is told so (`event: reset` first, with the newest id), then gets the live stream; counted.
        @Test func lastEventIDReplay() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                for index in 1...5 { try harness.publish("e\(index)", query: "topic=news") }
                let byHeader = try harness.subscribe(1, path: "/sse?topic=news", headers: "Last-Event-ID: 2\r\n")
                let byQuery = try harness.subscribe(1, path: "/sse?topic=news&lastEventId=4")
                let unknown = try harness.subscribe(1, path: "/sse?topic=news", headers: "Last-Event-ID: nope\r\n")
                try harness.publish("e6", query: "topic=news")
                let clients = harness.clients
                #expect(
                    drive(harness.loop) {
                        clients.peer(byHeader[0]).received.count == 4 && clients.peer(byQuery[0]).received.count == 2
                            && clients.peer(unknown[0]).received.count == 2
                    })
                #expect(clients.peer(byHeader[0]).received.map(\.dataString) == ["e3", "e4", "e5", "e6"])
                #expect(clients.peer(byQuery[0]).received.map(\.dataString) == ["e5", "e6"])
                #expect(
                    clients.peer(unknown[0]).received.map(\.dataString) == [#"{"reason":"unknown","position":"5"}"#, "e6"])
                #expect(clients.peer(unknown[0]).received.first?.lastEventID == "5")
                #expect(harness.server.hub.statistics.replays == 2)
                #expect(Self.resets(harness.server, "unknown") == 1)
                harness.shutDown()
            }
        }

        /// `rill_replay_resets_total{reason=…}` now.
        static func resets(_ server: SSEServer, _ reason: String) -> Int? {
            server.metricsSamples().first { $0.name == "rill_replay_resets_total" && $0.labels == "reason=\"\(reason)\"" }?.value
        }

        /// With an epoch base, ids continue from it; a Last-Event-ID at or below it (an earlier start's)
        /// gets `event: reset` with reason epoch and the `Rill-Reset` header; one of now replays.
        @Test func memoryEngineEpochs() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.epochBase = 5_000 }
                for index in 1...3 { try harness.publish("e\(index)", query: "topic=news") }
                let earlier = try harness.exchange("GET /sse?topic=news HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 2\r\n\r\n") {
                    $0.received.count == 1
                }
                #expect(earlier.header("Rill-Reset") == "epoch")
                #expect(drive(harness.loop) { harness.server.hub.statistics.subscribers == 0 })
                let now = try harness.subscribe(1, path: "/sse?topic=news", headers: "Last-Event-ID: 5001\r\n")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(now[0]).received.count == 2 })
                #expect(clients.peer(now[0]).received.map(\.lastEventID) == ["5002", "5003"])
                #expect(Self.resets(harness.server, "epoch") == 1)
                #expect(Self.resets(harness.server, "unknown") == 0)
                harness.shutDown()
            }
        }

        /// Heartbeat comments reach idle streams at about the set interval, spread rather than bursted.
        @Test func heartbeatsAtTheInterval() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness {
                    $0.hub.heartbeat = .milliseconds(300)
                    $0.hub.heartbeatSlices = 10
                }
                let streams = try harness.subscribe(40)
                let start = MonotonicClock.nanoseconds() / 1_000_000
                drive(harness.loop, for: .milliseconds(1_250)) { false }
                let clients = harness.clients
                var firstBeats: Set<UInt64> = []
                for connection in streams {
                    let beats = clients.peer(connection).comments
                    #expect((3...5).contains(beats.count), "\(beats.count) heartbeats in 1.25 s at 300 ms")
                    if let first = beats.first { firstBeats.insert((first - start) / 30) }
                }
                #expect(firstBeats.count >= 5, "first heartbeats fell in \(firstBeats.count) 30 ms windows: a burst")
                harness.shutDown()
            }
        }

        /// A subscriber that stops reading is dropped once its queue passes the limit; the others get
        /// every event.
        @Test func slowSubscriberIsDropped() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.hub.maximumQueuedBytes = 256 * 1024 }
                let readers = try harness.subscribe(3)
                let stalled = try BlockingClient(connectingTo: harness.address, receiveBuffer: 4096)
                stalled.send(Array("GET /sse HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
                #expect(drive(harness.loop) { harness.server.hub.statistics.subscribers == 4 })
                let payload = String(repeating: "x", count: 16 * 1024)
                var published = 0
                while harness.server.hub.statistics.slowSubscribersDropped == 0 && published < 400 {
                    try harness.publish(payload)
                    published += 1
                }
                #expect(harness.server.hub.statistics.slowSubscribersDropped == 1)
                #expect(harness.server.hub.statistics.subscribers == 3)
                let clients = harness.clients
                #expect(drive(harness.loop) { readers.allSatisfy { clients.peer($0).received.count == published } })
                harness.shutDown()
            }
        }

        /// Past `maximumConnections` a client gets 503 with Retry-After and a close; once a held
        /// connection goes, a new client is served.
        @Test func serviceUnavailablePastTheLimit() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.maximumConnections = 2 }
                let held = try harness.subscribe(2)
                let refused = try harness.exchange("GET /sse HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(refused.status == 503)
                #expect(refused.header("Retry-After") == "1")
                #expect(harness.server.statistics.connectionsRejected == 1)
                held[0].close()
                #expect(drive(harness.loop) { harness.server.heldConnections == 1 })
                let page = try harness.exchange("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(page.status == 200)
                harness.shutDown()
            }
        }

        /// Each malformed request gets its status and a close; the server goes on serving.
        @Test(arguments: [
            ("GET / HTTP/1.1\nHost: t\n\n", 400),
            ("GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            ("GET / HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "b", count: 17000))\r\n\r\n", 431),
            ("POST /publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413)
        ])
        func malformedRequests(request: String, status: Int) throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let connection = try harness.open(request)
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(connection).closed })
                #expect(clients.peer(connection).responses.first?.status == status)
                #expect(clients.peer(connection).responses.first?.header("Connection") == "close")
                #expect(harness.server.statistics.parseErrors[status] == 1)
                #expect(try harness.exchange("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").status == 200)
                harness.shutDown()
            }
        }

        /// Routes: 404, 405 with Allow, HEAD without a body, keep-alive pipelining in one write, a
        /// request sent one byte per write, Prometheus text at /metrics.
        @Test func routesAndKeepAlive() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                #expect(try harness.exchange("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").status == 404)
                let wrongMethod = try harness.exchange("DELETE /publish HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(wrongMethod.status == 405)
                #expect(wrongMethod.header("Allow") == "POST")
                #expect(
                    try harness.exchange("POST /sse HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").header("Allow")
                        == "GET")
                let head = try harness.exchange("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(head.status == 200 && head.body.isEmpty && Int(head.header("Content-Length") ?? "") ?? 0 > 1000)

                let pipelined = try harness.open(
                    String(repeating: "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", count: 3)
                        + "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(pipelined).closed })
                #expect(clients.peer(pipelined).responses.map(\.status) == [404, 404, 404, 200])
                #expect(clients.peer(pipelined).responses.last?.text.contains("EventSource") == true)

                let trickle = try harness.open("")
                for byte in "POST /publish?topic=slow HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".utf8 {
                    trickle.write([byte])
                    drive(harness.loop, for: .milliseconds(2)) { false }
                }
                #expect(drive(harness.loop) { clients.peer(trickle).responses.count == 1 })
                #expect(clients.peer(trickle).responses.first?.status == 204)
                #expect(harness.server.partialRequestCount == 0)
                trickle.close()

                let metrics = try harness.exchange("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
                #expect(metrics.text.contains("# TYPE rill_connections gauge"))
                #expect(metrics.text.contains("rill_events_total 1\n"))
                #expect(metrics.text.contains("rill_requests_refused_total{status=\"404\"} 4\n"))
                harness.shutDown()
            }
        }

        /// A client that pipelines thousands of requests and reads nothing: the server stops reading
        /// it once responses pile up (its memory stays bounded) and serves others meanwhile; when the
        /// client reads again, every response arrives, in order.
        @Test func pipelinedFloodIsPushedBack() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let count = 3_000
                let flood = try harness.open(String(repeating: "GET / HTTP/1.1\r\nHost: t\r\n\r\n", count: count))
                flood.pauseReading()
                drive(harness.loop, for: .milliseconds(300)) { false }
                var queued = 0
                harness.loop.forEachConnection { queued += $0.queuedBytes }
                #expect(queued < 1 << 20, "\(queued) bytes queued for a client that does not read")
                #expect(harness.server.statistics.requests < count)
                #expect(try harness.exchange("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").status == 200)
                flood.resumeReading()
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(flood).responses.count == count })
                #expect(
                    clients.peer(flood).responses.allSatisfy {
                        $0.status == 200 && $0.body.count > 1000 && $0.header("Content-Length") == String($0.body.count)
                    })
                harness.shutDown()
            }
        }

        /// With a publish token, publishing needs `Authorization: Bearer`; 100-continue is honoured.
        @Test func publishTokenAndExpectContinue() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.publishToken = "s3cret" }
                let missing = try harness.publish("x")
                #expect(missing.status == 401)
                #expect(missing.header("WWW-Authenticate") == "Bearer")
                #expect(try harness.publish("x", headers: "Authorization: Bearer wrong!\r\n").status == 401)
                #expect(try harness.publish("x", headers: "Authorization: Bearer s3cret\r\n").status == 204)

                let expecting = try harness.open(
                    "POST /publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret\r\n"
                        + "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(expecting).interim == [100] })
                expecting.write(Array("body".utf8))
                #expect(drive(harness.loop) { clients.peer(expecting).responses.count == 1 })
                #expect(clients.peer(expecting).responses.first?.status == 204)
                harness.shutDown()
            }
        }

        /// A request head that never completes is answered 408 and closed; an unused keep-alive
        /// connection is closed after the idle timeout; neither keeps a sweep timer running after.
        @Test func headerAndIdleTimeouts() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness {
                    $0.headerTimeout = .milliseconds(200)
                    $0.idleTimeout = .milliseconds(300)
                }
                let slow = try harness.open("GET / HTTP/1.1\r\nHost:")
                let idle = try harness.open("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
                let silent = try harness.open("")
                let stream = try harness.subscribe(1)
                let clients = harness.clients
                #expect(
                    drive(harness.loop, for: .seconds(3)) {
                        clients.peer(slow).closed && clients.peer(idle).closed && clients.peer(silent).closed
                    })
                #expect(clients.peer(slow).responses.first?.status == 408)
                #expect(clients.peer(idle).responses.map(\.status) == [404])
                #expect(harness.server.statistics.headerTimeouts == 2)
                #expect(harness.server.statistics.idleTimeouts == 1)
                #expect(!clients.peer(stream[0]).closed, "an event stream has no deadline")
                drive(harness.loop, for: .milliseconds(300)) { false }
                #expect(
                    harness.loop.scheduledTimers == harness.server.hub.timerCount,
                    "the sweep stops when nothing is timed")
                harness.shutDown()
            }
        }

        /// CORS: the origin on responses and streams, and preflight answers.
        @Test func corsHeaders() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.corsOrigin = "https://example.test" }
                let preflight = try harness.exchange(
                    "OPTIONS /publish HTTP/1.1\r\nHost: t\r\nOrigin: https://example.test\r\n\r\n")
                #expect(preflight.status == 204)
                #expect(preflight.header("Access-Control-Allow-Methods") == "POST, OPTIONS")
                #expect(preflight.header("Access-Control-Allow-Origin") == "https://example.test")
                let stream = try harness.subscribe(1)
                #expect(
                    harness.clients.peer(stream[0]).responses.first?.header("Access-Control-Allow-Origin")
                        == "https://example.test")
                harness.shutDown()
            }
        }

        /// Static files: served with a type; `..` in any spelling, hidden names and directories are not.
        @Test func staticFilesWithoutTraversal() throws {
            var template = Array("/tmp/rill-static-XXXXXX".utf8CString)
            let directory = String(
                cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
            defer { _ = try? shell("rm -rf '\(directory)'") }
            _ = try shell(
                "mkdir -p '\(directory)/sub' && printf 'body{}' > '\(directory)/sub/site.css' && printf 'x' > '\(directory)/.hidden' && printf 'secret' > '\(directory)/../rill-outside.txt'"
            )
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.staticDirectory = directory }
                let css = try harness.exchange("GET /static/sub/site.css HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(css.status == 200 && css.text == "body{}")
                #expect(css.header("Content-Type") == "text/css; charset=utf-8")
                for path in [
                    "../rill-outside.txt", "%2e%2e/rill-outside.txt", "sub/../../rill-outside.txt",
                    "sub/%2E%2E/%2e%2e/rill-outside.txt",
                    "..%2frill-outside.txt", ".hidden", "sub", "sub/", "nothing.txt", "sub//site.css"
                ] {
                    let response = try harness.exchange("GET /static/\(path) HTTP/1.1\r\nHost: t\r\n\r\n")
                    #expect(response.status == 404 || response.status == 400, "\(path) → \(response.status)")
                    #expect(!response.text.contains("secret"))
                }
                #expect(try harness.exchange("GET /static/%zz HTTP/1.1\r\nHost: t\r\n\r\n").status == 400)
                harness.shutDown()
            }
            _ = try shell("rm -f '\(directory)/../rill-outside.txt'")
        }

        /// A static file's kept response follows the file: an edit (even of the same size), a
        /// symlink put in its place and its removal are seen on the next request.
        @Test func staticFileChangesAreServed() throws {
            var template = Array("/tmp/rill-static-XXXXXX".utf8CString)
            let directory = String(
                cString: try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
            defer { _ = try? shell("rm -rf '\(directory)'") }
            _ = try shell("printf 'first' > '\(directory)/a.txt' && printf 'secret' > '\(directory)/b.txt'")
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.staticDirectory = directory }
                let request = "GET /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                #expect(try harness.exchange(request).text == "first")
                #expect(try harness.exchange(request).text == "first")  // from the kept response
                let head = try harness.exchange("HEAD /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(head.status == 200 && head.text.isEmpty && head.header("Content-Length") == "5")
                _ = try shell("printf 'other' > '\(directory)/a.new' && mv '\(directory)/a.new' '\(directory)/a.txt'")
                #expect(try harness.exchange(request).text == "other")
                _ = try shell("printf 'longer body' > '\(directory)/a.txt'")
                #expect(try harness.exchange(request).text == "longer body")
                _ = try shell("rm '\(directory)/a.txt' && ln -s b.txt '\(directory)/a.txt'")
                let symlink = try harness.exchange(request)
                #expect(symlink.status == 404 && !symlink.text.contains("secret"))
                _ = try shell("rm '\(directory)/a.txt'")
                #expect(try harness.exchange(request).status == 404)
                harness.shutDown()
            }
        }

        /// Shutting down ends every stream with a FIN (clients see the close) and refuses no request
        /// midway: the loop ends with nothing open.
        @Test func shutdownClosesStreams() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let streams = try harness.subscribe(20)
                let idle = try harness.open("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(idle).responses.count == 1 })
                harness.server.beginShutdown()
                #expect(drive(harness.loop, for: .seconds(2)) { harness.loop.openConnections == 0 })
                #expect(streams.allSatisfy { clients.peer($0).closeReason == .local })
                harness.loop.closeAll()
            }
        }
    }
}
