import Histogram
import Reactor

/// Everything a worker measures: its counts, latency histograms (microseconds) and the time until
/// the last client had each event. Codable, so worker processes hand theirs to the parent to merge.
public struct LoadRecorder: Codable {
    public var counts = LoadCounts()
    public var connect = LoadRecorder.histogram()
    public var firstByte = LoadRecorder.histogram()
    public var eventLatency = LoadRecorder.histogram()
    public var requestLatency = LoadRecorder.histogram()
    /// sse: from a stream's end to its reconnection's response head (the retry delay included).
    public var reconnectLatency = LoadRecorder.histogram()
    /// sse, `--churn`: from closing a stream on purpose to its reopening's response head.
    public var churnLatency = LoadRecorder.histogram()
    /// A scenario's publishers, apart from its HTTP groups' requests (`requestLatency`).
    public var publishLatency = LoadRecorder.histogram()
    /// For each stamped event (by its `t=` stamp): the latency of its last delivery, in µs. Workers'
    /// maps merge by maximum, so the figure is "until every client had it". Bounded (see `delivered`).
    public var lastDeliveries: [UInt64: UInt64] = [:]
    /// Second by second, for the HTML report (see `LoadTimeline`, `TimelineClock`).
    public var timeline = LoadTimeline()
    public var secondLatency = SecondLatency()

    public init() {}

    /// Events tracked for time-to-last; later ones only go into `eventLatency`.
    public static let trackedEvents = 100_000

    /// Notes one delivery of the event stamped `stamp`, `latency` µs after it was stamped.
    public mutating func delivered(stamp: UInt64, latency: UInt64) {
        eventLatency.record(latency)
        secondLatency.event.record(latency)
        if let last = lastDeliveries[stamp] {
            if latency > last { lastDeliveries[stamp] = latency }
        } else if lastDeliveries.count < LoadRecorder.trackedEvents {
            lastDeliveries[stamp] = latency
        }
    }

    /// The time until the last client had each event, as a histogram (µs).
    public var timeToLast: Histogram<UInt64> {
        var histogram = LoadRecorder.histogram()
        for latency in lastDeliveries.values { histogram.record(latency) }
        return histogram
    }

    public static func histogram() -> Histogram<UInt64> {
        Histogram(
            lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    public mutating func error(_ kind: LoadErrorClass) { counts.error(kind) }

    /// Opens connection number `index` (counted across workers) to `target`, round-robin over
    /// `sources`; a connection that cannot even start is counted as failed and nil is returned.
    mutating func connect(
        _ loop: EventLoop, to target: TargetURL, sources: [SocketAddress], index: Int,
        handler: any ConnectionHandler, userData: UInt64
    ) -> Connection? {
        let source = sources.isEmpty ? nil : sources[index % sources.count]
        do {
            return try loop.connect(to: target.address, from: source, handler: handler, userData: userData)
        } catch {
            counts.failed += 1
            self.error(LoadErrorClass(.connectFailed(error)))
            return nil
        }
    }

    /// A connection started at `started` (monotonic ns) is open.
    mutating func opened(startedAt started: UInt64) {
        counts.opened += 1
        let latency = (MonotonicClock.nanoseconds() - started) / 1_000
        connect.record(latency)
        secondLatency.connect.record(latency)
    }

    /// A request answered `latency` µs after it was due.
    mutating func answered(latency: UInt64) {
        requestLatency.record(latency)
        secondLatency.request.record(latency)
    }

    /// Adds another worker's figures to these.
    public mutating func merge(_ other: LoadRecorder) {
        counts.merge(other.counts)
        connect.add(other.connect)
        firstByte.add(other.firstByte)
        eventLatency.add(other.eventLatency)
        requestLatency.add(other.requestLatency)
        reconnectLatency.add(other.reconnectLatency)
        churnLatency.add(other.churnLatency)
        publishLatency.add(other.publishLatency)
        lastDeliveries.merge(other.lastDeliveries, uniquingKeysWith: max)
        timeline.merge(other.timeline)
    }
}

/// One second of the run, in the report's series.
public struct LoadSecond: Codable, Equatable, Sendable {
    public var second: Int
    public var open: Int
    public var events: Int
    public var requests: Int
    public var errors: Int

    public init(second: Int, open: Int, events: Int, requests: Int, errors: Int) {
        self.second = second
        self.open = open
        self.events = events
        self.requests = requests
        self.errors = errors
    }
}
