import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill serve --workers 2` as a child process, with loop-side clients here.
    @Suite struct WorkersTests {
        /// Clients of a multi-worker server: streams, and one-shot requests on fresh connections (so
        /// they land on any worker).
        final class Clients {
            let loop: EventLoop
            let clients = HTTPClients()
            let address: SocketAddress

            init(port: UInt16) throws {
                loop = try EventLoop()
                address = SocketAddress("127.0.0.1", port: port)!
            }

            func stream(lastEventID: String? = nil) throws -> Connection {
                let connection = try loop.connect(to: address, handler: clients)
                let header = lastEventID.map { "Last-Event-ID: \($0)\r\n" } ?? ""
                connection.write(Array("GET /sse HTTP/1.1\r\nHost: t\r\n\(header)\r\n".utf8))
                return connection
            }

            func publish(_ data: String) throws -> Response {
                let connection = try loop.connect(to: address, handler: clients)
                connection.write(
                    Array("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: \(data.utf8.count)\r\n\r\n\(data)".utf8)
                )
                drive(loop) { clients.peer(connection).responses.count == 1 || clients.peer(connection).closed }
                connection.close()
                return try #require(clients.peer(connection).responses.first)
            }

            func worker(_ connection: Connection) -> String {
                clients.peer(connection).responses.first?.header("X-Rill-Worker") ?? "?"
            }
            func events(_ connection: Connection) -> [ReceivedEvent] { clients.peer(connection).received }
        }

        /// The worker processes of `pid` (its children, from /proc).
        static func children(of pid: pid_t) -> [pid_t] {
            guard let directory = opendir("/proc") else { return [] }
            defer { closedir(directory) }
            var children: [pid_t] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard let child = pid_t(name) else { continue }
                let fd = open("/proc/\(name)/stat", O_RDONLY)
                guard fd >= 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 512)
                let count = read(fd, &buffer, buffer.count)
                close(fd)
                guard count > 0 else { continue }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                guard let end = text.lastIndex(of: ")") else { continue }
                let fields = text[text.index(after: end)...].split(separator: " ")
                if fields.count > 1, pid_t(fields[1]) == pid { children.append(child) }
            }
            return children
        }

        /// Subscribers spread over both workers; a publication taken by either reaches every subscriber
        /// exactly once, in one order, with one id. A killed worker is restarted with the history: its
        /// clients reconnect with Last-Event-ID and miss nothing, whichever worker they reach. SIGTERM
        /// ends the supervisor and every worker.
        @Test func oneEventStreamAcrossWorkers() throws {
            let serve = try ServeProcess("--workers 2 --tick 0 --heartbeat 0.5 --epoch-base 0")
            #expect(serve.banner.contains("2 workers"), "\(serve.banner)")
            let workers = Self.children(of: serve.child.pid)
            #expect(workers.count == 2)
            let clients = try Clients(port: serve.port)
            let loop = clients.loop

            var streams = try (0..<40).map { _ in try clients.stream() }
            #expect(drive(loop) { streams.allSatisfy { clients.clients.peer($0).streaming } })
            let spread = Dictionary(grouping: streams, by: clients.worker).mapValues(\.count)
            #expect(spread.keys.sorted() == ["0", "1"] && spread.values.allSatisfy { $0 >= 5 }, "\(spread)")

            for index in 1...10 {
                let response = try clients.publish("e\(index)")
                #expect(response.status == 204 && response.header("X-Event-Id") == "\(index)", "\(response)")
            }
            #expect(drive(loop) { streams.allSatisfy { clients.events($0).count >= 10 } })
            let expected = (1...10).map { ("\($0)", "e\($0)") }
            for stream in streams {
                let got = clients.events(stream).map { ($0.lastEventID, String(decoding: $0.data, as: UTF8.self)) }
                #expect(got.elementsEqual(expected, by: ==), "\(got)")
            }

            // Kill one worker: its streams end; it comes back.
            let victim = workers[0]
            kill(victim, SIGKILL)
            #expect(drive(loop) { streams.contains { clients.clients.peer($0).closed } })
            drive(loop, for: .milliseconds(500)) { false }  // the rest of its streams' closes
            let cut = streams.filter { clients.clients.peer($0).closed }
            let survivors = streams.filter { !clients.clients.peer($0).closed }
            let killedIndex = clients.worker(cut[0])
            #expect(cut.allSatisfy { clients.worker($0) == killedIndex } && !cut.isEmpty)
            eventually(timeout: .seconds(10)) { Self.children(of: serve.child.pid).count >= 2 }
            #expect(Self.children(of: serve.child.pid).filter { $0 != victim }.count == 2, "restarted")

            // Events while those clients are away, then they come back with their Last-Event-ID.
            for index in 11...13 {
                let response = try clients.publish("e\(index)")
                #expect(response.status == 204 && response.header("X-Event-Id") == "\(index)", "\(response)")
            }
            let returning = try cut.map { try clients.stream(lastEventID: clients.events($0).last!.lastEventID) }
            // Fresh clients with an old Last-Event-ID, enough that some reach the restarted worker.
            let fresh = try (0..<20).map { _ in try clients.stream(lastEventID: "10") }
            streams = returning + fresh
            #expect(
                drive(loop) {
                    streams.allSatisfy { clients.events($0).count >= 3 }
                        && survivors.allSatisfy { clients.events($0).count >= 13 }
                })
            let tail = (11...13).map { ("\($0)", "e\($0)") }
            for stream in streams {
                let got = clients.events(stream).map { ($0.lastEventID, String(decoding: $0.data, as: UTF8.self)) }
                #expect(got.elementsEqual(tail, by: ==), "\(clients.worker(stream)): \(got)")
            }
            for stream in survivors {
                let got = clients.events(stream).map(\.lastEventID)
                #expect(got == (1...13).map { "\($0)" })
            }
            #expect(
                fresh.contains { clients.worker($0) == killedIndex }, "some fresh client reached the restarted worker")

            // SIGTERM: every stream ends, every process exits.
            serve.child.signal(SIGTERM)
            #expect(drive(loop) { (survivors + streams).allSatisfy { clients.clients.peer($0).closed } })
            #expect(serve.child.waitForExit() == 0)
            #expect(Self.children(of: serve.child.pid).isEmpty)
            loop.closeAll()
        }
    }
}

/// The relay's wire format: every kind of message survives encoding, and a stream of them splits
/// anywhere; a corrupt stream is refused.
@Test func relayMessagesRoundTripInAnySplit() {
    let messages: [RelayMessage] = [
        .publish(token: 1 << 40 | 7, topic: "news", event: .init(data: Array("a\nb".utf8), id: nil, name: "update")),
        .event(token: 0, topic: "é", event: .init(data: [], id: "42", name: nil)),
        .statistics([0, -1, Int.max]),
        .totals([3, 4], workers: 6),
        .start
    ]
    let wire = messages.flatMap(\.encoded)
    for chunk in [1, 3, 7, wire.count] {
        var reader = RelayReader()
        var decoded: [RelayMessage] = []
        var offset = 0
        while offset < wire.count {
            let end = min(offset + chunk, wire.count)
            decoded += wire[offset..<end].withUnsafeBytes { reader.receive($0) } ?? []
            offset = end
        }
        #expect(decoded == messages, "chunk \(chunk)")
    }
    var corrupt = RelayReader()
    #expect([UInt8](arrayLiteral: 2, 0, 0, 0, 99, 0).withUnsafeBytes { corrupt.receive($0) } == nil)
}
