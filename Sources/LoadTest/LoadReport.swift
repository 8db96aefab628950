import Foundation
import Histogram

/// The end of a run: the fixed-width text report, the JSON document, and whether it met its targets.
public struct LoadReport {
    public let text: String
    public let json: Document
    /// Why the run failed its targets, or nil.
    public let failure: String?
    /// The run was stopped by SIGINT/SIGTERM; the report is of what it did so far.
    public let interrupted: Bool
    /// A `--threshold` failed, or `--abort-on-fail` stopped the run (exit status 99, as k6).
    public let thresholdsFailed: Bool
    /// The run second by second, from the workers (the HTML report draws it).
    public let timeline: LoadTimeline

    /// The `--json` file (Scripts/bench_connections.py reads its keys).
    public struct Document: Codable, Equatable {
        /// The tool's version and command line (set by the CLI), when the run started and ended
        /// (ISO-8601, UTC) and the machine's online cores.
        public var version: String?
        public var commandLine: [String]?
        public var startedAt: String?
        public var endedAt: String?
        public var cores: Int?
        public var mode: String
        public var url: String
        public var connections: Int
        public var rampRate: Int
        public var durationSeconds: Double
        public var publishRate: Double
        public var payloadBytes: Int
        public var requestRate: Double
        public var sourceAddresses: Int
        public var workers: Int
        public var rampSeconds: Double
        public var holdSeconds: Double
        public var opened: Int
        public var failed: Int
        public var heldAtEnd: Int
        public var events: Int
        public var heartbeats: Int
        public var published: Int
        public var streamsWithGaps: Int
        /// sse, reconnecting: see `LoadCounts` (absent with --no-reconnect).
        public var reconnects: Int?
        public var reconnectFailures: Int?
        public var mostReconnectsOfAStream: Int?
        public var resets: Int?
        public var duplicateEvents: Int?
        public var streamsThatRepeatedAnEvent: Int?
        public var streamsThatLostAnEvent: Int?
        /// The kernel's ListenOverflows and ListenDrops (/proc/net/netstat) over the run, machine-wide;
        /// only when the target is on this machine (loopback).
        public var listenOverflows: Int?
        public var listenDrops: Int?
        public var requests: Int
        public var requestsPerSecond: Double
        public var residentBytes: Int
        public var baselineBytes: Int
        public var maximumHeld: Int?
        public var stoppedBecause: String?
        public var latencyMicroseconds: [String: Percentiles]
        public var errors: [String: Int]
        public var limits: [String]
        public var series: [LoadSecond]
        public var failure: String?
        /// Stages and scenarios: the groups run, the lowest share of streams held at the end of a
        /// hold (count and target), and streams churned.
        public var scenario: LoadScenario?
        public var heldLowest: HeldSample?
        public var churned: Int?
        /// Each `--threshold`, passed or not, with the measured value.
        public var thresholds: [ThresholdResult]?
    }

    public struct Percentiles: Codable, Equatable {
        public var count: UInt64
        public var p50: UInt64
        public var p90: UInt64
        public var p99: UInt64
        public var p999: UInt64
        public var max: UInt64

        init(_ histogram: Histogram<UInt64>) {
            count = histogram.totalCount
            p50 = histogram.valueAtPercentile(50)
            p90 = histogram.valueAtPercentile(90)
            p99 = histogram.valueAtPercentile(99)
            p999 = histogram.valueAtPercentile(99.9)
            max = histogram.max
        }
    }

    /// The report of `outcome`, a run of `plan` (whose connections are resolved).
    public init(plan: LoadPlan, outcome: LoadOutcome) {
        let target = plan.target
        let mode = plan.mode
        failure = outcome.failure
        interrupted = outcome.interrupted
        thresholdsFailed = outcome.thresholdsFailed
        timeline = outcome.recorder.timeline
        let recorder = outcome.recorder
        let counts = recorder.counts
        let histograms: [(String, Histogram<UInt64>)] = [
            ("connect", recorder.connect), ("first byte", recorder.firstByte),
            ("event", recorder.eventLatency), ("to last", recorder.timeToLast),
            ("reconnect", recorder.reconnectLatency), ("churn", recorder.churnLatency),
            (mode == .sse && plan.scenario == nil ? "publish" : "request", recorder.requestLatency),
            ("publish", recorder.publishLatency),
        ]
        var lines: [String] = []
        let wanted = plan.connectionCount
        let spread =
            "\(outcome.workers) \(outcome.workers == 1 ? "process" : "worker processes"), \(outcome.sources) source addresses"
        switch mode {
        case .sse:
            var title = "rill load sse \(target): "
            title +=
                plan.findMax ? "find-max up to \(wanted) streams in steps of \(plan.step.value)" : "\(wanted) streams"
            if plan.rate.value > 0 { title += " at \(plan.rate.value)/s" }
            if !plan.findMax { title += ", held \(plan.duration)" }
            if plan.publishRate > 0 && !plan.findMax {
                title += ", publishing \(plan.publishRate)/s × \(plan.payloadBytes.value) B"
            }
            lines.append(title)
            if let maximum = outcome.maximum {
                lines.append("  Maximum    \(maximum) streams held cleanly")
                lines.append("  Stopped    " + (outcome.stoppedBecause ?? "-"))
            }
            lines.append(
                String(
                    format: "  Streams    %8d opened  %8d held  %6d failed   ramp %.2f s (%.0f/s), ",
                    counts.opened, counts.open, counts.failed, outcome.rampSeconds,
                    outcome.rampSeconds > 0 ? Double(counts.opened) / outcome.rampSeconds : 0) + spread)
            lines.append(
                String(
                    format: "  Events     %8d published %7d received  %5d streams with gaps   %d heartbeats",
                    counts.published, counts.events, counts.gaps, counts.heartbeats))
            // Only when something was resumed or repeated: a clean run's lines stay as they were.
            if plan.reconnect
                && counts.reconnects + counts.reconnectFailures + counts.resets + counts.duplicateEvents > 0
            {
                lines.append(
                    "  Resumed    \(counts.reconnects) reconnects (at most \(counts.mostReconnectsOfAStream) attempts by one stream, "
                        + "\(counts.reconnectFailures) failed attempts), \(counts.resets) resets, "
                        + "\(counts.streamsLost) streams lost and \(counts.streamsRepeated) repeated an event "
                        + "(\(counts.duplicateEvents) duplicates)")
            }
        case .http:
            lines.append(
                "rill load http \(target): \(wanted) connections, \(plan.duration)"
                    + (plan.requestRate > 0 ? ", \(plan.requestRate) requests/s (open loop)" : ""))
            lines.append(
                String(
                    format: "  Requests   %8d in %.2f s   %.1f requests/s   %d connections opened, ",
                    counts.requests, outcome.holdSeconds, counts.requestsPerSecond,
                    counts.opened) + spread)
        }
        LoadReport.describeStages(plan: plan, outcome: outcome, spread: spread, into: &lines)
        lines.append("  Latency          p50        p90        p99      p99.9        max      count")
        for (name, histogram) in histograms where histogram.totalCount > 0 {
            let values = [50.0, 90, 99, 99.9].map { histogram.valueAtPercentile($0) } + [histogram.max]
            lines.append(
                "    " + name.padding(toLength: 11, withPad: " ", startingAt: 0)
                    + values.map { LoadReport.milliseconds($0).leftPadded(11) }.joined()
                    + String(histogram.totalCount).leftPadded(11))
        }
        if counts.residentBytes > 0 && counts.open > 0 {
            let growth = counts.residentBytes - counts.baselineBytes
            lines.append(
                String(
                    format:
                        "  Memory     %.1f MB resident in the load generator, %.0f B per connection over its %.1f MB baseline",
                    Double(counts.residentBytes) / 1e6, Double(growth) / Double(max(1, counts.opened)),
                    Double(counts.baselineBytes) / 1e6))
        } else if counts.residentBytes > 0 {
            // Nothing held at the end: growth over no connections means nothing.
            lines.append(
                String(
                    format: "  Memory     %.1f MB resident in the load generator", Double(counts.residentBytes) / 1e6))
        }
        if let queue = outcome.listenQueue {
            lines.append(
                "  Listen     \(queue.overflows) accept-queue overflows, \(queue.drops) drops (this machine's TcpExt counters over the run)")
        }
        lines.append("  Errors     " + (counts.errors.isEmpty ? "none" : LoadCounts.summary(counts.errors)))
        // Nothing listening is said by the failure line; "lower --rate" would mislead.
        let limits = outcome.nothingListening ? [] : LoadLimit.advice(for: counts.errors)
        for advice in limits { lines.append("  Limit      " + advice) }
        if !outcome.thresholds.isEmpty {
            lines.append("  Thresholds")
            for result in outcome.thresholds { lines.append("    " + result.line) }
        }
        text = lines.joined(separator: "\n")
        let reconnecting = mode == .sse && plan.reconnect

        var document = Document(
            version: nil, commandLine: nil, startedAt: outcome.startedAt.map(LoadReport.iso8601),
            endedAt: outcome.endedAt.map(LoadReport.iso8601), cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            mode: mode.rawValue, url: target.description, connections: wanted, rampRate: plan.rate.value,
            durationSeconds: plan.duration.seconds, publishRate: plan.publishRate,
            payloadBytes: plan.payloadBytes.value, requestRate: plan.requestRate, sourceAddresses: outcome.sources,
            workers: outcome.workers, rampSeconds: outcome.rampSeconds, holdSeconds: outcome.holdSeconds,
            opened: counts.opened, failed: counts.failed, heldAtEnd: counts.open,
            events: counts.events, heartbeats: counts.heartbeats, published: counts.published,
            streamsWithGaps: counts.gaps,
            reconnects: reconnecting ? counts.reconnects : nil,
            reconnectFailures: reconnecting ? counts.reconnectFailures : nil,
            mostReconnectsOfAStream: reconnecting ? counts.mostReconnectsOfAStream : nil,
            resets: reconnecting ? counts.resets : nil,
            duplicateEvents: reconnecting ? counts.duplicateEvents : nil,
            streamsThatRepeatedAnEvent: reconnecting ? counts.streamsRepeated : nil,
            streamsThatLostAnEvent: reconnecting ? counts.streamsLost : nil,
            listenOverflows: outcome.listenQueue?.overflows, listenDrops: outcome.listenQueue?.drops,
            requests: counts.requests,
            requestsPerSecond: counts.requestsPerSecond,
            residentBytes: counts.residentBytes, baselineBytes: counts.baselineBytes,
            maximumHeld: outcome.maximum, stoppedBecause: outcome.stoppedBecause,
            latencyMicroseconds: Dictionary(
                uniqueKeysWithValues: histograms.filter { $0.1.totalCount > 0 }.map { ($0.0, Percentiles($0.1)) }),
            errors: Dictionary(counts.errors.map { ($0.key.description, $0.value) }, uniquingKeysWith: +),
            limits: limits, series: outcome.series, failure: failure)
        document.scenario = plan.scenario
        document.heldLowest = outcome.heldLowest
        document.churned = counts.churned > 0 || plan.churn > 0 ? counts.churned : nil
        document.thresholds = outcome.thresholds.isEmpty ? nil : outcome.thresholds
        json = document
    }

    /// `2026-12-01T21:18:00.123Z` for a CLOCK_REALTIME time in nanoseconds.
    static func iso8601(_ nanoseconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(nanoseconds) / 1e9))
    }

    public static func milliseconds(_ microseconds: UInt64) -> String {
        microseconds < 10_000
            ? String(format: "%.2fms", Double(microseconds) / 1000)
            : String(format: "%.1fms", Double(microseconds) / 1000)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
