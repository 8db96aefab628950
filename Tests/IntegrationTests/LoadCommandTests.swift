import Reactor
import RillServer
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
            let (output, status) = try shell(
                "'\(rill)' load '\(serve.url)/sse?topic=load' -c 300 --rate 3000 -d 2s "
                    + "--publish-rate 10 --publish-path '/publish?topic=load' --payload-bytes 48 --json '\(json)'")
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(
                streams.contains("300 opened") && streams.contains("300 held") && streams.contains("0 failed"),
                "\(streams)")
            let events = try #require(lines.first { $0.hasPrefix("  Events") })
            let numbers = events.split(separator: " ").compactMap { Int($0) }
            #expect(
                numbers.count >= 3 && numbers[0] >= 15 && numbers[1] == numbers[0] * 300 && numbers[2] == 0, "\(events)"
            )
            #expect(lines.contains { $0.hasPrefix("    event ") }, "event latency reported")
            #expect(lines.contains("  Errors     none"))
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"events\" : \(numbers[1])"))
            #expect(document.contains("\"streamsWithGaps\" : 0"))
            #expect(document.contains("\"version\" : \"\(RillVersion.current)\""), "\(document)")
            #expect(document.contains("\"startedAt\" : \"20") && document.contains("\"endedAt\" : \"20"), "\(document)")
            #expect(document.contains("\"cores\" : \(sysconf(Int32(_SC_NPROCESSORS_ONLN)))"), "\(document)")
            #expect(document.contains("\"commandLine\" : ["), "\(document)")
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

        /// SSE mode against something that is not an event stream (an HTML page, the metrics text)
        /// fails with the Content-Type as the error class, not "5 held, Errors none".
        @Test func sseModeChecksTheContentType() throws {
            let serve = try ServeProcess("--tick 0")
            for (path, type) in [("/", "text/html"), ("/metrics", "text/plain")] {
                let (output, status) = try shell("'\(rill)' load '\(serve.url)\(path)' --mode sse -c 5 -d 0.3s")
                #expect(status == 1, "\(output)")
                #expect(output.contains("  Errors     response is \(type), not text/event-stream: 5"), "\(output)")
                #expect(
                    !output.contains("B per connection"), "no per-connection memory when nothing was held: \(output)")
            }
            let (missing, missingStatus) = try shell("'\(rill)' load '\(serve.url)/nothing' --mode sse -c 3 -d 0.3s")
            #expect(missingStatus == 1)
            #expect(missing.contains("status 404: 3"), "\(missing)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Nothing listening: the run ends after the first round of refusals (not after -d), says
        /// so, and prints neither "lower --rate" nor a per-connection memory figure.
        @Test func nothingListeningFailsFast() throws {
            let port = try freeLoopbackPort()
            let clock = ContinuousClock()
            let start = clock.now
            let (output, status) = try shell("'\(rill)' load 'http://127.0.0.1:\(port)/sse' -c 500 -d 60s")
            #expect(clock.now - start < .seconds(20), "ended long before its 60 s duration")
            #expect(status == 1, "\(output)")
            #expect(
                output.contains("rill load: FAILED: connection refused: is a server listening on 127.0.0.1:\(port)?"),
                "\(output)")
            #expect(!output.contains("lower --rate") && !output.contains("B per connection"), "\(output)")
            let (http, httpStatus) = try shell("'\(rill)' load 'http://127.0.0.1:\(port)/' -c 4 -d 60s")
            #expect(httpStatus == 1)
            #expect(http.contains("is a server listening on 127.0.0.1:\(port)?"), "\(http)")
        }

        /// SIGINT once streams are open: the run stops, the report (and --json) has the real counts
        /// so far, and the exit status is 130; with worker processes and without.
        @Test(arguments: ["", "--fd-limit 120"]) func interruptReportsWhatHappened(_ workers: String) throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0")
            let json = "/tmp/rill-load-interrupt-\(getpid()).json"
            defer { unlink(json) }
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse' -c 200 -d 60s \(workers) --json '\(json)'")
            // Polls the server until it holds every stream (no timer is waited for).
            try #require(eventually { serve.metric("rill_subscribers") == 200 })
            load.signal(SIGINT)
            var lines: [String] = []
            while let line = load.readLine(timeout: .seconds(30)) { lines.append(line) }
            let output = lines.joined(separator: "\n")
            #expect(load.waitForExit() == 130, "\(output)")
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("200 opened") && streams.contains("200 held"), "\(streams)")
            if !workers.isEmpty { #expect(streams.contains("3 worker processes"), "\(streams)") }
            #expect(!output.contains("sent no result"), "\(output)")
            #expect(output.contains("rill load: FAILED: interrupted"), "\(output)")
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"opened\" : 200") && document.contains("\"heldAtEnd\" : 200"), "\(document)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// A second SIGINT does not wait for the workers' results: it exits 130 at once, and the
        /// worker processes, their coordinator gone, close their streams and exit.
        @Test func secondInterruptExitsAtOnce() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0")
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse' -c 200 -d 60s --fd-limit 120")
            try #require(eventually { serve.metric("rill_subscribers") == 200 })
            load.signal(SIGINT)
            load.signal(SIGINT)
            #expect(load.waitForExit() == 130)
            #expect(
                eventually(timeout: .seconds(10)) { serve.metric("rill_subscribers") == 0 },
                "the workers closed their streams")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Server closes mid-hold (`--no-reconnect`): the streams that ended are counted by class and
        /// the run fails.
        @Test func streamsClosedByTheServerAreReported() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5 --drain-window 0")
            let load = try ChildProcess(cleanShell: "exec '\(rill)' load '\(serve.url)/sse' -c 20 -d 4s --no-reconnect")
            try #require(eventually { serve.metric("rill_subscribers") == 20 })
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
            var lines: [String] = []
            while let line = load.readLine(timeout: .seconds(20)) { lines.append(line) }
            let output = lines.joined(separator: "\n")
            #expect(load.waitForExit() == 1, "\(output)")
            #expect(output.contains("closed by server: 20") || output.contains("reset by server"), "\(output)")
            // The server may close them before rill load has seen its ramp settle: then fewer opened.
            #expect(
                output.contains("rill load: FAILED: 20 streams ended during the hold")
                    || output.contains("rill load: FAILED: only "), "\(output)")
            #expect(output.contains("  Limit      the server closed connections"), "\(output)")
        }

        /// More connections than one process may open: worker processes hold them, and their
        /// figures merge into one exact report (every stream got every published event).
        @Test func workersMergeTheirResults() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let json = "/tmp/rill-load-workers-\(getpid()).json"
            defer { unlink(json) }
            // 120 files per process, 32 kept back: 88 streams each, so 240 streams need 3 workers.
            let (output, status) = try shell(
                "'\(rill)' load '\(serve.url)/sse?topic=w' -c 240 --fd-limit 120 -d 1.5s "
                    + "--publish-rate 20 --publish-path '/publish?topic=w' --json '\(json)'")
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(
                streams.contains("240 opened") && streams.contains("240 held")
                    && streams.contains("3 worker processes"), "\(streams)")
            let events = try #require(lines.first { $0.hasPrefix("  Events") })
            let numbers = events.split(separator: " ").compactMap { Int($0) }
            #expect(
                numbers.count >= 3 && numbers[0] >= 20 && numbers[1] == numbers[0] * 240 && numbers[2] == 0, "\(events)"
            )
            let connect = try #require(lines.first { $0.hasPrefix("    connect") })
            #expect(connect.hasSuffix(" 240"), "one connect time per stream, from all workers: \(connect)")
            let document = try shell("cat '\(json)'").output
            #expect(document.contains("\"workers\" : 3"))
            #expect(document.contains("\"opened\" : 240"))
            let (metrics, _) = try shell("curl -s '\(serve.url)/metrics'")
            let accepted = try #require(
                metrics.split(separator: "\n").first { $0.hasPrefix("rill_connections_total ") })
            // 240 streams, the publisher and this metrics request.
            #expect(accepted.hasSuffix(" 242"), "\(accepted)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)

            let (refused, refusedStatus) = try shell(
                "'\(rill)' load '\(serve.url)/sse' -c 240 --fd-limit 120 --workers 2 -d 1s 2>&1")
            #expect(refusedStatus != 0)
            #expect(refused.contains("use --workers auto, or at least --workers 3"), "\(refused)")
        }

        /// Streams are spread round-robin over the source addresses: the kernel's socket table shows
        /// connections to the server from each of them, evenly.
        @Test func sourceAddressesAreSpread() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0")
            let hexPort = String(serve.port, radix: 16, uppercase: true)
            let load = try ChildProcess(
                cleanShell: "exec '\(rill)' load '\(serve.url)/sse' -c 60 --source 127.0.0.2-127.0.0.4 -d 3s")
            // Read while all 60 are held (a loaded machine may take a while to open them).
            #expect(eventually(timeout: .seconds(15)) { serve.metric("rill_subscribers") == 60 })
            let table = try shell("cat /proc/net/tcp").output
            var lines: [String] = []
            while let line = load.readLine(timeout: .seconds(20)) { lines.append(line) }
            let output = lines.joined(separator: "\n")
            #expect(load.waitForExit() == 0, "\(output)")
            // /proc/net/tcp: "sl local_address rem_address st ...", addresses as hex IP:PORT (IP
            // little-endian). Only connections to this server (127.0.0.1:port), established.
            let server = "0100007F:" + String(repeating: "0", count: 4 - hexPort.count) + hexPort
            var perSource: [String: Int] = [:]
            for line in table.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[2] == server, fields[3] == "01" else { continue }
                perSource[String(fields[1].prefix(8)), default: 0] += 1
            }
            #expect(perSource == ["0200007F": 20, "0300007F": 20, "0400007F": 20], "\(perSource)")
            #expect(output.contains("3 source addresses"), "\(output)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// --find-max steps up to the server's connection limit, names it, and reports the last clean step.
        @Test func findMaxStopsAtTheServersLimit() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5 --max-connections 250")
            let (output, status) = try shell("'\(rill)' load '\(serve.url)/sse' --find-max -c 1000 --step 100")
            #expect(status == 0, "\(output)")
            #expect(output.contains("  Maximum    200 streams held cleanly"), "\(output)")
            #expect(output.contains("  Stopped    at 300: 249 open, status 503: 51"), "\(output)")
            #expect(output.contains("  Limit      the server's connection limit"), "\(output)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Interop with a server nobody here wrote: nginx (if installed) serving a static file. The
        /// requests rill load counts are the requests nginx logged, and so are wrk's.
        @Test(.enabled(if: commandExists("nginx"))) func countsAgreeWithNginxAndWrk() throws {
            let port = try freeLoopbackPort()
            let (started, startStatus) = try shell(
                "NGINX_ACCESS_LOG=1 '\(Loopback.packageRoot)/Scripts/nginx-loopback.sh' \(port)")
            try #require(startStatus == 0, "\(started)")
            let fields = started.split(separator: " ")
            let (pid, directory) = (String(fields[1]), String(fields[2]))
            defer {
                _ = try? shell("kill \(pid); sleep 0.2; rm -rf '\(directory)'")
            }
            func logged() throws -> Int {
                Int(try shell("wc -l < '\(directory)/logs/access.log'").output.filter(\.isNumber)) ?? -1
            }

            let before = try logged()
            let (output, status) = try shell("'\(rill)' load http://127.0.0.1:\(port)/ -c 8 -d 1s")
            #expect(status == 0, "\(output)")
            let requests = try #require(output.split(separator: "\n").first { $0.hasPrefix("  Requests") })
            let counted = try #require(requests.split(separator: " ").compactMap { Int($0) }.first)
            try eventually(timeout: .seconds(2)) { try logged() - before >= counted }  // nginx writes its log lazily
            let served = try logged() - before
            #expect(
                counted > 500 && abs(served - counted) <= max(8, served / 50), "rill load \(counted), nginx \(served)")

            if commandExists("wrk") {
                let before = try logged()
                let (wrk, _) = try shell("wrk -t1 -c8 -d1s http://127.0.0.1:\(port)/")
                let line = try #require(wrk.split(separator: "\n").first { $0.contains("requests in") }, "\(wrk)")
                let wrkCounted = try #require(line.split(separator: " ").compactMap { Int($0) }.first)
                try eventually(timeout: .seconds(2)) { try logged() - before >= wrkCounted }
                let wrkServed = try logged() - before
                #expect(abs(wrkServed - wrkCounted) <= max(8, wrkServed / 50), "wrk \(wrkCounted), nginx \(wrkServed)")
            }
        }
    }
}
