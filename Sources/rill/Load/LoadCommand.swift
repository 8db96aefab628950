import ArgumentParser
import Foundation
import Reactor

/// `rill load URL`: holds many SSE streams, or drives keep-alive HTTP requests, from one reactor,
/// and reports latency percentiles, errors by class and a per-second series.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open and hold many SSE streams, or drive HTTP requests, and report latencies.",
        discussion: """
            Counts accept k/M suffixes (10k); durations accept ms/s/m/h (30s, 1m). Exit status 0 when \
            every connection opened and held, no event was lost and no request failed; 1 otherwise, \
            with a one-line reason. Publishing (--publish-rate) posts `t=<CLOCK_REALTIME ns>` events to \
            /publish beside the stream URL, so event latency is measured end to end.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable { case sse, http }

    @Argument(help: "Target: http://HOST:PORT/PATH (numeric IPv4 or localhost).")
    var url: String

    @Option(help: "sse: hold event streams; http: keep-alive requests. Default: sse for URLs whose path starts with /sse, else http.")
    var mode: Mode?

    @Option(name: [.short, .long], help: "Connections to open and hold.")
    var connections = CountArgument(100)

    @Option(help: "New connections per second while ramping up (0: as fast as possible).")
    var rate = CountArgument(0)

    @Option(name: [.short, .long], help: "How long to hold the connections (sse) or send requests (http) once all are open.")
    var duration = DurationArgument(seconds: 10)

    @Option(name: .customLong("publish-rate"), help: "sse: events per second to POST to /publish during the hold (0: none).")
    var publishRate: Double = 0

    @Option(name: .customLong("payload-bytes"), help: "sse: size of each published event's data, in bytes (at least the t= stamp).")
    var payloadBytes = CountArgument(32)

    @Option(name: .customLong("publish-path"), help: "sse: where to publish (path and query).")
    var publishPath = "/publish"

    @Option(name: .customLong("heartbeat-interval"), help: "sse: the server's heartbeat interval in seconds; a stream silent for two intervals is a failure (0: do not check).")
    var heartbeatInterval: Double = 0

    @Option(name: .customLong("request-rate"), help: "http: requests per second in total, latency measured from each request's intended time (0: as fast as the connections go).")
    var requestRate: Double = 0

    @Option(help: "http: request method.")
    var method = "GET"

    @Option(help: "http: request body (sent with Content-Length).")
    var body: String?

    @Option(help: "Source addresses to spread connections over: A.B.C.D-A.B.C.E, one address, or 'none'. Default: 127.0.0.2 upwards for loopback targets.")
    var source: String?

    @Option(help: "Write the full report as JSON to this file.")
    var json: String?

    func validate() throws {
        guard TargetURL(url) != nil else { throw ValidationError("URL must look like http://127.0.0.1:8080/sse, got \(url)") }
        if let source, SourceRange(source) == nil { throw ValidationError("--source must be A.B.C.D, A.B.C.D-A.B.C.E or none") }
        if connections.value < 1 { throw ValidationError("--connections must be at least 1") }
    }

    func run() throws {
        let target = TargetURL(url)!
        let mode = self.mode ?? (target.target.hasPrefix("/sse") ? .sse : .http)
        let limits = ResourceLimits.raiseOpenFilesToHardLimit()
        let sources = source.flatMap { SourceRange($0)?.addresses }
            ?? (target.isLoopback ? SourceRange.automatic(connections: connections.value).addresses : [])
        let needed = connections.value + (publishRate > 0 ? 1 : 0) + 16
        if needed > Int(limits.soft) {
            throw ValidationError("\(connections.value) connections need about \(needed) open files; this process may open \(limits.soft) "
                                  + "(hard limit \(limits.hard)). Lower --connections or run several processes.")
        }
        let loop = try EventLoop()
        stopOnInterrupt(loop.remote)
        let run = LoadRun(loop: loop, command: self, target: target, mode: mode, sources: sources)
        let report = run.execute()
        print(report.text)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report.json).write(to: URL(fileURLWithPath: json))
        }
        flushStandardOutput()
        if let failure = report.failure {
            print("rill load: FAILED: \(failure)")
            flushStandardOutput()
            throw ExitCode(1)
        }
    }
}
