import Histogram

/// A pass/fail criterion on a run, k6's model: `event.p99<250ms`, `connect.p99<50ms`, `errors==0`,
/// `streams.held>=99.9%`, `requests.rate>=50000`. Evaluated at the end (the run's exit status is 0
/// only if every one holds); those that can only get worse (counts, maxima, the held share) are also
/// watched while running, so `--abort-on-fail` stops a run that can no longer pass.
public struct Threshold: Codable, Equatable, Sendable, CustomStringConvertible {
    public enum Comparison: String, Codable, Sendable, CaseIterable {
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "==", notEqual = "!="

        func holds(_ measured: Double, _ limit: Double) -> Bool {
            switch self {
            case .less: return measured < limit
            case .lessOrEqual: return measured <= limit
            case .greater: return measured > limit
            case .greaterOrEqual: return measured >= limit
            case .equal: return measured == limit
            case .notEqual: return measured != limit
            }
        }
    }

    /// What is measured: a latency statistic (µs), a count, a rate per second, or the held share.
    public enum Metric: Codable, Equatable, Hashable, Sendable {
        /// `percentile` 0–100, or nil for the maximum.
        case latency(LatencyKind, percentile: Double?)
        case count(CountKind)
        case rate(CountKind)
        /// The lowest share of the target held at the end of a hold stage (or of the run).
        case held
    }

    /// The latency histograms of a report, by their threshold names.
    public enum LatencyKind: String, Codable, Sendable, CaseIterable {
        case connect, firstbyte, event, tolast, reconnect, churn, request, publish
    }

    /// The counts a threshold may name; `.rate` divides one by the run's active seconds.
    public enum CountKind: String, Codable, Sendable, CaseIterable {
        case errors, events, requests, published, reconnects, churned, gaps, heartbeats
        case opened = "streams.opened", failed = "streams.failed"
    }

    public var text: String
    public var metric: Metric
    public var comparison: Comparison
    /// In the metric's unit: µs for latencies, a fraction (0–1) for `held` given in %, else a number.
    public var limit: Double
    /// `held` given as a count of streams rather than a share.
    public var heldAsCount = false

    public var description: String { text }

    /// Parses `METRIC OP VALUE`; spaces anywhere are ignored.
    public init(parsing raw: String) throws(ThresholdError) {
        let text = raw.filter { $0 != " " && $0 != "\t" }
        self.text = text
        // Two-character operators first, so `<=` is not read as `<` followed by `=…`.
        let operators = Comparison.allCases.sorted { $0.rawValue.count > $1.rawValue.count }
        guard let (comparison, range) = operators.lazy.compactMap({ op in text.range(of: op.rawValue).map { (op, $0) } }).first
        else { throw .noComparison(raw) }
        self.comparison = comparison
        let name = String(text[..<range.lowerBound])
        let value = String(text[range.upperBound...])
        guard !name.isEmpty else { throw .noMetric(raw) }
        guard !value.isEmpty else { throw .noValue(raw) }
        metric = try Threshold.metric(named: name, in: raw)
        (limit, heldAsCount) = try Threshold.limit(value, for: metric, in: raw)
    }

    static func metric(named name: String, in raw: String) throws(ThresholdError) -> Metric {
        let lowered = name.lowercased()
        if lowered == "streams.held" { return .held }
        if let kind = CountKind(rawValue: lowered) { return .count(kind) }
        if lowered.hasSuffix(".rate"), let kind = CountKind(rawValue: String(lowered.dropLast(5))) {
            return .rate(kind)
        }
        let aliases = ["first-byte": "firstbyte", "firstByte": "firstbyte", "to-last": "tolast", "tolast": "tolast"]
        guard let dot = lowered.firstIndex(of: ".") else { throw .unknownMetric(name) }
        let base = String(lowered[..<dot])
        guard let kind = LatencyKind(rawValue: aliases[base] ?? base) else { throw .unknownMetric(name) }
        let statistic = lowered[lowered.index(after: dot)...]
        if statistic == "max" { return .latency(kind, percentile: nil) }
        if statistic == "p50" || statistic == "med" { return .latency(kind, percentile: 50) }
        guard statistic.hasPrefix("p"), let percentile = Double(statistic.dropFirst()), percentile > 0,
            percentile <= 100
        else { throw .unknownStatistic(name) }
        return .latency(kind, percentile: percentile)
    }

    static func limit(_ value: String, for metric: Metric, in raw: String) throws(ThresholdError) -> (Double, Bool) {
        let lowered = value.lowercased()
        switch metric {
        case .latency:
            let units: [(String, Double)] = [("us", 1), ("µs", 1), ("ms", 1_000), ("s", 1_000_000), ("m", 60_000_000)]
            for (suffix, scale) in units where lowered.hasSuffix(suffix) {
                guard let number = Double(lowered.dropLast(suffix.count)), number.isFinite, number >= 0 else {
                    throw .badValue(raw, expected: "a duration: 250ms, 1.5s, 800us")
                }
                return (number * scale, false)
            }
            // A bare number is milliseconds, as in k6.
            guard let number = Double(lowered), number.isFinite, number >= 0 else {
                throw .badValue(raw, expected: "a duration: 250ms, 1.5s, 800us")
            }
            return (number * 1_000, false)
        case .held:
            if lowered.hasSuffix("%") {
                guard let number = Double(lowered.dropLast()), number >= 0, number <= 100 else {
                    throw .badValue(raw, expected: "a share from 0% to 100%, or a number of streams")
                }
                return (number / 100, false)
            }
            guard let number = LoadStage.number(lowered) else {
                throw .badValue(raw, expected: "a share from 0% to 100%, or a number of streams")
            }
            return (number, true)
        case .count, .rate:
            guard let number = LoadStage.number(lowered) else {
                throw .badValue(raw, expected: "a number (k and M suffixes accepted), without a unit")
            }
            return (number, false)
        }
    }

    /// Whether the measured value can only grow while running (so a `<`, `<=` or `==` that fails
    /// now fails at the end too), or only shrink (the held share: the lowest sample so far).
    var failsForGood: Bool {
        switch metric {
        case .count: return [.less, .lessOrEqual, .equal].contains(comparison)
        case .latency(_, percentile: nil): return [.less, .lessOrEqual, .equal].contains(comparison)
        case .held: return [.greater, .greaterOrEqual, .equal].contains(comparison)
        default: return false
        }
    }

    /// The measured value in this threshold's terms, and whether it holds.
    public func evaluate(_ measurements: LoadMeasurements) -> ThresholdResult {
        guard let measured = measurements.value(of: metric, asCount: heldAsCount) else {
            return ThresholdResult(threshold: text, passed: false, measured: nil, shown: "not measured")
        }
        return ThresholdResult(
            threshold: text, passed: comparison.holds(measured, limit), measured: measured,
            shown: show(measured))
    }

    /// The measured value as the report prints it, in the threshold's own unit.
    func show(_ value: Double) -> String {
        switch metric {
        case .latency: return LoadReport.milliseconds(UInt64(value))
        case .held:
            return heldAsCount ? String(Int(value)) : String(format2(value * 100)) + "%"
        case .rate: return format2(value) + "/s"
        case .count: return String(Int(value))
        }
    }

    private func format2(_ value: Double) -> String {
        let hundredths = (value * 100).rounded() / 100
        return hundredths == hundredths.rounded() ? String(Int(hundredths)) : String(hundredths)
    }
}

/// Why a `--threshold` is refused.
public enum ThresholdError: Error, Equatable, CustomStringConvertible {
    case noComparison(String)
    case noMetric(String)
    case noValue(String)
    case unknownMetric(String)
    case unknownStatistic(String)
    case badValue(String, expected: String)

    static let known =
        "latencies connect, firstbyte, event, tolast, reconnect, churn, request, publish with .p50/.p90/.p99/.p99.9/.max; "
        + "counts errors, events, requests, published, reconnects, churned, gaps, heartbeats, streams.opened, "
        + "streams.failed (and NAME.rate per second); streams.held (a share: 99.9%, or a count)"

    public var description: String {
        switch self {
        case .noComparison(let text):
            return "threshold '\(text)' has no comparison: write METRIC<VALUE (one of <, <=, >, >=, ==, !=), "
                + "e.g. 'event.p99<250ms'"
        case .noMetric(let text): return "threshold '\(text)' names no metric before its comparison"
        case .noValue(let text): return "threshold '\(text)' has no value after its comparison"
        case .unknownMetric(let name): return "threshold metric '\(name)' is unknown; known: \(ThresholdError.known)"
        case .unknownStatistic(let name):
            return "threshold metric '\(name)': a latency takes .pNN (p50, p99, p99.9) or .max"
        case .badValue(let text, let expected): return "threshold '\(text)': the value must be \(expected)"
        }
    }
}

/// One threshold after the run: the report's ✓/✗ line and the JSON entry.
public struct ThresholdResult: Codable, Equatable, Sendable {
    public var threshold: String
    public var passed: Bool
    /// In the metric's unit (µs for latencies, a fraction for the held share); nil: not measured.
    public var measured: Double?
    /// The measured value as printed.
    public var shown: String

    /// `✓ event.p99<250ms  (12.3ms)`.
    public var line: String { "\(passed ? "✓" : "✗") \(threshold)  (\(shown))" }
}

/// The figures thresholds are judged on: the merged recorder, the seconds it ran and the lowest held
/// share sampled (with the count and target at that sample).
public struct LoadMeasurements {
    public var recorder: LoadRecorder
    public var activeSeconds: Double
    public var held: (count: Int, wanted: Int)?

    public init(recorder: LoadRecorder, activeSeconds: Double, held: (count: Int, wanted: Int)?) {
        self.recorder = recorder
        self.activeSeconds = activeSeconds
        self.held = held
    }

    func value(of metric: Threshold.Metric, asCount: Bool) -> Double? {
        switch metric {
        case .latency(let kind, let percentile):
            let histogram = self.histogram(kind)
            guard histogram.totalCount > 0 else { return nil }
            return Double(percentile.map { histogram.valueAtPercentile($0) } ?? histogram.max)
        case .count(let kind): return Double(count(kind))
        case .rate(let kind):
            guard activeSeconds > 0 else { return nil }
            if kind == .requests && recorder.counts.requestsPerSecond > 0 { return recorder.counts.requestsPerSecond }
            return Double(count(kind)) / activeSeconds
        case .held:
            guard let held else { return nil }
            if asCount { return Double(held.count) }
            return held.wanted > 0 ? Double(held.count) / Double(held.wanted) : 1
        }
    }

    func histogram(_ kind: Threshold.LatencyKind) -> Histogram<UInt64> {
        switch kind {
        case .connect: return recorder.connect
        case .firstbyte: return recorder.firstByte
        case .event: return recorder.eventLatency
        case .tolast: return recorder.timeToLast
        case .reconnect: return recorder.reconnectLatency
        case .churn: return recorder.churnLatency
        case .request, .publish: return recorder.requestLatency
        }
    }

    func count(_ kind: Threshold.CountKind) -> Int {
        let counts = recorder.counts
        switch kind {
        case .errors: return counts.errorCount
        case .events: return counts.events
        case .requests: return counts.requests
        case .published: return counts.published
        case .reconnects: return counts.reconnects
        case .churned: return counts.churned
        case .gaps: return counts.gaps
        case .heartbeats: return counts.heartbeats
        case .opened: return counts.opened
        case .failed: return counts.failed
        }
    }
}
