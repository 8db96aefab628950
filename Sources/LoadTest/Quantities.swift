/// A count with an optional SI suffix: `500`, `10k`, `1.5M`.
public struct CountArgument: CustomStringConvertible, Sendable {
    public let value: Int

    public init(_ value: Int) { self.value = value }

    public init?(argument: String) {
        // Far below Int.max, so the conversion cannot trap.
        guard let scaled = CountArgument.scaled(argument), scaled < 1e18 else { return nil }
        value = Int(scaled.rounded())
    }

    /// A finite, non-negative number with an optional k (thousand) or M (million) suffix, in any
    /// case, fractions allowed (`2.5`, `1.5k`); nil for anything else.
    static func scaled(_ argument: String) -> Double? {
        var text = argument.lowercased()
        var scale = 1.0
        if text.hasSuffix("k") {
            scale = 1_000
            text.removeLast()
        } else if text.hasSuffix("m") {
            scale = 1_000_000
            text.removeLast()
        }
        guard let number = Double(text), number >= 0, number.isFinite, (number * scale).isFinite else { return nil }
        return number * scale
    }

    public var description: String { value >= 1_000 && value % 1_000 == 0 ? "\(value / 1_000)k" : "\(value)" }
}

/// A duration: `30s`, `1m`, `500ms`, `2h`, or a plain number of seconds.
public struct DurationArgument: CustomStringConvertible, Sendable {
    public let seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public init?(argument: String) {
        let text = argument.lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            seconds = number * scale
            return
        }
        guard let number = Double(text), number >= 0, number.isFinite else { return nil }
        seconds = number
    }

    public var duration: Duration { .nanoseconds(Int64(seconds * 1e9)) }
    public var description: String {
        seconds >= 60 && seconds.truncatingRemainder(dividingBy: 60) == 0 ? "\(Int(seconds / 60))m" : "\(seconds)s"
    }
}
