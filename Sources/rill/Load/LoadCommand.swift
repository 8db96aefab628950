import ArgumentParser
import Foundation
import LoadTest
import Reactor
import RillServer

/// `rill load URL`: holds many SSE streams, or drives keep-alive HTTP requests, from one reactor,
/// and reports latency percentiles, errors by class and a per-second series.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open and hold many SSE streams, or drive HTTP requests, and report latencies.",
        discussion: """
            Counts accept k/M suffixes (10k); durations accept ms/s/m/h (30s, 1m), at most a week; sizes \
            are bytes or take a unit: 64k, 1M (powers of 1024; also KiB, MiB), 64kB, 1MB (powers of 1000). \
            Exit status 0 when every connection opened and held, no event was lost and no request failed; \
            1 otherwise, with a one-line reason (with --threshold, the thresholds alone decide: 99 when one fails, as k6); 130 when interrupted (Ctrl-C: the report is of the run so far). \
            Progress goes to stderr, the report to stdout. Publishing (--publish-rate) posts `t=<CLOCK_REALTIME ns>` events to \
            /publish beside the stream URL, so event latency is measured end to end.
            With --agent HOST:PORT (repeated), the run is shared with `rill load agent` on other hosts \
            (see `rill load agent --help`).
            """
    )

    typealias Mode = LoadPlan.Mode

    @Argument(
        help:
            "Target: http://HOST:PORT/PATH (numeric IPv4 or localhost; https and IPv6 are not supported yet). Optional with --scenario."
    )
    var url: String?

    @Option(
        help:
            "sse: hold event streams; http: keep-alive requests. Default: sse for URLs whose path starts with /sse, else http."
    )
    var mode: Mode?

    @Option(
        name: [.short, .long], parsing: .unconditional,
        help:
            "Connections to open and hold (--find-max: the ceiling). Default: 100; with --find-max, what the workers' open-file limits allow.",
        transform: { CountArgument(try Parse.count($0, minimum: 1)) })
    var connections: CountArgument?

    @Option(
        parsing: .unconditional, help: "New connections per second while ramping up (0: as fast as possible).",
        transform: { CountArgument(try Parse.count($0, minimum: 0, meaning: " (0: as fast as possible)")) })
    var rate = CountArgument(0)

    @Option(
        name: [.short, .long], parsing: .unconditional,
        help: "How long to hold the connections (sse) or send requests (http) once all are open. (default: 10s)",
        transform: { DurationArgument(seconds: try Parse.seconds($0, zero: "no hold")) })
    var duration = DurationArgument(seconds: 10)

    @Option(
        name: .customLong("publish-rate"), parsing: .unconditional,
        help: "sse: events per second to POST to /publish during the hold (0: none).",
        transform: { try Parse.rate($0, zero: "none") })
    var publishRate: Double = 0

    @Option(
        name: .customLong("publish-count"), parsing: .unconditional,
        help: "sse: stop publishing after this many events (0: publish until the hold ends).",
        transform: { CountArgument(try Parse.count($0, minimum: 0, meaning: " (0: until the hold ends)")) })
    var publishCount = CountArgument(0)

    @Option(
        name: .customLong("publish-after"), parsing: .unconditional,
        help: "sse: start publishing this long into the hold.",
        transform: { DurationArgument(seconds: try Parse.seconds($0, zero: "at once")) })
    var publishAfter = DurationArgument(seconds: 0)

    @Option(
        name: .customLong("payload-bytes"), parsing: .unconditional,
        help: "sse: size of each published event's data (at least the t= stamp). (default: 32)",
        transform: { CountArgument(try Parse.bytes($0)) })
    var payloadBytes = CountArgument(32)

    @Option(name: .customLong("publish-path"), help: "sse: where to publish (path and query).")
    var publishPath = "/publish"

    @Option(
        name: .customLong("heartbeat-interval"), parsing: .unconditional,
        help:
            "sse: the server's heartbeat interval in seconds; a stream silent for two intervals is a failure (0: do not check).",
        transform: { try Parse.seconds($0, zero: "do not check") })
    var heartbeatInterval: Double = 0

    @Option(
        name: .customLong("request-rate"), parsing: .unconditional,
        help:
            "http: requests per second in total, latency measured from each request's intended time (0: as fast as the connections go).",
        transform: { try Parse.rate($0, zero: "as fast as the connections go") })
    var requestRate: Double = 0

    @Option(help: "http: request method.")
    var method = "GET"

    @Option(help: "http: request body (sent with Content-Length).")
    var body: String?

    @Option(
        help:
            "Source addresses to spread connections over: A.B.C.D-A.B.C.E, one address, or 'none'. Default: 127.0.0.2 upwards for loopback targets."
    )
    var source: String?

    @Option(
        parsing: .unconditional,
        help:
            "Worker processes: 'auto' starts as many as the connections need given the open-file limit (1 when they fit in this process), or a number. (default: auto)",
        transform: Parse.workers)
    var workers = WorkersArgument.auto

    @Option(
        name: .customLong("receive-buffer"), parsing: .unconditional,
        help: "sse: SO_RCVBUF of each stream, set as it connects (default: the kernel's autotuning).",
        transform: Parse.bytes)
    var receiveBuffer: Int?

    @Option(
        name: .customLong("fd-limit"), parsing: .unconditional,
        help: "Open files per process (default: the hard limit). Lower it to see workers at work.",
        transform: {
            try Parse.count(
                $0, minimum: LoadSession.reservedFiles + 1, meaning: " (\(LoadSession.reservedFiles) are kept back)")
        })
    var fdLimit: Int?

    @Flag(
        name: .customLong("find-max"),
        help:
            "sse: step up the streams until the first failure or until the server stops delivering a probe event, and report the most held cleanly."
    )
    var findMax = false

    @Option(
        parsing: .unconditional, help: "--find-max: streams added per step. (default: 1k)",
        transform: { CountArgument(try Parse.count($0, minimum: 1)) })
    var step = CountArgument(1_000)

    @Flag(
        name: .customLong("no-reconnect"),
        help:
            "sse: a stream the server ends (or that fails) stays ended and counts as an error. Without it, streams reconnect like EventSource: after the server's retry: (3 s by default) plus up to a quarter more at random, sending Last-Event-ID."
    )
    var noReconnect = false

    @OptionGroup(title: "Stages, scenarios, churn, thresholds, live metrics")
    var staging: LoadStagingOptions

    @Option(help: "Write the full report as JSON to this file.")
    var json: String?

    @Option(help: "Write the report as one self-contained HTML page (charts over time, summary tables) to this file.")
    var html: String?

    @OptionGroup(title: "Agents on other hosts") var agentOptions: AgentOptions

    @Option(name: .customLong("worker-channel"), help: .hidden)
    var workerChannel: Int32?

    func validate() throws {
        if let conflict = staging.conflict(findMax: findMax, hasURL: url != nil) { throw ValidationError(conflict) }
        if let url {
            do { _ = try TargetURL(parsing: url) } catch { throw ValidationError("URL '\(url)': \(error)") }
        }
        if staging.churn != nil && staging.scenario == nil && (mode ?? plan.mode) != .sse {
            throw ValidationError("--churn is for sse streams")
        }
        if !agentOptions.agents.isEmpty && staging.scenario != nil {
            // An agent's worker re-reads the command line on its own host, where the file is not.
            throw ValidationError("--agent with --scenario is not supported yet: use --stage and the other flags")
        }
        if let source, SourceRange(source) == nil {
            throw ValidationError("--source must be A.B.C.D, A.B.C.D-A.B.C.E or none")
        }
    }

    /// The flags as a plan for the engine.
    var plan: LoadPlan {
        // With only a scenario, its first group's URL stands in until `staging.apply` sets it.
        var plan = LoadPlan(target: TargetURL(url ?? "http://127.0.0.1/")!, mode: mode)
        plan.connections = connections?.value
        plan.rate = rate
        plan.duration = duration
        plan.publishRate = publishRate
        plan.publishCount = publishCount
        plan.publishAfter = publishAfter
        plan.payloadBytes = payloadBytes
        plan.publishPath = publishPath
        plan.heartbeatInterval = heartbeatInterval
        plan.reconnect = !noReconnect
        plan.requestRate = requestRate
        plan.method = method
        plan.body = body
        plan.sources = source.flatMap { SourceRange($0) }
        switch workers {
        case .auto: plan.workers = nil
        case .count(let count): plan.workers = count
        }
        plan.fdLimit = fdLimit
        plan.receiveBufferBytes = receiveBuffer
        plan.findMax = findMax
        plan.step = step
        return plan
    }

    func run() throws {
        var plan = self.plan
        do { try staging.apply(to: &plan, url: url) } catch {
            writeStandardError("rill load: \(error)")
            throw ExitCode.validationFailure
        }
        if let workerChannel { return try LoadSession.runWorker(plan, channel: workerChannel) }
        let loop = try EventLoop()
        stopOnInterrupt(loop, secondExits: true)
        let progress = ProgressLine()
        let report: LoadReport
        do {
            let commandLine = Array(CommandLine.arguments.dropFirst())
            report = try LoadSession.run(
                plan, loop: loop, workerArguments: commandLine + ["--worker-channel", "0"],
                agents: try agentOptions.plan(commandLine: commandLine), progress: progress.show)
        } catch let error as AgentError {
            writeStandardError("rill load: \(error)")
            throw ExitCode.validationFailure
        } catch let error as LoadError {
            // A refusal with its arithmetic and fix; the usage text would bury it.
            writeStandardError("rill load: \(error)")
            throw ExitCode.validationFailure
        } catch let error as SystemError where plan.metricsAddress != nil {
            writeStandardError("rill load: cannot serve metrics on \(plan.metricsAddress!): \(error)")
            throw ExitCode.validationFailure
        }
        progress.finish()
        loop.closeAll()
        print(report.text)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            var document = report.json
            document.version = RillVersion.current
            document.commandLine = CommandLine.arguments
            try encoder.encode(document).write(to: URL(fileURLWithPath: json))
        }
        if let html { try Data(HTMLReport(report).document.utf8).write(to: URL(fileURLWithPath: html)) }
        flushStandardOutput()
        if let failure = report.failure {
            print("rill load: FAILED: \(failure)")
            flushStandardOutput()
            // 128 + SIGINT, as a shell reports a command it interrupted; 99 for thresholds, as k6.
            throw ExitCode(report.interrupted ? 130 : report.thresholdsFailed ? 99 : 1)
        }
    }
}

extension CountArgument: ExpressibleByArgument {}
extension DurationArgument: ExpressibleByArgument {}
extension LoadPlan.Mode: ExpressibleByArgument {}
