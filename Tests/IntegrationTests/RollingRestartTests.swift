import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill serve --workers` replaced under load: SIGHUP (rolling restart).
    @Suite struct RollingRestartTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// 300 `rill load` streams on `rill serve --workers 3` while events are published at 20/s;
        /// SIGHUP replaces all three workers (successors first, then the old ones drain one at a
        /// time over 0.5 s each). Every stream reconnects once (its worker retired), with
        /// Last-Event-ID, and has every event exactly once, in order: none lost, none repeated, no
        /// reset; no attempt is refused (a listener is up throughout) and nothing else fails.
        @Test func sighupReplacesEveryWorkerWithoutLossOrRefusal() throws {
            let serve = try ServeProcess("--workers 3 --tick 0 --heartbeat 0.5 --drain-window 0.5")
            let json = "/tmp/rill-roll-test-\(getpid()).json"
            let log = "/tmp/rill-roll-test-\(getpid()).txt"
            defer {
                unlink(json)
                unlink(log)
            }
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse?topic=r' -c 300 --rate 3000 -d 12s --publish-rate 20 "
                    + "--publish-path '/publish?topic=r' --json '\(json)' > '\(log)' 2>&1")
            #expect(eventually(timeout: .seconds(20)) { serve.metric("rill_subscribers") >= 300 })
            let before = Set(WorkersTests.children(of: serve.child.pid))
            #expect(before.count == 3)
            kill(serve.child.pid, SIGHUP)
            // Done when three workers run and none of them is an old one.
            #expect(
                eventually(timeout: .seconds(20)) {
                    let now = Set(WorkersTests.children(of: serve.child.pid))
                    return now.count == 3 && now.isDisjoint(with: before)
                })
            #expect(load.waitForExit() == 0)
            let output = try shell("cat '\(log)'").output
            let resumed = try #require(output.split(separator: "\n").first { $0.hasPrefix("  Resumed") }, "\(output)")
            #expect(resumed.hasPrefix("  Resumed    300 reconnects"), "every stream moved once: \(resumed)")
            #expect(resumed.contains("0 failed attempts), 0 resets"), "nothing refused, nothing reset: \(resumed)")
            #expect(resumed.contains("0 streams lost and 0 repeated"), "\(resumed)")
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"streamsWithGaps\" : 0"), "\(document)")
            #expect(document.contains("\"streamsThatLostAnEvent\" : 0"), "\(document)")
            #expect(document.contains("\"duplicateEvents\" : 0"), "\(document)")
            #expect(document.contains("\"heldAtEnd\" : 300"), "\(document)")
            #expect(output.contains("Errors     none"), "\(output)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}
