/// One line chart over the seconds of a run, as inline SVG (no script, no fonts: the HTML report
/// stays one self-contained file). Long runs are thinned to at most `maximumPoints` per line, each
/// point standing for a group of seconds (`Series.Fold` says how a group becomes one value), so a
/// day-long run draws as fast as a minute-long one.
struct SVGChart {
    struct Series {
        /// How seconds grouped into one point become its value.
        enum Fold { case last, mean, maximum }
        var name: String
        var color: String
        var values: [Double]
        var fold: Fold
    }

    var title: String
    var unit: String
    /// Seconds since the run's start, one per value of every series.
    var seconds: [Double]
    var series: [Series]

    static let maximumPoints = 1_200
    static let width = 960.0
    static let height = 240.0
    static let left = 70.0
    static let right = 150.0
    static let top = 28.0
    static let bottom = 30.0
    /// Colour-blind-safe (Okabe–Ito) palette.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

    var svg: String {
        let group = max(1, (seconds.count + SVGChart.maximumPoints - 1) / SVGChart.maximumPoints)
        let xs = SVGChart.fold(seconds, group: group, .mean)
        let lines = series.map { (series: $0, values: SVGChart.fold($0.values, group: group, $0.fold)) }
        let highest = lines.flatMap(\.values).filter { !$0.isNaN }.max() ?? 0
        let yStep = SVGChart.niceCeiling(highest / 4)
        let top = highest > 0 ? yStep * max(1, (highest / yStep).rounded(.up)) : 1
        let end = max(1, xs.last ?? 1)
        let xStep = max(1, SVGChart.niceCeiling(end / 8))
        let plotWidth = SVGChart.width - SVGChart.left - SVGChart.right
        let plotHeight = SVGChart.height - SVGChart.top - SVGChart.bottom
        func x(_ second: Double) -> Double { SVGChart.left + second / end * plotWidth }
        func y(_ value: Double) -> Double { SVGChart.top + plotHeight - (top > 0 ? value / top : 0) * plotHeight }

        var out = "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "
        out += "\(Int(SVGChart.width)) \(Int(SVGChart.height))\" role=\"img\" aria-label=\"\(HTMLText.escape(title))\">"
        out += "<text x=\"\(Int(SVGChart.left))\" y=\"18\" class=\"title\">\(HTMLText.escape(title))"
        out += " <tspan class=\"unit\">(\(HTMLText.escape(unit)))</tspan></text>"
        for value in stride(from: 0.0, through: top * 1.0001, by: highest > 0 ? yStep : 0.25) {
            let at = SVGChart.format(y(value))
            out += "<line class=\"grid\" x1=\"\(Int(SVGChart.left))\" x2=\"\(SVGChart.format(SVGChart.left + plotWidth))\" y1=\"\(at)\" y2=\"\(at)\"/>"
            out += "<text class=\"tick\" x=\"\(Int(SVGChart.left - 6))\" y=\"\(at)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(SVGChart.label(value))</text>"
        }
        for second in stride(from: 0.0, through: end, by: xStep) {
            out += "<text class=\"tick\" x=\"\(SVGChart.format(x(second)))\" y=\"\(Int(SVGChart.height - 10))\" text-anchor=\"middle\">\(SVGChart.label(second))s</text>"
        }
        for (index, line) in lines.enumerated() {
            // A second without a value (NaN: no latency measured) breaks the line.
            var segments: [[String]] = [[]]
            for (second, value) in zip(xs, line.values) {
                if value.isNaN {
                    if !segments[segments.count - 1].isEmpty { segments.append([]) }
                } else {
                    segments[segments.count - 1].append("\(SVGChart.format(x(second))),\(SVGChart.format(y(value)))")
                }
            }
            for points in segments where !points.isEmpty {
                // A lone point still shows, as a dot.
                let drawn = points.count == 1 ? [points[0], points[0].replacingFirstCoordinate(by: 4)] : points
                out += "<polyline class=\"series\" data-points=\"\(points.count)\" fill=\"none\" stroke=\"\(line.series.color)\" "
                out += "stroke-width=\"1.6\" stroke-linecap=\"round\" points=\"\(drawn.joined(separator: " "))\"/>"
            }
            let legendY = SVGChart.top + 14 + Double(index) * 16
            let legendX = SVGChart.width - SVGChart.right + 12
            out += "<rect x=\"\(SVGChart.format(legendX))\" y=\"\(SVGChart.format(legendY - 8))\" width=\"12\" height=\"4\" fill=\"\(line.series.color)\"/>"
            out += "<text class=\"legend\" x=\"\(SVGChart.format(legendX + 18))\" y=\"\(SVGChart.format(legendY))\">\(HTMLText.escape(line.series.name))</text>"
        }
        out += "</svg></figure>\n"
        return out
    }

    /// Groups of `group` values folded into one.
    static func fold(_ values: [Double], group: Int, _ fold: Series.Fold) -> [Double] {
        guard group > 1 else { return values }
        return stride(from: 0, to: values.count, by: group).map { start in
            let slice = values[start..<min(values.count, start + group)].filter { !$0.isNaN }
            if slice.isEmpty { return Double.nan }
            switch fold {
            case .last: return slice.last ?? 0
            case .mean: return slice.reduce(0, +) / Double(slice.count)
            case .maximum: return slice.max() ?? 0
            }
        }
    }

    /// The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing), the top of the y axis.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        while magnitude > value { magnitude /= 10 }
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    /// 12, 1.5k, 2M, 0.25: short axis labels.
    static func label(_ value: Double) -> String {
        func trimmed(_ number: Double) -> String {
            let rounded = (number * 100).rounded() / 100
            return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        }
        if value >= 1_000_000 { return trimmed(value / 1_000_000) + "M" }
        if value >= 1_000 { return trimmed(value / 1_000) + "k" }
        return trimmed(value)
    }

    /// A coordinate with one decimal: small files, no visible rounding.
    static func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
    }
}

/// Text made safe for HTML element content and attribute values.
enum HTMLText {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

extension String {
    /// "x,y" with x moved right by `delta` (a second point for a one-point line).
    fileprivate func replacingFirstCoordinate(by delta: Double) -> String {
        let parts = split(separator: ",")
        guard parts.count == 2, let x = Double(parts[0]) else { return self }
        return "\(SVGChart.format(x + delta)),\(parts[1])"
    }
}
