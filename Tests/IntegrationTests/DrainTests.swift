import Reactor
import RillServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// Graceful drain: streams end spread over the window, each told first when to come back.
    @Suite struct DrainTests {
        /// 200 streams drained over 1 s (manual clock, 10 ms steps): the server's subscriber count
        /// falls in at least 5 distinct 100 ms buckets, every stream got a `retry:` before its end,
        /// and all are gone once the window has passed.
        @Test func streamsEndSpreadOverTheWindow() throws {
            try expectNoFDLeak {
                let clock = ManualClock()
                let harness = try ServerHarness(clock: .manual(clock))
                let streams = try harness.subscribe(200)
                harness.server.beginDrain(window: .seconds(1))
                #expect(harness.server.isDraining)
                var endedPerBucket = [Int](repeating: 0, count: 12)
                var left = harness.server.hub.statistics.subscribers
                for step in 1...110 {
                    harness.loop.advanceTime(by: .milliseconds(10))
                    let now = harness.server.hub.statistics.subscribers
                    endedPerBucket[min(11, (step - 1) / 10)] += left - now
                    left = now
                }
                #expect(left == 0, "streams left after the window: \(left)")
                #expect(endedPerBucket.reduce(0, +) == 200)
                #expect(endedPerBucket.filter { $0 > 0 }.count >= 5, "\(endedPerBucket)")
                #expect(endedPerBucket[10] + endedPerBucket[11] == 0, "none after the window: \(endedPerBucket)")
                #expect(drive(harness.loop) { streams.allSatisfy { harness.clients.peer($0).closed } })
                let retries = streams.map { harness.clients.peer($0).retries }
                #expect(retries.allSatisfy { $0.count == 1 && $0[0] >= 1_000 && $0[0] <= 2_000 }, "\(retries.prefix(5))")
                #expect(Set(retries.map { $0.first ?? 0 }).count > 5, "the delays are randomized")
                #expect(drive(harness.loop) { harness.loop.openConnections == 0 })
                harness.loop.closeAll()
            }
        }

        /// `rill serve --drain-window 1` with open streams exits 0 on SIGTERM, after the streams
        /// have ended (each with its `retry:`), within the window and a little more.
        @Test func serveExitsZeroAfterTheDrain() throws {
            let serve = try ServeProcess("--tick 0 --drain-window 1")
            let address = try #require(SocketAddress("127.0.0.1", port: serve.port))
            var clients: [BlockingClient] = []
            for _ in 0..<20 {
                let client = try BlockingClient(connectingTo: address)
                client.send(Array("GET /sse HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
                #expect(client.receive().map { String(decoding: $0, as: UTF8.self).contains("200 OK") } == true)
                clients.append(client)
            }
            let started = MonotonicClock.nanoseconds()
            serve.child.signal(SIGTERM)
            for client in clients {
                let rest = String(decoding: client.receiveAll(), as: UTF8.self)
                #expect(rest.contains("retry: "), "\(rest)")
            }
            #expect(serve.child.waitForExit() == 0)
            let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
            #expect(seconds < 5, "drain took \(seconds) s")
        }
    }
}
