/// `rill load --html FILE`: the report as one self-contained HTML page — inline CSS and SVG charts
/// over the run's seconds (streams open, connect rate, events or requests per second, latency
/// percentiles per second, errors by class), then the summary tables and the text report. No
/// network, no external scripts or fonts; a few lines of inline script only check, once the page is
/// laid out, that the charts drew lines (headless Chromium's `--dump-dom` shows the verdict; see
/// Scripts/html-report-check.sh). Its size grows with the run's seconds, never with its streams.
public struct HTMLReport {
    public let document: String

    public init(_ report: LoadReport) {
        let summary = report.json
        let seconds = report.timeline.seconds
        let start = seconds.first?.at ?? 0
        let xs = seconds.map { Double($0.at - start) }
        let sse = summary.mode == "sse"
        var charts: [SVGChart] = []
        func series(_ name: String, _ color: Int, _ fold: SVGChart.Series.Fold, _ value: (LoadTimeline.Second) -> Double)
            -> SVGChart.Series
        {
            SVGChart.Series(name: name, color: SVGChart.palette[color], values: seconds.map(value), fold: fold)
        }
        charts.append(
            SVGChart(
                title: sse ? "Streams open" : "Connections open", unit: "at the end of each second", seconds: xs,
                series: [series("open", 0, .last) { Double($0.open) }]))
        charts.append(
            SVGChart(
                title: "Connect rate", unit: "connections opened per second", seconds: xs,
                series: [series("opened/s", 2, .mean) { Double($0.opened) }]))
        charts.append(
            SVGChart(
                title: sse ? "Events received" : "Requests answered", unit: "per second", seconds: xs,
                series: [
                    sse
                        ? series("events/s", 0, .mean) { Double($0.events) }
                        : series("requests/s", 0, .mean) { Double($0.requests) }
                ]))
        let latencyKinds: [(String, KeyPath<LoadTimeline.Second, LatencyBuckets>)] = [
            (sse ? "Event latency" : "Request latency", sse ? \.event : \.request), ("Connect latency", \.connect)
        ]
        for (title, path) in latencyKinds where seconds.contains(where: { $0[keyPath: path].total > 0 }) {
            charts.append(
                SVGChart(
                    title: title, unit: "ms, per second", seconds: xs,
                    series: [("p50", 50.0, 2), ("p90", 90, 4), ("p99", 99, 1), ("max", 100, 6)].map {
                        (name, percent, color) in
                        series(name, color, .maximum) { second in
                            let buckets = second[keyPath: path]
                            return buckets.total > 0 ? Double(buckets.percentile(percent)) / 1_000 : .nan
                        }
                    }))
        }
        charts.append(HTMLReport.errorChart(seconds, xs))

        var page = HTMLReport.head(title: "rill load \(summary.mode) \(summary.url)")
        page += "<h1>rill load \(HTMLText.escape(summary.mode)) <code>\(HTMLText.escape(summary.url))</code></h1>\n"
        page += HTMLReport.verdict(report)
        page += HTMLReport.runTable(summary)
        page += "<section class=\"charts\">\n" + charts.map(\.svg).joined() + "</section>\n"
        page += HTMLReport.latencyTable(summary) + HTMLReport.errorTable(summary)
        page += "<h2>Text report</h2>\n<pre>" + HTMLText.escape(report.text) + "</pre>\n"
        page += "<p id=\"render-check\">charts not checked (scripts off)</p>\n"
        page += HTMLReport.renderCheck + "</body></html>\n"
        document = page
    }

    /// Errors per second by class: the six most frequent classes, the rest summed.
    static func errorChart(_ seconds: [LoadTimeline.Second], _ xs: [Double]) -> SVGChart {
        var totals: [LoadErrorClass: Int] = [:]
        for second in seconds { totals.merge(second.errors, uniquingKeysWith: +) }
        let ranked = totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.description < $1.key.description }
        let shown = ranked.prefix(6).map(\.key)
        var lines = shown.enumerated().map { (index, kind) in
            SVGChart.Series(
                name: String(kind.description.prefix(22)), color: SVGChart.palette[index],
                values: seconds.map { Double($0.errors[kind, default: 0]) }, fold: .mean)
        }
        if ranked.count > shown.count {
            let rest = Set(ranked.dropFirst(shown.count).map(\.key))
            lines.append(
                SVGChart.Series(
                    name: "other", color: SVGChart.palette[6],
                    values: seconds.map { second in Double(second.errors.filter { rest.contains($0.key) }.values.reduce(0, +)) },
                    fold: .mean))
        }
        if lines.isEmpty {
            lines = [SVGChart.Series(name: "none", color: SVGChart.palette[2], values: xs.map { _ in 0 }, fold: .mean)]
        }
        return SVGChart(title: "Errors by class", unit: "per second", seconds: xs, series: lines)
    }

    static func verdict(_ report: LoadReport) -> String {
        if let failure = report.failure {
            return "<p class=\"verdict fail\">✗ FAILED: \(HTMLText.escape(failure))</p>\n"
        }
        return "<p class=\"verdict pass\">✓ every connection opened and held, nothing lost, no request failed</p>\n"
    }

    static func runTable(_ summary: LoadReport.Document) -> String {
        var rows: [(String, String)] = [
            ("started", summary.startedAt ?? "-"), ("ended", summary.endedAt ?? "-"),
            ("connections asked", String(summary.connections)), ("opened", String(summary.opened)),
            ("failed", String(summary.failed)), ("held at the end", String(summary.heldAtEnd)),
            ("ramp", String(format2(summary.rampSeconds)) + " s"), ("hold", format2(summary.holdSeconds) + " s"),
            ("processes (workers and agents)", String(summary.workers)),
            ("source addresses", String(summary.sourceAddresses)),
        ]
        if summary.mode == "sse" {
            rows += [
                ("events published", String(summary.published)), ("events received", String(summary.events)),
                ("streams with gaps", String(summary.streamsWithGaps)), ("heartbeats", String(summary.heartbeats)),
            ]
        } else {
            rows += [
                ("requests", String(summary.requests)), ("requests/s", format2(summary.requestsPerSecond)),
            ]
        }
        if summary.residentBytes > 0 {
            rows.append(("generator memory (RSS, all processes)", format2(Double(summary.residentBytes) / 1e6) + " MB"))
        }
        if let maximum = summary.maximumHeld { rows.append(("most streams held cleanly", String(maximum))) }
        var out = "<h2>Run</h2>\n<table class=\"run\">"
        for (name, value) in rows { out += "<tr><th>\(HTMLText.escape(name))</th><td>\(HTMLText.escape(value))</td></tr>" }
        return out + "</table>\n"
    }

    static func latencyTable(_ summary: LoadReport.Document) -> String {
        var out = "<h2>Latency (whole run)</h2>\n<table class=\"numbers\"><tr><th></th><th>p50</th><th>p90</th>"
        out += "<th>p99</th><th>p99.9</th><th>max</th><th>count</th></tr>"
        for (name, value) in summary.latencyMicroseconds.sorted(by: { $0.key < $1.key }) {
            let cells = [value.p50, value.p90, value.p99, value.p999, value.max].map(LoadReport.milliseconds)
            out += "<tr><th>\(HTMLText.escape(name))</th>" + cells.map { "<td>\($0)</td>" }.joined()
            out += "<td>\(value.count)</td></tr>"
        }
        return out + "</table>\n"
    }

    static func errorTable(_ summary: LoadReport.Document) -> String {
        guard !summary.errors.isEmpty else { return "<h2>Errors</h2>\n<p>none</p>\n" }
        var out = "<h2>Errors</h2>\n<table class=\"numbers\"><tr><th>class</th><th>count</th></tr>"
        for (name, count) in summary.errors.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            out += "<tr><th>\(HTMLText.escape(name))</th><td>\(count)</td></tr>"
        }
        return out + "</table>\n"
    }

    static func format2(_ value: Double) -> String {
        let hundredths = (value * 100).rounded() / 100
        return String(hundredths)
    }

    static func head(title: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLText.escape(title))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
        h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
        .verdict { font-weight: bold; padding: 6px 10px; border-radius: 4px; }
        .pass { background: #e3f4ea; } .fail { background: #fbe4e0; }
        table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
        th { text-align: left; font-weight: 600; } .numbers td { text-align: right; font-variant-numeric: tabular-nums; }
        figure.chart { margin: 12px 0; } svg { width: 100%; height: auto; background: #fff; border: 1px solid #e4e4e4; }
        svg .title { font-size: 14px; font-weight: 600; } svg .unit { font-weight: normal; fill: #666; }
        svg .tick, svg .legend { font-size: 11px; fill: #444; } svg .grid { stroke: #eee; }
        pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
        </style></head><body>

        """
    }

    /// Once laid out: how many charts drew a line with width, written where `--dump-dom` shows it.
    static let renderCheck = """
        <script>
        addEventListener('load', function () {
          var charts = document.querySelectorAll('figure.chart svg'), drawn = 0, points = 0;
          charts.forEach(function (svg) {
            var ok = false;
            svg.querySelectorAll('polyline.series').forEach(function (line) {
              points += line.points.numberOfItems;
              if (line.getBBox().width > 0) ok = true;
            });
            if (ok) drawn++;
          });
          var check = document.getElementById('render-check');
          check.textContent = 'charts drawn: ' + drawn + ' of ' + charts.length + ', points: ' + points;
          check.dataset.drawn = drawn; check.dataset.charts = charts.length;
        });
        </script>

        """
}
