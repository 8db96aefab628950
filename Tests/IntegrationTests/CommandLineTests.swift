import Reactor
import RillServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// What a new user meets first: the version, mistyped commands and flags, and the messages.
    @Suite struct CommandLineTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// One version everywhere: `rill --version`, the startup line, `/metrics`.
        @Test(.enabled(if: commandExists("curl"))) func oneVersionEverywhere() throws {
            let (version, status) = try shell("'\(rill)' --version")
            #expect(status == 0 && version == RillVersion.current, "\(version)")
            let serve = try ServeProcess("--tick 0")
            #expect(serve.banner.contains("version \(RillVersion.current)"), "\(serve.banner)")
            let (metrics, _) = try shell("curl -s '\(serve.url)/metrics'")
            #expect(metrics.contains("rill_build_info{version=\"\(RillVersion.current)\"} 1"), "\(metrics)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Runs `rill ARGUMENTS` and returns its first stderr line (stdout discarded) and exit status.
        private func refusal(_ arguments: String) throws -> (String, Int32) {
            let (output, status) = try shell("'\(rill)' \(arguments) 2>&1 >/dev/null", timeout: .seconds(10))
            return (String(output.split(separator: "\n").first ?? ""), status)
        }

        /// A mistyped subcommand says so, with the nearest name.
        @Test func unknownSubcommand() throws {
            let (message, status) = try refusal("lod http://127.0.0.1:1/")
            #expect(status == 64)
            #expect(message == "rill: unknown subcommand 'lod' (did you mean 'load'?)")
            #expect(try refusal("frobnicate").0 == "rill: unknown subcommand 'frobnicate'")
        }

        /// Negative and out-of-range values get their reason (not "Missing value"), each refused
        /// before anything starts; so do a missing or non-directory --static and --header-timeout 0.
        @Test(arguments: [
            ("serve --heartbeat -1", "'--heartbeat <heartbeat>': must be 0 (off) or a positive number of seconds"),
            ("serve --port -1", "'--port <port>': must be a port from 1 to 65535, or 0 for any free one"),
            ("serve --port 70000", "'--port <port>': must be a port from 1 to 65535"),
            (
                "serve --workers -2",
                "'--workers <workers>': must be 'auto' (one per CPU) or a number of processes, at least 1"
            ),
            (
                "serve --workers 0",
                "'--workers <workers>': must be 'auto' (one per CPU) or a number of processes, at least 1"
            ),
            (
                "serve --idle-timeout 1e18",
                "'--idle-timeout <idle-timeout>': must be a positive number of seconds, at most 604800 (a week)"
            ),
            ("serve --threads 0", "'--threads <threads>': must be a whole number of at least 1"),
            (
                "serve --threads 2 --workers 2",
                "Error: --threads and --workers do not go together: choose threads in one process or worker processes"
            ),
            ("serve --header-timeout 0", "'--header-timeout <header-timeout>': must be a positive number of seconds"),
            ("serve --tick -0.5", "'--tick <tick>': must be 0 (off) or a positive number of seconds"),
            ("serve --static /nonexistent-rill-dir", "Error: --static /nonexistent-rill-dir: no such directory"),
            ("serve --static /etc/passwd", "Error: --static /etc/passwd: is a file, not a directory"),
            (
                "serve --max-queued lots",
                "'--max-queued <max-queued>': not a size: write bytes (65536) or a number with a unit"
            ),
            (
                "load http://127.0.0.1:1/ --payload-bytes 1x",
                "'--payload-bytes <payload-bytes>': not a size: write bytes (65536) or a number with a unit"
            ),
            (
                "load http://127.0.0.1:1/ -d 1e18",
                "'-d <duration>': must be 0 (no hold) or a positive number of seconds, at most 604800"
            ),
            (
                "load http://127.0.0.1:1/ --heartbeat-interval -1",
                "'--heartbeat-interval <heartbeat-interval>': must be 0 (do not check)"
            ),
            ("load http://127.0.0.1:1/ -c -5", "'-c <connections>': must be a whole number of at least 1"),
            ("load http://127.0.0.1:1/ --workers 0", "'--workers <workers>': must be 'auto' (one per CPU)"),
            (
                "load http://127.0.0.1:1/ --publish-rate -2",
                "'--publish-rate <publish-rate>': must be 0 (none) or a positive number per second"
            ),
            ("load https://127.0.0.1/", "Error: URL 'https://127.0.0.1/': https is not supported yet: use http://")
        ])
        func badValuesSayWhy(_ arguments: String, _ expected: String) throws {
            let (message, status) = try refusal(arguments)
            #expect(status == 64, "\(message)")
            #expect(message.contains(expected), "\(message)")
        }

        /// One size syntax for both commands: 64k and 64KiB are 65536 bytes, 1M is 1 MiB, 64kB is
        /// 64000 (a published event one byte past --max-body gets 413).
        @Test(.enabled(if: commandExists("curl"))) func sizesShareOneSyntax() throws {
            let serve = try ServeProcess("--tick 0 --max-body 1k --max-queued 64KiB --history-bytes 1M")
            func publish(_ bytes: Int) throws -> String {
                try shell(
                    "head -c \(bytes) /dev/zero | tr '\\0' x | curl -s -o /dev/null -w '%{http_code}' "
                        + "--data-binary @- '\(serve.url)/publish?topic=t'; echo"
                ).output
            }
            #expect(try publish(1024) == "204")
            #expect(try publish(1025) == "413")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
            let port = try freeLoopbackPort()
            let (started, _) = try shell(
                "'\(rill)' load http://127.0.0.1:\(port)/sse --payload-bytes 64kB --publish-rate 1 -c 1 -d 0.1s")
            #expect(started.contains("publishing 1.0/s × 64000 B"), "\(started)")
        }

        /// Logs go to stderr with a timestamp and a level, as text or one JSON object per line; the
        /// startup line stays on stdout as the first line.
        @Test(arguments: ["text", "json"]) func logLinesHaveTimeAndLevel(_ format: String) throws {
            let child = try ChildProcess(
                cleanShell: "exec '\(rill)' serve --port 0 --tick 0 --log-format \(format) 2>&1")
            let banner = try #require(child.readLine())
            #expect(banner.hasPrefix("rill serve listening on http://127.0.0.1:"), "\(banner)")
            let endpoint = try #require(banner.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") })
            let port = try #require(UInt16(endpoint.dropFirst("http://127.0.0.1:".count).prefix { $0.isNumber }))
            let client = try BlockingClient(connectingTo: SocketAddress(ip: 0x7F00_0001, port: port))
            client.send(Array("BLAH\r\n\r\n".utf8))
            #expect(String(decoding: client.receiveAll(), as: UTF8.self).hasPrefix("HTTP/1.1 400"))
            child.signal(SIGTERM)  // the stop logs the run's error counts
            var lines: [String] = []
            while let line = child.readLine(timeout: .seconds(5)) { lines.append(line) }
            #expect(child.waitForExit() == 0)
            let log = try #require(lines.first { $0.contains("malformed requests answered 400") }, "\(lines)")
            let stamp = #/^\{?("time":")?20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d\dZ/#
            #expect(log.firstMatch(of: stamp) != nil, "\(log)")
            if format == "text" {
                #expect(
                    log.contains("Z warning rill serve: malformed requests answered 400: 1 in the last run (1 in all)"),
                    "\(log)")
            } else {
                #expect(log.hasPrefix("{\"time\":\"") && log.hasSuffix("}"), "\(log)")
                #expect(
                    log.contains(
                        #""level":"warning","message":"rill serve: malformed requests answered 400: 1 in the last run (1 in all)""#
                    ), "\(log)")
                #expect(log.contains(#""count":1,"total":1"#), "\(log)")
            }
        }
    }
}
