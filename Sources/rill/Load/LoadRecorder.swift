import Histogram
import Reactor

/// Everything a worker measures: latency histograms (microseconds), totals and errors by class.
/// Codable, so worker processes can hand theirs to the parent to merge.
struct LoadRecorder: Codable {
    var connect = LoadRecorder.histogram()
    var firstByte = LoadRecorder.histogram()
    var eventLatency = LoadRecorder.histogram()
    var requestLatency = LoadRecorder.histogram()

    var connectionsOpened = 0
    var connectionsFailed = 0
    var events = 0
    var heartbeats = 0
    var requests = 0
    var published = 0
    var bytesRead = 0
    var errors: [String: Int] = [:]
    /// For each stamped event (by its `t=` stamp): the latency of its last delivery, in µs. Workers'
    /// maps merge by maximum, so the figure is "until every client had it". Bounded (see `lastDelivery(_:)`).
    var lastDeliveries: [UInt64: UInt64] = [:]

    /// Events tracked for time-to-last; later ones only go into `eventLatency`.
    static let trackedEvents = 100_000

    /// Notes one delivery of the event stamped `stamp`, `latency` µs after it was stamped.
    mutating func delivered(stamp: UInt64, latency: UInt64) {
        eventLatency.record(latency)
        if let last = lastDeliveries[stamp] {
            if latency > last { lastDeliveries[stamp] = latency }
        } else if lastDeliveries.count < LoadRecorder.trackedEvents {
            lastDeliveries[stamp] = latency
        }
    }

    /// The time until the last client had each event, as a histogram (µs).
    var timeToLast: Histogram<UInt64> {
        var histogram = LoadRecorder.histogram()
        for latency in lastDeliveries.values { histogram.record(latency) }
        return histogram
    }

    /// One second of the run.
    struct Second: Codable {
        var second: Int
        var open: Int
        var events: Int
        var requests: Int
        var errors: Int
    }

    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    mutating func error(_ kind: String) {
        errors[kind, default: 0] += 1
    }

    var errorCount: Int { errors.values.reduce(0, +) }

    /// Opens connection number `index` (counted across workers) to `target`, round-robin over
    /// `sources`; a connection that cannot even start is counted as failed and nil is returned.
    mutating func connect(_ loop: EventLoop, to target: TargetURL, sources: [SocketAddress], index: Int,
                          handler: any ConnectionHandler, userData: UInt64) -> Connection? {
        let source = sources.isEmpty ? nil : sources[index % sources.count]
        do {
            return try loop.connect(to: target.address, from: source, handler: handler, userData: userData)
        } catch {
            connectionsFailed += 1
            self.error(errorClass(.connectFailed(error)))
            return nil
        }
    }

    /// A connection started at `started` (monotonic ns) is open.
    mutating func opened(startedAt started: UInt64) {
        connectionsOpened += 1
        connect.record((MonotonicClock.nanoseconds() - started) / 1_000)
    }

    /// Adds a worker's figures to these (`published` is the coordinator's, the same for all).
    mutating func merge(_ other: LoadRecorder) {
        connect.add(other.connect)
        firstByte.add(other.firstByte)
        eventLatency.add(other.eventLatency)
        requestLatency.add(other.requestLatency)
        connectionsOpened += other.connectionsOpened
        connectionsFailed += other.connectionsFailed
        events += other.events
        heartbeats += other.heartbeats
        requests += other.requests
        published = max(published, other.published)
        bytesRead += other.bytesRead
        for (kind, count) in other.errors { errors[kind, default: 0] += count }
        lastDeliveries.merge(other.lastDeliveries, uniquingKeysWith: max)
    }
}

/// The error class of a connection that ended, as the report names it.
func errorClass(_ reason: CloseReason) -> String {
    switch reason {
    case .connectFailed(let error):
        switch error.errno {
        case ECONNREFUSED: return "connect refused"
        case EADDRNOTAVAIL: return "address not available"
        case ETIMEDOUT: return "connect timeout"
        case EMFILE, ENFILE: return "out of file descriptors"
        default: return "connect error: \(error)"
        }
    case .reset: return "reset by server"
    case .eof: return "closed by server"
    case .error(let error): return "socket error: \(error)"
    case .local: return "closed locally"
    }
}

#if canImport(Glibc)
import Glibc
#endif
