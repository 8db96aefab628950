import LoadTest
import Testing

@Suite struct ReportTests {
    static func outcome(_ build: (inout LoadOutcome) -> Void) -> LoadOutcome {
        var outcome = LoadOutcome()
        build(&outcome)
        return outcome
    }

    /// The SSE report: the fixed-width lines the tests and scripts read, and the JSON keys
    /// Scripts/bench_connections.py reads.
    @Test func sseReportTextAndDocument() {
        var plan = LoadPlan(target: TargetURL("http://127.0.0.1:8080/sse?topic=a")!)
        plan.connections = 300
        plan.rate = CountArgument(3_000)
        plan.duration = DurationArgument(seconds: 2)
        plan.publishRate = 10
        plan.payloadBytes = CountArgument(48)
        let outcome = ReportTests.outcome {
            $0.recorder.counts.opened = 300
            $0.recorder.counts.open = 300
            $0.recorder.counts.events = 6_000
            $0.recorder.counts.published = 20
            $0.recorder.counts.heartbeats = 7
            $0.recorder.connect.record(1_500)
            $0.recorder.delivered(stamp: 1, latency: 2_000)
            $0.recorder.error(.publish(.status(503)))
            $0.rampSeconds = 0.5
            $0.holdSeconds = 2
            $0.sources = 8
            $0.failure = "errors: publish: status 503: 1"
        }
        let report = LoadReport(plan: plan, outcome: outcome)
        let lines = report.text.split(separator: "\n").map(String.init)
        #expect(
            lines[0]
                == "rill load sse http://127.0.0.1:8080/sse?topic=a: 300 streams at 3000/s, held 2.0s, publishing 10.0/s × 48 B"
        )
        #expect(
            lines[1]
                == "  Streams         300 opened       300 held       0 failed   ramp 0.50 s (600/s), 1 process, 8 source addresses"
        )
        #expect(lines[2] == "  Events           20 published    6000 received      0 streams with gaps   7 heartbeats")
        #expect(lines[3] == "  Latency          p50        p90        p99      p99.9        max      count")
        #expect(lines.contains { $0.hasPrefix("    connect ") && $0.hasSuffix("          1") })
        #expect(lines.contains { $0.hasPrefix("    event ") } && lines.contains { $0.hasPrefix("    to last ") })
        #expect(lines.contains("  Errors     publish: status 503: 1"))
        #expect(lines.last == "  Limit      " + LoadLimit.serverConnections.description)
        #expect(report.failure == "errors: publish: status 503: 1")

        let document = report.json
        #expect(document.opened == 300 && document.failed == 0 && document.rampSeconds == 0.5)
        #expect(document.heartbeats == 7 && document.published == 20 && document.streamsWithGaps == 0)
        #expect(document.errors == ["publish: status 503": 1])
        #expect(
            document.latencyMicroseconds["event"]?.p50 == 2_000 || document.latencyMicroseconds["event"]?.p50 == 2_001)
        #expect(document.latencyMicroseconds["to last"] != nil)
        #expect(document.cores ?? 0 >= 1)
    }

    /// The JSON report's start and end are ISO-8601 in UTC.
    @Test func documentTimestamps() {
        let plan = LoadPlan(target: TargetURL("http://127.0.0.1:8080/")!)
        let outcome = ReportTests.outcome {
            $0.startedAt = 1_796_160_480_123_000_000  // 2026-12-01T21:28:00.123Z
            $0.endedAt = 1_796_160_490_000_000_000
        }
        let document = LoadReport(plan: plan, outcome: outcome).json
        #expect(document.startedAt == "2026-12-01T21:28:00.123Z")
        #expect(document.endedAt == "2026-12-01T21:28:10.000Z")
    }

    /// The HTTP report: the requests line with the summed rate.
    @Test func httpReportText() {
        var plan = LoadPlan(target: TargetURL("http://127.0.0.1:8080/")!)
        plan.connections = 4
        plan.duration = DurationArgument(seconds: 60)
        #expect(plan.mode == .http)
        let outcome = ReportTests.outcome {
            $0.recorder.counts.requests = 1_000
            $0.recorder.counts.opened = 4
            $0.recorder.counts.requestsPerSecond = 16.7
            $0.holdSeconds = 60
            $0.workers = 2
        }
        let lines = LoadReport(plan: plan, outcome: outcome).text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "rill load http http://127.0.0.1:8080/: 4 connections, 1m")
        #expect(
            lines[1]
                == "  Requests       1000 in 60.00 s   16.7 requests/s   4 connections opened, 2 worker processes, 0 source addresses"
        )
        #expect(lines.last == "  Errors     none")
    }

    /// Find-max reports its maximum and why it stopped.
    @Test func findMaxReport() {
        var plan = LoadPlan(target: TargetURL("http://127.0.0.1:8080/sse")!)
        plan.findMax = true
        plan.connections = 2_000
        plan.step = CountArgument(500)
        let outcome = ReportTests.outcome {
            $0.maximum = 1_500
            $0.stoppedBecause = "at 2000: 1800 open, no error reported"
        }
        let lines = LoadReport(plan: plan, outcome: outcome).text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "rill load sse http://127.0.0.1:8080/sse: find-max up to 2000 streams in steps of 500")
        #expect(lines[1] == "  Maximum    1500 streams held cleanly")
        #expect(lines[2] == "  Stopped    at 2000: 1800 open, no error reported")
    }
}
