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
        /// than two shares of them (the read's and the next turn's), the responses queued for it stay
        /// bounded, another client is answered within a few turns, and once the flooder reads it gets
        /// every answer, in order.
        @Test func pipelineFloodIsAnsweredAShareATurn() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let share = harness.server.configuration.maximumRequestsPerTurn
                let count = 4_000
                // Every seventh request is a 404, so the order of the answers shows.
                var text = ""
                for index in 0..<count {
                    text += index % 7 == 6 ? "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" : "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
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
                #expect(turnsUntilOther.map { $0 < 20 } == true, "the other client waited \(turnsUntilOther ?? -1) turns")
                #expect(clients.peer(other).responses.first?.status == 200)
                
                var queued = 0
                harness.loop.forEachConnection { queued += $0.queuedBytes }
                #expect(queued < 1 << 20, "\(queued) bytes queued for a client that does not read")
                #expect(harness.server.statistics.turnsYielded > 0)
                #expect(harness.server.statistics.requests < count + 1, "it stops once the client stops reading")

                flood.resumeReading()
                #expect(drive(harness.loop) { clients.peer(flood).responses.count == count })
                let statuses = clients.peer(flood).responses.map(\.status)
                #expect(statuses == (0..<count).map { $0 % 7 == 6 ? 404 : 200 })
                #expect(harness.server.partialRequestCount == 0)
                harness.shutDown()
            }
        }
    }
}
