import Testing

@testable import LoadTest

@Suite struct HTMLReportTests {
    /// A report of `seconds` seconds holding `streams` streams, with events, latencies and a few errors.
    static func report(seconds: Int, streams: Int) -> LoadReport {
        var plan = LoadPlan(target: TargetURL("http://127.0.0.1:8080/sse?topic=<a>&b")!)
        plan.connections = streams
        var outcome = LoadOutcome()
        outcome.recorder.counts.opened = streams
        outcome.recorder.counts.open = streams
        for index in 0..<seconds {
            var second = LoadTimeline.Second(at: 1_800_000_000 + UInt64(index))
            second.open = min(streams, (index + 1) * streams / 10)
            second.opened = index < 10 ? streams / 10 : 0
            second.events = index >= 10 ? streams : 0
            for sample in 0..<50 { second.event.record(UInt64(1_000 + sample * 100 + index)) }
            if index % 7 == 3 { second.errors[.resetByServer] = 2 }
            if index == 5 { second.errors[.status(503)] = 1 }
            outcome.recorder.timeline.append(second)
        }
        outcome.recorder.counts.error(.resetByServer)
        return LoadReport(plan: plan, outcome: outcome)
    }

    /// One self-contained page: every chart has a line with points, nothing is fetched, text is escaped.
    @Test func pageIsSelfContainedWithDataInEveryChart() {
        let page = HTMLReport(HTMLReportTests.report(seconds: 30, streams: 1_000)).document
        #expect(page.hasPrefix("<!doctype html>"))
        let charts = page.components(separatedBy: "<figure class=\"chart\">").count - 1
        // Open, connect rate, events, event latency, errors; no connect latency chart without connect times.
        #expect(charts == 5)
        for figure in page.components(separatedBy: "<figure class=\"chart\">").dropFirst() {
            #expect(figure.contains("<polyline") && !figure.contains("data-points=\"0\""), "\(figure.prefix(200))")
        }
        #expect(page.contains("status 503") && page.contains("reset by server"))
        // No external resources: no src or href attributes, no url() in the style, no @import.
        for fetch in ["src=", "href=", "url(", "@import"] { #expect(!page.contains(fetch), "\(fetch)") }
        #expect(page.contains("topic=&lt;a&gt;&amp;b") && !page.contains("topic=<a>"))
    }

    /// An hour of a million streams draws at most `maximumPoints` per line and stays small.
    @Test func longRunsAreThinned() {
        let page = HTMLReport(HTMLReportTests.report(seconds: 3_600, streams: 1_000_000)).document
        let counts = page.components(separatedBy: "data-points=\"").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
        #expect(!counts.isEmpty && counts.allSatisfy { $0 <= SVGChart.maximumPoints }, "\(counts)")
        #expect(counts.contains(SVGChart.maximumPoints))
        #expect(page.utf8.count < 2_000_000, "\(page.utf8.count) bytes")
    }

    /// Axis tops are 1, 2 or 5 × 10^k; labels are short.
    @Test func axesUseRoundNumbers() {
        #expect(SVGChart.niceCeiling(0) == 1)
        #expect(SVGChart.niceCeiling(3) == 5)
        #expect(SVGChart.niceCeiling(120) == 200)
        #expect(SVGChart.niceCeiling(1_000) == 1_000)
        #expect(SVGChart.niceCeiling(0.3) == 0.5)
        #expect(SVGChart.label(1_500) == "1.5k" && SVGChart.label(2_000_000) == "2M" && SVGChart.label(0.25) == "0.25")
    }
}
