/// A run second by second, as a worker saw it and, merged, as the whole run did: streams open,
/// connections opened, events, requests, errors by class, and per-second latency buckets. Seconds
/// are keyed by CLOCK_REALTIME (whole seconds), so workers on other hosts line up as well as their
/// clocks agree. Made for the HTML report: one entry per second whatever the number of streams, so a
/// million-stream hour is 3,600 entries.
///
/// Distinct from `LoadSeries` (the coordinator's sampling of the workers' statuses for the JSON
/// `series`): this one is recorded inside each worker, with latencies, and travels in its result.
public struct LoadTimeline: Codable, Equatable, Sendable {
    /// One second of the run.
    public struct Second: Codable, Equatable, Sendable {
        /// CLOCK_REALTIME, whole seconds.
        public var at: UInt64
        /// Streams (sse) or connections (http) open at the end of the second.
        public var open = 0
        /// Connections whose connect completed during the second.
        public var opened = 0
        public var events = 0
        public var requests = 0
        public var errors: [LoadErrorClass: Int] = [:]
        public var connect = LatencyBuckets()
        public var event = LatencyBuckets()
        public var request = LatencyBuckets()

        public init(at: UInt64) { self.at = at }

        public mutating func merge(_ other: Second) {
            open += other.open
            opened += other.opened
            events += other.events
            requests += other.requests
            errors.merge(other.errors, uniquingKeysWith: +)
            connect.merge(other.connect)
            event.merge(other.event)
            request.merge(other.request)
        }

        public var errorCount: Int { errors.values.reduce(0, +) }
    }

    /// Ordered by `at`, one entry per second.
    public private(set) var seconds: [Second] = []

    public init() {}

    /// Adds `second` (a later one than any so far, or the same one again: then merged into it).
    public mutating func append(_ second: Second) {
        if let last = seconds.last, last.at >= second.at {
            merge(LoadTimeline(seconds: [second]))
        } else {
            seconds.append(second)
        }
    }

    init(seconds: [Second]) { self.seconds = seconds }

    /// Another worker's timeline added second by second.
    public mutating func merge(_ other: LoadTimeline) {
        guard !other.seconds.isEmpty else { return }
        guard !seconds.isEmpty else {
            seconds = other.seconds
            return
        }
        var merged: [Second] = []
        merged.reserveCapacity(max(seconds.count, other.seconds.count))
        var mine = seconds[...]
        var theirs = other.seconds[...]
        while let a = mine.first, let b = theirs.first {
            if a.at == b.at {
                var both = a
                both.merge(b)
                merged.append(both)
                mine = mine.dropFirst()
                theirs = theirs.dropFirst()
            } else if a.at < b.at {
                merged.append(a)
                mine = mine.dropFirst()
            } else {
                merged.append(b)
                theirs = theirs.dropFirst()
            }
        }
        merged += mine
        merged += theirs
        seconds = merged
    }
}

/// What a worker gathers for the second under way: the latencies as they happen (in its
/// `LoadRecorder`), and the cumulative counts at the last second's end, to take differences from.
public struct TimelineClock: Sendable {
    private var second: UInt64 = 0
    private var last = LoadCounts()

    public init() {}

    /// Whether the second under way has ended by `now` (whole CLOCK_REALTIME seconds).
    public func isDue(_ now: UInt64) -> Bool { second == 0 || now > second }

    /// At most once per wall-clock second (called often; cheap when the second has not changed):
    /// closes the second that ended into `recorder.timeline`, from the cumulative `status` and the
    /// latencies `recorder` gathered meanwhile. `force` closes the second under way (at the end).
    public mutating func tick(
        _ recorder: inout LoadRecorder, status: LoadCounts, wallSeconds now: UInt64, force: Bool = false
    ) {
        if second == 0 { second = now }
        guard now > second || force else { return }
        var entry = LoadTimeline.Second(at: second)
        entry.open = status.open
        entry.opened = status.opened - last.opened
        entry.events = status.events - last.events
        entry.requests = status.requests - last.requests
        for (kind, count) in status.errors {
            let change = count - last.errors[kind, default: 0]
            if change > 0 { entry.errors[kind] = change }
        }
        swap(&entry.connect, &recorder.secondLatency.connect)
        swap(&entry.event, &recorder.secondLatency.event)
        swap(&entry.request, &recorder.secondLatency.request)
        recorder.timeline.append(entry)
        last = status
        second = now
    }
}

/// The latencies recorded during the second under way (see `TimelineClock`).
public struct SecondLatency: Codable, Sendable {
    public var connect = LatencyBuckets()
    public var event = LatencyBuckets()
    public var request = LatencyBuckets()
    public init() {}
}
