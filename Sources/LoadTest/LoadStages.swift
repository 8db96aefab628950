/// One stage of a run, as k6 has them: move linearly from the level the previous stage ended at
/// (0 before the first) to `target` over `duration`. The level is streams held (sse) or requests or
/// events per second (http, publish). `30s:10k` ramps to 10,000 in 30 s; `5m:10k` after it holds for
/// 5 minutes; `30s:0` ramps down; `0s:50` jumps.
public struct LoadStage: Codable, Equatable, Sendable, CustomStringConvertible {
    public var seconds: Double
    public var target: Double

    public init(seconds: Double, target: Double) {
        self.seconds = seconds
        self.target = target
    }

    /// Parses `DURATION:TARGET`, e.g. `30s:10k`, `1m30s` is not accepted (one unit: 90s).
    public init(parsing text: String) throws(StageError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .notDurationColonTarget(text) }
        guard let duration = DurationArgument(argument: String(parts[0]).trimmingSpaces),
            duration.seconds <= LoadStage.longest
        else { throw .badDuration(text) }
        guard let target = LoadStage.number(String(parts[1]).trimmingSpaces) else { throw .badTarget(text) }
        seconds = duration.seconds
        self.target = target
    }

    /// A week, as every duration flag of `rill`.
    static let longest: Double = 7 * 86_400

    /// A non-negative number with an optional k or M suffix, fractions allowed (`2.5`, `1.5k`),
    /// below a trillion.
    static func number(_ text: String) -> Double? {
        guard let value = CountArgument.scaled(text), value < 1e12 else { return nil }
        return value
    }

    public var description: String {
        let target = self.target.rounded() == self.target ? String(Int(self.target)) : String(self.target)
        let duration =
            seconds.rounded() == seconds
            ? (seconds >= 60 && Int(seconds) % 60 == 0 ? "\(Int(seconds) / 60)m" : "\(Int(seconds))s")
            : "\(Int((seconds * 1000).rounded()))ms"
        return "\(duration):\(target)"
    }
}

/// Why a `--stage` (or a scenario stage) is refused.
public enum StageError: Error, Equatable, CustomStringConvertible {
    case notDurationColonTarget(String)
    case badDuration(String)
    case badTarget(String)

    public var description: String {
        switch self {
        case .notDurationColonTarget(let text):
            return "stage '\(text)' must be DURATION:TARGET, e.g. 30s:10k (ramp to 10,000 over 30 s)"
        case .badDuration(let text):
            return "stage '\(text)': the duration must be a number with ms, s, m or h (30s, 5m), at most a week"
        case .badTarget(let text):
            return "stage '\(text)': the target must be a number of at least 0, k and M suffixes accepted (10k)"
        }
    }
}

extension [LoadStage] {
    /// Seconds from the first stage's start to the last one's end.
    public var totalSeconds: Double { reduce(0) { $0 + $1.seconds } }
    /// The highest level any stage reaches.
    public var peak: Double { map(\.target).max() ?? 0 }

    /// The level `elapsed` seconds after the first stage started (the last target after the end).
    public func level(at elapsed: Double) -> Double {
        var from = 0.0
        var start = 0.0
        for stage in self {
            if elapsed < start + stage.seconds {
                return from + (stage.target - from) * (elapsed - start) / stage.seconds
            }
            start += stage.seconds
            from = stage.target
        }
        return from
    }
}

/// A level over time in straight segments, on the monotonic clock (ns): built one segment at a time
/// as the coordinator announces each stage. For streams the level is how many to hold; for
/// requests it is a rate, and its integral says when request k is due (open loop, latency from that
/// intended time).
public struct LevelSchedule: Sendable {
    struct Segment: Sendable {
        var start: UInt64
        var nanoseconds: UInt64
        var from: Double
        var to: Double
        /// The integral (rate × seconds) of every earlier segment and the flat spans between them.
        var countBefore: Double
    }

    private var segments: [Segment] = []

    public init() {}

    /// From the level at `now` to `target` over `seconds` (0: a jump).
    public mutating func move(to target: Double, over seconds: Double, at now: UInt64) {
        let count = self.count(at: now)
        let from = level(at: now)
        // Later segments than `now` (announced early) give way to this one.
        segments.removeAll { $0.start > now }
        segments.append(
            Segment(
                start: now, nanoseconds: UInt64(max(0, seconds) * 1e9), from: from, to: target, countBefore: count))
    }

    /// The level at `now` (0 before the first segment; the last target after the end).
    public func level(at now: UInt64) -> Double {
        guard let segment = segments.last(where: { $0.start <= now }) else { return 0 }
        let elapsed = now - segment.start
        guard elapsed < segment.nanoseconds else { return segment.to }
        return segment.from + (segment.to - segment.from) * Double(elapsed) / Double(segment.nanoseconds)
    }

    /// The integral of the level (a rate per second) from the first segment to `now`.
    public func count(at now: UInt64) -> Double {
        guard let segment = segments.last(where: { $0.start <= now }) else { return 0 }
        return segment.countBefore + LevelSchedule.area(segment, elapsed: Double(now - segment.start) / 1e9)
    }

    /// The area under `segment` over its first `elapsed` seconds (flat at `to` after its end).
    private static func area(_ segment: Segment, elapsed: Double) -> Double {
        let length = Double(segment.nanoseconds) / 1e9
        let ramp = min(elapsed, length)
        var area = segment.from * ramp
        if length > 0 { area += (segment.to - segment.from) * ramp * ramp / (2 * length) }
        return area + segment.to * max(0, elapsed - length)
    }

    /// When the count reaches `count` (monotonic ns), or nil if it does not by the schedule known now.
    public func time(ofCount count: Double) -> UInt64? {
        for (index, segment) in segments.enumerated() {
            let end = index + 1 < segments.count ? segments[index + 1].countBefore : Double.infinity
            guard count <= end else { continue }
            let needed = max(0, count - segment.countBefore)
            guard let seconds = LevelSchedule.seconds(toCover: needed, segment) else { return nil }
            return segment.start + UInt64(seconds * 1e9)
        }
        return nil
    }

    /// Seconds into `segment` until its area is `needed`: a quadratic on the ramp, linear after it.
    private static func seconds(toCover needed: Double, _ segment: Segment) -> Double? {
        let length = Double(segment.nanoseconds) / 1e9
        let rampArea = length * (segment.from + segment.to) / 2
        if needed <= rampArea && length > 0 {
            // from·t + (to − from)·t²/(2L) = needed
            let a = (segment.to - segment.from) / (2 * length)
            let b = segment.from
            if abs(a) < 1e-12 { return b > 0 ? needed / b : (needed == 0 ? 0 : nil) }
            let discriminant = b * b + 4 * a * needed
            guard discriminant >= 0 else { return nil }
            return (-b + discriminant.squareRoot()) / (2 * a)
        }
        guard segment.to > 0 else { return nil }
        return length + (needed - rampArea) / segment.to
    }

    /// Requests due by `now` under this rate schedule, and the intended time of number `index` (0-based:
    /// request k is due when the count reaches k + 1), if it is due.
    public func due(_ index: Int, now: UInt64) -> UInt64? {
        guard let time = time(ofCount: Double(index + 1)), time <= now else { return nil }
        return time
    }
}
