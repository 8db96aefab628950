import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// The `rill serve` binary with clients nobody here wrote: curl and headless Chromium.
    @Suite struct ServeCommandTests {
        /// `curl -N` receives the ticker's events and a published one; SIGTERM with a stream open
        /// ends curl's stream and the server exits 0 within 2 s.
        @Test(.enabled(if: commandExists("curl"))) func curlReceivesEvents() throws {
            let serve = try ServeProcess("--tick 0.2 --heartbeat 0.3")
            #expect(serve.banner.contains("open-file limit"))
            #expect(serve.banner.contains("connections"))
            let (ticks, _) = try shell("curl -sN --max-time 3 '\(serve.url)/sse?topic=time'")
            #expect(ticks.occurrences(of: "event: time") >= 4, "\(ticks)")
            // That a stream with events needs no heartbeat is the hub's rule, tested on the manual clock
            // (HubTests): here the ticker and the heartbeat slice fall due in the same millisecond.

            let (quiet, _) = try shell("curl -sN --max-time 2 '\(serve.url)/sse?topic=quiet'")
            #expect(quiet.contains(": heartbeat"), "\(quiet)")

            let stream = try ChildProcess(cleanShell: "exec curl -sN '\(serve.url)/sse?topic=news'")
            try #require(eventually(timeout: .seconds(5)) { serve.metric("rill_subscribers") == 1 }, "curl subscribed")
            let published = try shell(
                "curl -s -i -X POST --data-binary 'hello' '\(serve.url)/publish?topic=news&event=greeting'"
            ).output
            #expect(published.contains("X-Subscribers: 1"), "\(published)")
            #expect(published.contains("204 No Content"))
            // Heartbeats (a comment and its blank line) may come before the event: a new subscriber's
            // first one is due at its slice's first visit.
            var lines: [String] = []
            var afterComment = false
            while lines.count < 4, let line = stream.readLine(timeout: .seconds(5)) {
                defer { afterComment = line.hasPrefix(":") }
                if line.hasPrefix(":") || (afterComment && line.isEmpty) { continue }
                lines.append(line)
            }
            #expect(
                lines.count == 4 && lines[0].hasPrefix("id: ") && lines[1...] == ["event: greeting", "data: hello", ""],
                "\(lines)")

            let clock = ContinuousClock()
            let start = clock.now
            serve.child.signal(SIGTERM)
            // The drain (--drain-window 3 by default) tells the stream when to come back, then ends it.
            // (Heartbeats may come in between: up to 3 s / 0.3 s = 10 of them, 2 lines each, when the
            // stream's moment falls at the end of the window.) readLine is nil at the end of the stream.
            var drained: [String] = []
            while drained.count < 40, let line = stream.readLine(timeout: .seconds(5)) { drained.append(line) }
            let firstNotHeartbeat = drained.first { !$0.hasPrefix(":") && !$0.isEmpty }
            #expect(firstNotHeartbeat?.hasPrefix("retry: ") == true && drained.count < 40, "\(drained)")
            #expect(stream.waitForExit() == 0, "curl saw a clean end of stream")
            #expect(serve.child.waitForExit() == 0)
            #expect(clock.now - start < .seconds(5))
        }

        /// Headless Chromium opens the demo page; its EventSource shows the server's ticking time.
        @Test(.enabled(if: commandExists("chromium") && commandExists("python3")))
        func browserShowsTheTickingTime() throws {
            let serve = try ServeProcess("--tick 0.5")
            let (output, status) = try shell(
                "python3 '\(Loopback.packageRoot)/Scripts/browser-check.py' '\(serve.url)/' --settle 2 --wait 1.5",
                timeout: .seconds(60))
            #expect(status == 0, "\(output)")
            let looks = output.split(separator: "\n").map(String.init)
            try #require(looks.count == 2, "\(output)")
            func field(_ look: String, _ name: String) -> String? {
                let parts = look.split(separator: "\"\(name)\":", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { return nil }
                return String(parts[1].prefix { $0 != "," && $0 != "}" }).trimmingCharacters(in: ["\""])
            }
            #expect(field(looks[0], "state") == "open")
            #expect(field(looks[0], "clock")?.hasSuffix("UTC") == true, "\(looks[0])")
            let first = try #require(field(looks[0], "serverTime"))
            let second = try #require(field(looks[1], "serverTime"))
            #expect(first.hasPrefix("20") && second > first, "the time ticks: \(first) → \(second)")
            #expect((Int(field(looks[1], "count") ?? "") ?? 0) > (Int(field(looks[0], "count") ?? "") ?? 0))
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}

extension String {
    /// How many times `needle` occurs (non-overlapping).
    func occurrences(of needle: String) -> Int {
        split(separator: needle, omittingEmptySubsequences: false).count - 1
    }

    /// Trims characters in `set` from both ends (no Foundation in these tests).
    func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
