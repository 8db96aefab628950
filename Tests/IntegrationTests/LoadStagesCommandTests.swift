import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill load` stages, churn, thresholds, scenario files and live metrics, against `rill serve`
    /// (both child processes).
    @Suite struct LoadStagesCommandTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// A ramp up, a hold, a ramp down to a lower hold and down to 0, over two worker processes:
        /// the load's live metrics (`--metrics-port`) and the server agree on the streams open at
        /// each hold, the held share is 100 %, and every stream is closed at the end.
        @Test func stagesRampUpAndDownOverWorkers() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let metricsPort = try freeLoopbackPort()
            let json = "/tmp/rill-load-stages-\(getpid()).json"
            defer { unlink(json) }
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse' --workers 2 --metrics-port \(metricsPort) "
                    + "--stage 0.5s:60 --stage 3s:60 --stage 0.3s:20 --stage 3s:20 --stage 0.3s:0 "
                    + "--threshold 'streams.held>=100%' --threshold errors==0 --json '\(json)'")
            let live = { LoadStagesCommandTests.metric("rill_load_streams_open", port: metricsPort) }
            #expect(eventually(timeout: .seconds(10)) { live() == 60 && serve.metric("rill_subscribers") == 60 })
            #expect(eventually(timeout: .seconds(10)) { live() == 20 && serve.metric("rill_subscribers") == 20 })
            let opened = LoadStagesCommandTests.metric("rill_load_connections_opened_total", port: metricsPort)
            #expect(opened == 60, "a ramp down opens nothing")
            var lines: [String] = []
            while let line = load.readLine(timeout: .seconds(20)) { lines.append(line) }
            let output = lines.joined(separator: "\n")
            #expect(load.waitForExit() == 0, "\(output)")
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("60 opened") && streams.contains("0 held at the end"), "\(streams)")
            #expect(streams.contains("2 worker processes"), "\(streams)")
            #expect(lines.contains { $0.hasPrefix("  Held       ") && $0.contains("(100.00%") }, "\(output)")
            #expect(output.contains("✓ streams.held>=100%  (100%)") && output.contains("✓ errors==0  (0)"), "\(output)")
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"heldLowest\" : {") && document.contains("\"thresholds\" : ["), "\(document)")
            #expect(eventually(timeout: .seconds(10)) { serve.metric("rill_subscribers") == 0 })
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// `--churn`: streams are closed and reopened while the total is held; every reopening is a
        /// real new connection, the report has the churn latency, and no stream misses an event.
        @Test func churnHoldsTheTotalAndReportsReopenings() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let (output, status) = try shell(
                "'\(rill)' load '\(serve.url)/sse' -c 40 -d 2s --churn 40/s --publish-rate 10")
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("40 opened") && streams.contains("40 held"), "\(streams)")
            let churn = try #require(lines.first { $0.hasPrefix("  Churn") }, "\(output)")
            let churned = try #require(churn.split(separator: " ").compactMap { Int($0) }.first)
            #expect(churned >= 30, "\(churn)")
            #expect(churn.contains(", 0 reopenings failed"), "\(churn)")
            let row = try #require(lines.first { $0.hasPrefix("    churn ") }, "\(output)")
            #expect(row.hasSuffix(" \(churned)"), "one latency per reopening: \(row)")
            #expect(output.contains(" 0 streams with gaps"), "\(output)")
            // 40 streams, their reopenings, the publisher and this request.
            let accepted = serve.metric("rill_connections_total")
            #expect(accepted == 40 + churned + 2, "\(accepted) vs \(churned)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Thresholds alone decide the exit status: 0 when all hold, 99 (as k6) when one fails or
        /// `--abort-on-fail` stops a run that can no longer pass; a malformed one is refused (64).
        @Test func thresholdsDecideTheExitStatus() throws {
            let serve = try ServeProcess("--tick 0")
            let url = "'\(serve.url)/sse'"
            let (passing, passed) = try shell(
                "'\(rill)' load \(url) -c 10 -d 0.3s --threshold errors==0 --threshold 'connect.p99<10s' "
                    + "--threshold 'streams.held>=100%'")
            #expect(passed == 0, "\(passing)")
            #expect(passing.contains("  Thresholds\n    ✓ errors==0  (0)\n    ✓ connect.p99<10s  ("), "\(passing)")
            #expect(passing.contains("    ✓ streams.held>=100%  (100%)"), "\(passing)")

            let (failing, failed) = try shell("'\(rill)' load \(url) -c 10 -d 0.3s --threshold 'connect.p99<1us'")
            #expect(failed == 99, "\(failing)")
            #expect(failing.contains("    ✗ connect.p99<1us  ("), "\(failing)")
            #expect(failing.contains("rill load: FAILED: 1 of 1 thresholds failed: connect.p99<1us ("), "\(failing)")

            let (refused, refusedStatus) = try shell("'\(rill)' load \(url) --threshold 'event.p99<soon' 2>&1")
            #expect(refusedStatus == 64, "\(refused)")
            #expect(refused.contains("threshold 'event.p99<soon': the value must be a duration"), "\(refused)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)

            // The server refuses past 5 connections: errors==0 fails at the first 503, and the
            // 20-second hold is cut short.
            let limited = try ServeProcess("--tick 0 --max-connections 5")
            let start = ContinuousClock.now
            let (aborted, abortedStatus) = try shell(
                "'\(rill)' load '\(limited.url)/sse' -c 20 -d 20s --threshold errors==0 --abort-on-fail")
            #expect(abortedStatus == 99, "\(aborted)")
            #expect(aborted.contains("rill load: FAILED: aborted: threshold errors==0 can no longer hold"), "\(aborted)")
            #expect(ContinuousClock.now - start < .seconds(15), "stopped early")
            limited.child.signal(SIGTERM)
            #expect(limited.child.waitForExit() == 0)
        }

        /// A scenario file: streams, a publisher on their topic and HTTP requests alongside, each with
        /// its own stages; the streams get every event, the requests follow their rate.
        @Test func scenarioFileMixesStreamsAPublisherAndRequests() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let file = "/tmp/rill-load-scenario-\(getpid()).yaml"
            defer { unlink(file) }
            let yaml = """
                url: \(serve.url)
                thresholds: [errors==0, 'streams.held>=100%']
                groups:
                  - {name: readers, mode: sse, path: '/sse?topic=s', stages: [0.3s:30, 1.5s:30]}
                  - {name: desk, mode: publish, path: '/publish?topic=s', stages: [0s:10, 1.8s:10]}
                  - {name: api, mode: http, path: /, connections: 2, stages: [0s:100, 1.8s:100]}
                """
            #expect(try shell("cat > '\(file)' <<'EOF'\n\(yaml)\nEOF").status == 0)
            let (output, status) = try shell("'\(rill)' load --scenario '\(file)'")
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.first == "rill load scenario: 3 groups over 1.8 s", "\(output)")
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("30 held at the end"), "\(streams)")
            let events = try #require(lines.first { $0.hasPrefix("  Events") })
            let numbers = events.split(separator: " ").compactMap { Int($0) }
            #expect(numbers.count >= 3 && numbers[0] >= 10 && numbers[1] > 0 && numbers[2] == 0, "\(events)")
            let requests = try #require(lines.first { $0.hasPrefix("  Requests") }, "\(output)")
            let sent = try #require(requests.split(separator: " ").compactMap { Int($0) }.first)
            #expect((160...190).contains(sent), "100/s for 1.8 s: \(requests)")
            #expect(output.contains("    ✓ streams.held>=100%  (100%)"), "\(output)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// One sample from a Prometheus endpoint on 127.0.0.1:`port`, or -1.
        static func metric(_ name: String, port: UInt16) -> Int {
            guard let client = try? BlockingClient(connectingTo: SocketAddress(ip: 0x7F00_0001, port: port)) else {
                return -1
            }
            client.send(Array("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
            let text = String(decoding: client.receiveAll(), as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return line.flatMap { Int($0.split(separator: " ").last!) } ?? -1
        }
    }
}
