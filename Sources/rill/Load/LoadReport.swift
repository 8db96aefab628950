import Foundation
import Histogram

/// The end of a run: the fixed-width text report, the JSON document, and whether it met its targets.
struct LoadReport {
    let text: String
    let json: Document
    /// Why the run failed its targets, or nil.
    let failure: String?

    /// The `--json` file.
    struct Document: Codable {
        var mode: String
        var url: String
        var connections: Int
        var rampRate: Int
        var durationSeconds: Double
        var publishRate: Double
        var payloadBytes: Int
        var requestRate: Double
        var sourceAddresses: Int
        var workers: Int
        var rampSeconds: Double
        var holdSeconds: Double
        var opened: Int
        var failed: Int
        var heldAtEnd: Int
        var events: Int
        var heartbeats: Int
        var published: Int
        var streamsWithGaps: Int
        var requests: Int
        var requestsPerSecond: Double
        var residentBytes: Int
        var baselineBytes: Int
        var maximumHeld: Int?
        var stoppedBecause: String?
        var latencyMicroseconds: [String: Percentiles]
        var errors: [String: Int]
        var limits: [String]
        var series: [LoadRecorder.Second]
        var failure: String?
    }

    struct Percentiles: Codable {
        var count: UInt64
        var p50: UInt64
        var p90: UInt64
        var p99: UInt64
        var p999: UInt64
        var max: UInt64

        init(_ histogram: Histogram<UInt64>) {
            count = histogram.totalCount
            p50 = histogram.valueAtPercentile(50)
            p90 = histogram.valueAtPercentile(90)
            p99 = histogram.valueAtPercentile(99)
            p999 = histogram.valueAtPercentile(99.9)
            max = histogram.max
        }
    }

    init(command: Load, target: TargetURL, mode: Load.Mode, outcome: LoadOutcome) {
        failure = outcome.failure
        let recorder = outcome.recorder
        let histograms: [(String, Histogram<UInt64>)] = [
            ("connect", recorder.connect), ("first byte", recorder.firstByte),
            ("event", recorder.eventLatency), ("to last", recorder.timeToLast), (mode == .sse ? "publish" : "request", recorder.requestLatency),
        ]
        var lines: [String] = []
        let wanted = command.connectionCount
        let spread = "\(outcome.workers) \(outcome.workers == 1 ? "process" : "worker processes"), \(outcome.sources) source addresses"
        switch mode {
        case .sse:
            var title = "rill load sse \(target): "
            title += command.findMax ? "find-max up to \(wanted) streams in steps of \(command.step.value)" : "\(wanted) streams"
            if command.rate.value > 0 { title += " at \(command.rate.value)/s" }
            if !command.findMax { title += ", held \(command.duration)" }
            if command.publishRate > 0 && !command.findMax {
                title += ", publishing \(command.publishRate)/s × \(command.payloadBytes.value) B"
            }
            lines.append(title)
            if let maximum = outcome.maximum {
                lines.append("  Maximum    \(maximum) streams held cleanly")
                lines.append("  Stopped    " + (outcome.stoppedBecause ?? "-"))
            }
            lines.append(String(format: "  Streams    %8d opened  %8d held  %6d failed   ramp %.2f s (%.0f/s), ",
                                recorder.connectionsOpened, outcome.held, recorder.connectionsFailed, outcome.rampSeconds,
                                outcome.rampSeconds > 0 ? Double(recorder.connectionsOpened) / outcome.rampSeconds : 0) + spread)
            lines.append(String(format: "  Events     %8d published %7d received  %5d streams with gaps   %d heartbeats",
                                recorder.published, recorder.events, outcome.gaps, recorder.heartbeats))
        case .http:
            lines.append("rill load http \(target): \(wanted) connections, \(command.duration)"
                         + (command.requestRate > 0 ? ", \(command.requestRate) requests/s (open loop)" : ""))
            lines.append(String(format: "  Requests   %8d in %.2f s   %.1f requests/s   %d connections opened, ",
                                recorder.requests, outcome.holdSeconds, outcome.requestsPerSecond,
                                recorder.connectionsOpened) + spread)
        }
        lines.append("  Latency          p50        p90        p99      p99.9        max      count")
        for (name, histogram) in histograms where histogram.totalCount > 0 {
            let values = [50.0, 90, 99, 99.9].map { histogram.valueAtPercentile($0) } + [histogram.max]
            lines.append("    " + name.padding(toLength: 11, withPad: " ", startingAt: 0)
                         + values.map { LoadReport.milliseconds($0).leftPadded(11) }.joined()
                         + String(histogram.totalCount).leftPadded(11))
        }
        if outcome.residentBytes > 0 {
            let growth = outcome.residentBytes - outcome.baselineBytes
            lines.append(String(format: "  Memory     %.1f MB resident in the load generator, %.0f B per connection over its %.1f MB baseline",
                                Double(outcome.residentBytes) / 1e6, Double(growth) / Double(max(1, recorder.connectionsOpened)),
                                Double(outcome.baselineBytes) / 1e6))
        }
        lines.append("  Errors     " + (recorder.errors.isEmpty ? "none" : LoadReport.errorSummary(recorder.errors)))
        let limits = LoadLimit.advice(for: recorder.errors)
        for advice in limits { lines.append("  Limit      " + advice) }
        text = lines.joined(separator: "\n")

        json = Document(
            mode: mode.rawValue, url: target.description, connections: wanted, rampRate: command.rate.value,
            durationSeconds: command.duration.seconds, publishRate: command.publishRate,
            payloadBytes: command.payloadBytes.value, requestRate: command.requestRate, sourceAddresses: outcome.sources,
            workers: outcome.workers, rampSeconds: outcome.rampSeconds, holdSeconds: outcome.holdSeconds,
            opened: recorder.connectionsOpened, failed: recorder.connectionsFailed, heldAtEnd: outcome.held,
            events: recorder.events, heartbeats: recorder.heartbeats, published: recorder.published,
            streamsWithGaps: outcome.gaps, requests: recorder.requests,
            requestsPerSecond: outcome.requestsPerSecond,
            residentBytes: outcome.residentBytes, baselineBytes: outcome.baselineBytes,
            maximumHeld: outcome.maximum, stoppedBecause: outcome.stoppedBecause,
            latencyMicroseconds: Dictionary(uniqueKeysWithValues: histograms.filter { $0.1.totalCount > 0 }.map { ($0.0, Percentiles($0.1)) }),
            errors: recorder.errors, limits: limits, series: outcome.series, failure: failure)
    }

    static func milliseconds(_ microseconds: UInt64) -> String {
        microseconds < 10_000 ? String(format: "%.2fms", Double(microseconds) / 1000) : String(format: "%.1fms", Double(microseconds) / 1000)
    }

    static func errorSummary(_ errors: [String: Int]) -> String {
        errors.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
