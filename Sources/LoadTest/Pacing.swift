/// Open-loop pacing: request k is due at `start + k / rate`, whatever happened to the others, and
/// its latency is measured from that intended time (no coordinated omission). Nanoseconds.
public struct OpenLoopSchedule: Sendable {
    public let start: UInt64
    /// Requests per second in total.
    public let rate: Double
    /// Stop after this many.
    public let limit: Int?

    public init(start: UInt64, rate: Double, limit: Int? = nil) {
        self.start = start
        self.rate = rate
        self.limit = limit
    }

    /// When request `index` is due.
    public func intended(_ index: Int) -> UInt64 { start + UInt64(Double(index) / rate * 1e9) }

    /// The intended time of request `index` if it is due by `now` (and within the limit), else nil.
    public func due(_ index: Int, now: UInt64) -> UInt64? {
        if let limit, index >= limit { return nil }
        let intended = intended(index)
        return intended <= now ? intended : nil
    }
}

/// The ramp: from `base` connections at `start`, `rate` more per second (0: all at once) up to `goal`.
public struct RampSchedule: Sendable {
    public let start: UInt64
    public let base: Int
    public let goal: Int
    public let rate: Double

    public init(start: UInt64, base: Int, goal: Int, rate: Double) {
        self.start = start
        self.base = base
        self.goal = goal
        self.rate = rate
    }

    /// Connections that may have been started by `now` (the first one at once).
    public func allowed(now: UInt64) -> Int {
        guard rate > 0 else { return goal }
        let elapsed = Double(now > start ? now - start : 0) / 1e9
        return min(goal, base + Int(elapsed * rate) + 1)
    }
}
