@testable import LoadTest
import Testing

@Suite struct ThresholdTests {
    /// The issue's examples and the unit rules: latencies in µs (bare numbers are ms), shares as fractions.
    @Test(arguments: [
        ("event.p99<250ms", Threshold.Metric.latency(.event, percentile: 99), Threshold.Comparison.less, 250_000.0),
        ("connect.p99 < 50ms", .latency(.connect, percentile: 99), .less, 50_000),
        ("errors==0", .count(.errors), .equal, 0),
        ("streams.held>=99.9%", .held, .greaterOrEqual, 0.999),
        ("requests.rate>=50000", .rate(.requests), .greaterOrEqual, 50_000),
        ("requests.rate>=50k", .rate(.requests), .greaterOrEqual, 50_000),
        ("event.max<=1.5s", .latency(.event, percentile: nil), .lessOrEqual, 1_500_000),
        ("first-byte.p99.9<800us", .latency(.firstbyte, percentile: 99.9), .less, 800),
        ("churn.p50<20", .latency(.churn, percentile: 50), .less, 20_000),
        ("streams.failed!=3", .count(.failed), .notEqual, 3),
    ])
    func thresholdsParse(text: String, metric: Threshold.Metric, comparison: Threshold.Comparison, limit: Double)
        throws
    {
        let threshold = try Threshold(parsing: text)
        #expect(threshold.metric == metric)
        #expect(threshold.comparison == comparison)
        #expect(abs(threshold.limit - limit) < 1e-9)
    }

    /// Each malformed threshold says what is wrong.
    @Test func malformedThresholdsAreRefusedWithTheReason() {
        #expect(throws: ThresholdError.noComparison("event.p99 250ms")) { try Threshold(parsing: "event.p99 250ms") }
        #expect(throws: ThresholdError.noMetric("<5")) { try Threshold(parsing: "<5") }
        #expect(throws: ThresholdError.noValue("errors==")) { try Threshold(parsing: "errors==") }
        #expect(throws: ThresholdError.unknownMetric("latency.p99")) { try Threshold(parsing: "latency.p99<5ms") }
        #expect(throws: ThresholdError.unknownStatistic("event.p101")) { try Threshold(parsing: "event.p101<5ms") }
        #expect(throws: ThresholdError.unknownStatistic("event.avg")) { try Threshold(parsing: "event.avg<5ms") }
        #expect(throws: (any Error).self) { try Threshold(parsing: "errors<5ms") }
        #expect(throws: (any Error).self) { try Threshold(parsing: "event.p99<fast") }
        #expect(throws: (any Error).self) { try Threshold(parsing: "streams.held>=120%") }
        let message = "\(ThresholdError.noComparison("x"))"
        #expect(message.contains("<, <=, >, >=, ==, !="), "\(message)")
    }

    /// Evaluated against a recorder: ✓/✗ with the measured value in the threshold's unit; a
    /// histogram with nothing in it is "not measured" and fails.
    @Test func thresholdsJudgeTheMeasurements() throws {
        var recorder = LoadRecorder()
        for latency in 1...100 { recorder.eventLatency.record(UInt64(latency * 1_000)) }  // 1–100 ms
        recorder.counts.requests = 1_000
        recorder.counts.error(.connectRefused)
        let measurements = LoadMeasurements(recorder: recorder, activeSeconds: 2, held: (count: 998, wanted: 1_000))
        func judge(_ text: String) throws -> ThresholdResult { try Threshold(parsing: text).evaluate(measurements) }

        let p99 = try judge("event.p99<250ms")
        #expect(p99.passed && p99.shown == "99.0ms", "\(p99)")
        #expect(try !judge("event.p99<50ms").passed)
        #expect(try judge("requests.rate>=500").passed)
        #expect(try !judge("requests.rate>500").passed)
        #expect(try !judge("errors==0").passed)
        #expect(try judge("errors<=1").line == "✓ errors<=1  (1)")
        #expect(try judge("streams.held>=99.8%").passed)
        #expect(try judge("streams.held>=99.9%").line == "✗ streams.held>=99.9%  (99.8%)")
        #expect(try judge("streams.held>=998").passed)
        let empty = try judge("connect.p99<50ms")
        #expect(!empty.passed && empty.measured == nil && empty.shown == "not measured")
    }

    /// Only figures that cannot recover may abort a run early.
    @Test func whatFailsForGood() throws {
        #expect(try Threshold(parsing: "errors==0").failsForGood)
        #expect(try Threshold(parsing: "event.max<1s").failsForGood)
        #expect(try Threshold(parsing: "streams.held>=99%").failsForGood)
        #expect(try !Threshold(parsing: "event.p99<1s").failsForGood)
        #expect(try !Threshold(parsing: "events>=10").failsForGood)
        #expect(try !Threshold(parsing: "requests.rate>=10").failsForGood)
    }
}
