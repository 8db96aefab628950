import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill serve --threads 2` as a child process: one process, two loops sharing the port.
    @Suite struct ThreadsTests {
        /// Streams land on both threads; publications taken by either thread reach every stream once,
        /// in one order, with the ids their 204s gave; a Last-Event-ID resumes on either thread; SIGTERM
        /// ends every stream and the process exits 0.
        @Test func oneEventStreamAcrossThreads() throws {
            let serve = try ServeProcess("--threads 2 --tick 0 --heartbeat 0.5 --epoch-base 0")
            #expect(serve.banner.contains("2 threads"), "\(serve.banner)")
            let clients = try WorkersTests.Clients(port: serve.port)
            let loop = clients.loop
            func thread(_ connection: Connection) -> String {
                clients.clients.peer(connection).responses.first?.header("X-Rill-Thread") ?? "?"
            }

            let streams = try (0..<40).map { _ in try clients.stream() }
            #expect(drive(loop) { streams.allSatisfy { clients.clients.peer($0).streaming } })
            let spread = Dictionary(grouping: streams, by: thread).mapValues(\.count)
            #expect(spread.keys.sorted() == ["0", "1"] && spread.values.allSatisfy { $0 >= 5 }, "\(spread)")

            for index in 1...10 {
                let response = try clients.publish("e\(index)")
                #expect(response.status == 204 && response.header("X-Event-Id") == "\(index)", "\(response)")
            }
            #expect(drive(loop) { streams.allSatisfy { clients.events($0).count >= 10 } })
            let expected = (1...10).map { ("\($0)", "e\($0)") }
            for stream in streams {
                let got = clients.events(stream).map { ($0.lastEventID, String(decoding: $0.data, as: UTF8.self)) }
                #expect(got.elementsEqual(expected, by: ==), "\(thread(stream)): \(got)")
            }

            let resumed = try (0..<20).map { _ in try clients.stream(lastEventID: "7") }
            #expect(drive(loop) { resumed.allSatisfy { clients.events($0).count >= 3 } })
            #expect(Set(resumed.map(thread)) == ["0", "1"], "replays on both threads")
            for stream in resumed {
                #expect(clients.events(stream).map(\.lastEventID) == ["8", "9", "10"])
            }

            serve.child.signal(SIGTERM)
            #expect(drive(loop) { (streams + resumed).allSatisfy { clients.clients.peer($0).closed } })
            #expect(serve.child.waitForExit() == 0)
            loop.closeAll()
        }
    }
}
