import HTTP1
import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// Clients that try to make the server work, or hold memory, for nothing.
    @Suite struct HostileClientTests {
        /// A client that pipelines thousands of requests and never reads: no loop turn answers more
        /// than two shares of them (the read's and the next turn's), the server soon stops answering
        /// it and the responses queued for it stay bounded, another client is answered within a few
        /// turns, and once the flooder reads it gets every answer, in order.
        @Test func pipelineFloodIsAnsweredAShareATurn() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let share = harness.server.configuration.maximumRequestsPerTurn
                let count = 4_000
                // Every seventh request is a 404, so the order of the answers shows.
                var text = ""
                for index in 0..<count {
                    text +=
                        index % 7 == 6 ? "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" : "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                }
                let flood = try harness.open(text)
                flood.pauseReading()
                let clients = harness.clients
                let other = try harness.open("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")

                var most = 0
                var turnsUntilOther: Int? = nil
                var quietTurns = 0
                var before = 0
                for turn in 0..<5_000 where quietTurns < 50 {
                    harness.loop.runOnce(maximumWait: .milliseconds(5))
                    let answered = harness.server.statistics.requests - before
                    before += answered
                    most = max(most, answered)
                    quietTurns = answered == 0 ? quietTurns + 1 : 0
                    if turnsUntilOther == nil && !clients.peer(other).responses.isEmpty { turnsUntilOther = turn }
                }
                #expect(most <= 2 * share + 1, "\(most) requests answered in one loop turn")
                #expect(
                    turnsUntilOther.map { $0 < 20 } == true, "the other client waited \(turnsUntilOther ?? -1) turns")
                #expect(clients.peer(other).responses.first?.status == 200)

                var queued = 0
                harness.loop.forEachConnection { queued += $0.queuedBytes }
                #expect(queued < 1 << 20, "\(queued) bytes queued for a client that does not read")
                #expect(harness.server.statistics.turnsYielded > 0)
                // Not the megabytes an autotuned send buffer takes (1,864 answers here before):
                // the kernel's share is capped once the client pipelines past its turn.
                #expect(harness.server.statistics.requests < 1_000, "it stops soon when the client does not read")

                flood.resumeReading()
                #expect(drive(harness.loop) { clients.peer(flood).responses.count == count })
                let statuses = clients.peer(flood).responses.map(\.status)
                #expect(statuses == (0..<count).map { $0 % 7 == 6 ? 404 : 200 })
                #expect(harness.server.partialRequestCount == 0)
                harness.shutDown()
            }
        }

        /// Many pipelining clients at once: one loop turn answers about the loop-wide budget of
        /// response bytes (plus at most one request per connection read in it and one share), not
        /// every client's share; every client still gets all its answers, in order.
        @Test func manyPipelinersShareALoopTurnBudget() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.maximumResponseBytesPerLoopTurn = 128 << 10 }
                let page = try harness.exchange("GET / HTTP/1.1\r\nHost: t\r\n\r\n").body.count + 100
                let flooders = 20
                let count = 600
                var text = ""
                for index in 0..<count {
                    text +=
                        index % 5 == 4 ? "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" : "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                }
                let connections = try (0..<flooders).map { _ in try harness.open(text) }
                let clients = harness.clients
                var most = 0
                var before = harness.server.statistics.requests
                var turns = 0
                while turns < 20_000 && !connections.allSatisfy({ clients.peer($0).responses.count == count }) {
                    harness.loop.runOnce(maximumWait: .milliseconds(5))
                    let answered = harness.server.statistics.requests - before
                    before += answered
                    most = max(most, answered)
                    turns += 1
                }
                let bound = (128 << 10) / page + flooders + harness.server.configuration.maximumRequestsPerTurn + 1
                #expect(most <= bound, "\(most) requests answered in one loop turn (bound \(bound))")
                for connection in connections {
                    #expect(
                        clients.peer(connection).responses.map(\.status) == (0..<count).map { $0 % 5 == 4 ? 404 : 200 })
                }
                harness.shutDown()
            }
        }

        /// A pipeline's answers to one read leave corked (TCP_CORK) and together: 300 pipelined
        /// answers of ~2.8 KB take a few dozen TCP segments, not one each (on loopback each segment
        /// costs the server's thread the receiver's work too), and no connection is left corked
        /// after a loop turn, where its answers would wait for the kernel's 200 ms cork timer.
        @Test func pipelinedAnswersLeaveTogetherAndUncorked() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let count = 300
                let client = try harness.open(String(repeating: "GET / HTTP/1.1\r\nHost: t\r\n\r\n", count: count))
                let clients = harness.clients
                var corkedAfterATurn = 0
                var turns = 0
                while clients.peer(client).responses.count < count && turns < 5_000 {
                    harness.loop.runOnce(maximumWait: .milliseconds(5))
                    harness.loop.forEachConnection { if tcpOption($0.fd, TCP_CORK) != 0 { corkedAfterATurn += 1 } }
                    turns += 1
                }
                #expect(clients.peer(client).responses.count == count)
                #expect(corkedAfterATurn == 0)
                var segments: [UInt32] = []
                harness.loop.forEachConnection(handledBy: harness.server.http) { segments.append(segmentsOut($0.fd)) }
                #expect(segments.count == 1)
                #expect(segments.allSatisfy { $0 < UInt32(count / 2) }, "\(segments) segments for \(count) answers")
                harness.shutDown()
            }
        }

        /// A client that pipelines past its share and then shuts down its side (as `nc -N` does)
        /// still gets every answer: the end of its input is read only after its requests are served.
        @Test func pipelineThenHalfCloseGetsEveryAnswer() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let count = 300
                let client = try harness.open(String(repeating: "GET / HTTP/1.1\r\nHost: t\r\n\r\n", count: count))
                client.shutdownWrite()
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(client).closed })
                #expect(clients.peer(client).responses.count == count)
                #expect(harness.server.statistics.turnsYielded > 0)
                harness.shutDown()
            }
        }

        /// Protocol edges: HTTP/1.x above 1.1 is served as 1.1 (RFC 9110 2.5), HTTP/2.0 and 0.9 get
        /// 505; an absolute-form target is routed on its path and keeps its query (RFC 9112 3.2.2);
        /// a refused publication uses no automatic id.
        @Test func protocolEdges() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let higherMinor = try harness.exchange("GET / HTTP/1.2\r\nHost: t\r\n\r\n")
                #expect(higherMinor.status == 200 && higherMinor.text.contains("EventSource"))
                #expect(try harness.exchange("GET / HTTP/2.0\r\nHost: t\r\n\r\n").status == 505)
                #expect(try harness.exchange("GET / HTTP/0.9\r\nHost: t\r\n\r\n").status == 505)

                let metrics = try harness.exchange("GET http://t/metrics HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(metrics.status == 200 && metrics.text.contains("# TYPE rill_connections gauge"))
                #expect(try harness.exchange("HEAD HTTP://t:80 HTTP/1.1\r\nHost: t\r\n\r\n").status == 200)
                #expect(try harness.exchange("GET http://t/nope HTTP/1.1\r\nHost: t\r\n\r\n").status == 404)
                let stream = try harness.subscribe(1, path: "http://t/sse?topic=abs")
                let absolute = try harness.exchange(
                    "POST https://t/publish?topic=abs&event=note HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabs")
                #expect(absolute.status == 204 && absolute.header("X-Subscribers") == "1")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(stream[0]).received.count == 1 })
                #expect(clients.peer(stream[0]).received.first?.type == "note")

                #expect(try harness.publish("refused", query: "event=a%0Ab").status == 400)
                #expect(try harness.publish("refused", query: "id=a%00b").status == 400)
                #expect(try harness.publish("two").header("X-Event-Id") == "2", "ids go 1, 2: the refusals used none")
                harness.shutDown()
            }
        }

        /// Unfinished requests share one memory budget: a publication whose Content-Length would
        /// pass it gets 503 with Retry-After before it sends its body, a chunked body that grows
        /// past it gets 503 mid-body, both close; requests that fit go on, and a finished request
        /// gives its share back.
        @Test func unfinishedBodiesShareABudget() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness { $0.maximumPartialRequestBytes = 300_000 }
                let server = harness.server
                let clients = harness.clients
                func head(_ length: Int) -> String {
                    "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: \(length)\r\n\r\n"
                }
                let first = try harness.open(head(200_000) + String(repeating: "a", count: 199_999))
                #expect(
                    drive(harness.loop) {
                        server.partialRequestBytes >= 200_000
                            && harness.loop.statistics.bytesRead >= 199_999 + head(200_000).utf8.count
                    })
                #expect(server.partialRequestBytes < 210_000, "\(server.partialRequestBytes) held for 200,000 bytes")

                let second = try harness.open(head(200_000) + "b")
                #expect(drive(harness.loop) { clients.peer(second).closed })
                #expect(clients.peer(second).responses.first?.status == 503)
                #expect(clients.peer(second).responses.first?.header("Retry-After") == "1")
                #expect(clients.peer(second).responses.first?.header("Connection") == "close")
                #expect(server.statistics.partialRequestsRefused == 1)

                let chunked = try harness.open(
                    "POST /publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "249F0\r\n" + String(repeating: "c", count: 150_000))
                #expect(drive(harness.loop) { clients.peer(chunked).closed })
                #expect(clients.peer(chunked).responses.first?.status == 503)
                #expect(server.statistics.partialRequestsRefused == 2)

                #expect(try harness.publish("small").status == 204, "a request that fits is served")
                first.write([UInt8(ascii: "a")])
                #expect(drive(harness.loop) { clients.peer(first).responses.count == 1 })
                #expect(clients.peer(first).responses.first?.status == 204)
                #expect(server.partialRequestBytes == 0 && server.partialRequestCount == 0)
                harness.shutDown()
            }
        }

        /// Subscribers cannot use up the topics a publisher needs: with a publish token, an
        /// anonymous client that names as many new topics as the limit allows (and leaves) does not
        /// stop the token holder publishing to a new topic; publications have their own limit.
        @Test func subscribersCannotExhaustPublishingTopics() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness {
                    $0.publishToken = "s3cret"
                    $0.maximumTopics = 5
                }
                // Held open: a topic that only departed subscribers named is reclaimed by the hub.
                var anonymous: [Connection] = []
                for index in 0..<5 { anonymous += try harness.subscribe(1, path: "/sse?topic=anon\(index)") }
                #expect(try harness.exchange("GET /sse?topic=anon5 HTTP/1.1\r\nHost: t\r\n\r\n").status == 503)
                let token = "Authorization: Bearer s3cret\r\n"
                for index in 0..<5 {
                    #expect(try harness.publish("x", query: "topic=news\(index)", headers: token).status == 204)
                }
                #expect(
                    try harness.publish("x", query: "topic=news0", headers: token).status == 204,
                    "a topic published to before")
                #expect(
                    try harness.publish("x", query: "topic=anon0", headers: token).status == 503,
                    "past the publications' own limit, even on a topic a subscriber created")
                #expect(try harness.publish("x", query: "topic=news5", headers: token).status == 503)
                let stream = try harness.subscribe(1, path: "/sse?topic=news4")
                #expect(
                    harness.clients.peer(stream[0]).responses.first?.status == 200, "published topics can be subscribed"
                )
                for connection in anonymous { connection.close() }
                #expect(drive(harness.loop) { harness.server.hub.statistics.subscribers == 1 })
                #expect(
                    harness.server.hub.topicCount == 5,
                    "their topics were reclaimed when they left; news0–4 keep history")
                harness.shutDown()
            }
        }
    }
}

/// An integer TCP socket option's value (-1 if it cannot be read).
func tcpOption(_ fd: Int32, _ name: Int32) -> Int32 {
    var value: Int32 = -1
    var length = socklen_t(MemoryLayout<Int32>.size)
    return getsockopt(fd, Int32(IPPROTO_TCP), name, &value, &length) == 0 ? value : -1
}

/// TCP segments a socket has sent (the kernel's `tcp_info.tcpi_segs_out`, at byte 136 since Linux
/// 4.2; read raw because Glibc's struct may predate it).
func segmentsOut(_ fd: Int32) -> UInt32 {
    var info = [UInt8](repeating: 0, count: 256)
    var length = socklen_t(info.count)
    guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, length >= 140 else { return .max }
    return info.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 136, as: UInt32.self) }
}
