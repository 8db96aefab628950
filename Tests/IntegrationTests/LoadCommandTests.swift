import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill load` against `rill serve`, both as child processes.
    @Suite struct LoadCommandTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// SSE mode: 300 streams, events published by rill load itself; every stream gets every event,
        /// latencies are reported, the JSON agrees, exit status 0.
        @Test func streamsReceiveEveryPublishedEvent() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let json = "/tmp/rill-load-test-\(getpid()).json"
            defer { unlink(json) }
            let (output, status) = try shell("'\(rill)' load '\(serve.url)/sse?topic=load' -c 300 --rate 3000 -d 2s "
                                             + "--publish-rate 10 --publish-path '/publish?topic=load' --payload-bytes 48 --json '\(json)'")
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("300 opened") && streams.contains("300 held") && streams.contains("0 failed"), "\(streams)")
            let events = try #require(lines.first { $0.hasPrefix("  Events") })
            let numbers = events.split(separator: " ").compactMap { Int($0) }
            #expect(numbers.count >= 3 && numbers[0] >= 15 && numbers[1] == numbers[0] * 300 && numbers[2] == 0, "\(events)")
            #expect(lines.contains { $0.hasPrefix("    event ") }, "event latency reported")
            #expect(lines.contains("  Errors     none"))
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"events\" : \(numbers[1])"))
            #expect(document.contains("\"streamsWithGaps\" : 0"))
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// HTTP mode: the request count rill load reports is the count the server answered.
        @Test func httpRequestCountsMatchTheServer() throws {
            let serve = try ServeProcess("--tick 0")
            let (output, status) = try shell("'\(rill)' load '\(serve.url)/' -c 4 -d 1s")
            #expect(status == 0, "\(output)")
            let requestsLine = try #require(output.split(separator: "\n").first { $0.hasPrefix("  Requests") })
            let sent = try #require(requestsLine.split(separator: " ").compactMap { Int($0) }.first)
            #expect(sent > 100)
            let (metrics, _) = try shell("curl -s '\(serve.url)/metrics'")
            let answered = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("rill_requests_total ") })
            // The server counts the metrics request too (before building its text).
            #expect(Int(answered.split(separator: " ").last!) == sent + 1, "\(answered) vs \(sent)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Refused connections and 503s are reported by class, and the exit status says the run failed.
        @Test func errorClassesAndExitStatus() throws {
            let serve = try ServeProcess("--tick 0 --max-connections 5")
            let (limited, limitedStatus) = try shell("'\(rill)' load '\(serve.url)/sse' -c 20 -d 0.5s")
            #expect(limitedStatus == 1, "\(limited)")
            #expect(limited.contains("status 503: 15"), "\(limited)")
            #expect(limited.contains("rill load: FAILED: only 5 of 20 streams opened"), "\(limited)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)

            let (refused, refusedStatus) = try shell("'\(rill)' load 'http://127.0.0.1:\(serve.port)/' -c 3 -d 0.3s")
            #expect(refusedStatus == 1)
            #expect(refused.contains("connect refused"), "\(refused)")
        }
    }
}
