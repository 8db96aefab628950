import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill load` streams reconnect like `EventSource` when the server ends them.
    @Suite struct ReconnectTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// 40 streams on `rill serve --workers 2`; one worker is drained (SIGTERM, 0.5 s window) and
        /// restarted while events are published at 10/s. Its streams reconnect after their `retry:`
        /// (at least 1 s, so events are published meanwhile) with `Last-Event-ID`, and every stream
        /// has every event exactly once: none lost (only a replay from the id can give those), none
        /// repeated.
        @Test func drainedStreamsResumeWithoutGapOrDuplicate() throws {
            let serve = try ServeProcess("--workers 2 --tick 0 --heartbeat 0.5 --drain-window 0.5")
            let json = "/tmp/rill-reconnect-test-\(getpid()).json"
            let log = "/tmp/rill-reconnect-test-\(getpid()).txt"
            defer {
                unlink(json)
                unlink(log)
            }
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse?topic=r' -c 40 --rate 2000 -d 5s --publish-rate 10 "
                    + "--publish-path '/publish?topic=r' --json '\(json)' > '\(log)' 2>&1")
            #expect(eventually(timeout: .seconds(20)) { serve.metric("rill_subscribers") >= 40 })
            let workers = WorkersTests.children(of: serve.child.pid)
            #expect(workers.count == 2)
            let victim = try #require(workers.first)
            kill(victim, SIGTERM)
            #expect(load.waitForExit() == 0)
            let output = try shell("cat '\(log)'").output
            let resumed = try #require(output.split(separator: "\n").first { $0.hasPrefix("  Resumed") }, "\(output)")
            let reconnects = Int(resumed.split(separator: " ")[1]) ?? 0
            #expect(reconnects >= 1 && reconnects <= 40, "\(resumed)")
            #expect(resumed.contains("0 streams lost and 0 repeated"), "\(resumed)")
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"streamsWithGaps\" : 0"), "\(document)")
            #expect(document.contains("\"streamsThatLostAnEvent\" : 0"), "\(document)")
            #expect(document.contains("\"duplicateEvents\" : 0"), "\(document)")
            #expect(document.contains("\"reconnect\" : {"), "reconnect latency reported: \(document)")
            #expect(output.contains("Errors     none"), "\(output)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}
