import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill serve --workers` upgraded in place: SIGUSR2 re-executes the supervisor.
    @Suite struct SupervisorUpgradeTests {
        /// SIGUSR2: the supervisor re-executes itself (same pid) with the ids, the history and the
        /// workers handed over, then rolls the workers. The port answers every request meanwhile,
        /// the next publication's id follows the last one, and a stream resuming from an id taken
        /// before the upgrade is replayed what came after it, from the new workers.
        @Test func sigusr2KeepsThePortAndTheIds() throws {
            let serve = try ServeProcess("--workers 2 --tick 0 --heartbeat 0.5 --drain-window 0.3 --epoch-base 0")
            let clients = try WorkersTests.Clients(port: serve.port)
            for index in 1...3 {
                let response = try clients.publish("e\(index)")
                #expect(response.status == 204 && response.header("X-Event-Id") == "\(index)", "\(response)")
            }
            let before = Set(WorkersTests.children(of: serve.child.pid))
            #expect(before.count == 2)

            kill(serve.child.pid, SIGUSR2)
            let line = serve.child.readLine(timeout: .seconds(20)) ?? ""
            #expect(line.hasPrefix("rill serve re-executed, still listening on \(serve.url)/"), "\(line)")
            // Until the old workers are all replaced, every request on a fresh connection is answered.
            var answered = 0
            var refused = 0
            let replaced = eventually(timeout: .seconds(20)) {
                if serve.metric("rill_subscribers") >= 0 { answered += 1 } else { refused += 1 }
                let now = Set(WorkersTests.children(of: serve.child.pid))
                return now.count == 2 && now.isDisjoint(with: before)
            }
            #expect(replaced, "the workers were rolled after the re-exec")
            #expect(refused == 0 && answered > 0, "\(answered) answered, \(refused) refused")
            #expect(kill(serve.child.pid, 0) == 0, "the same process")

            let response = try clients.publish("e4")
            #expect(response.status == 204 && response.header("X-Event-Id") == "4", "ids continue: \(response)")
            // Replayed after id 1 by whichever new worker takes it: the history was handed over.
            let streams = try (0..<6).map { _ in try clients.stream(lastEventID: "1") }
            #expect(drive(clients.loop) { streams.allSatisfy { clients.events($0).count >= 3 } })
            for stream in streams {
                let got = clients.events(stream).map { ($0.lastEventID, String(decoding: $0.data, as: UTF8.self)) }
                #expect(got.elementsEqual([("2", "e2"), ("3", "e3"), ("4", "e4")], by: ==), "\(got)")
            }
            for stream in streams { stream.close() }
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}
