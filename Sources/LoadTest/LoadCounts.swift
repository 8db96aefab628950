import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with a connection or a request, by class: the report counts errors by these, and
/// `LoadLimit` reads the limit behind them. The description is the report's text for the class.
public indirect enum LoadErrorClass: Hashable, Codable, Sendable, CustomStringConvertible {
    case connectRefused
    case addressNotAvailable
    case connectTimeout
    case outOfFileDescriptors
    /// Another connect errno, with its text.
    case connectError(String)
    case resetByServer
    case closedByServer
    case socketError(String)
    case closedLocally
    /// A response with a status other than 2xx (SSE: other than 200).
    case status(Int)
    case malformedResponse
    /// SSE: a 200 whose Content-Type (its media type here; empty when there was none) is not
    /// text/event-stream.
    case notEventStream(String)
    /// An SSE stream silent for longer than two heartbeat intervals.
    case heartbeatsStopped
    /// A request in flight when its connection ended.
    case requestLost
    /// A worker process failed (it died, sent garbage or no result).
    case worker(Int, String)
    /// The same class, met by the publisher beside an SSE run.
    case publish(LoadErrorClass)

    /// The class of a connection that ended for `reason`.
    public init(_ reason: CloseReason) {
        switch reason {
        case .connectFailed(let error):
            switch error.errno {
            case ECONNREFUSED: self = .connectRefused
            case EADDRNOTAVAIL: self = .addressNotAvailable
            case ETIMEDOUT: self = .connectTimeout
            case EMFILE, ENFILE: self = .outOfFileDescriptors
            default: self = .connectError(error.description)
            }
        case .reset: self = .resetByServer
        case .eof: self = .closedByServer
        case .error(let error): self = .socketError(error.description)
        case .local: self = .closedLocally
        }
    }

    public var description: String {
        switch self {
        case .connectRefused: return "connect refused"
        case .addressNotAvailable: return "address not available"
        case .connectTimeout: return "connect timeout"
        case .outOfFileDescriptors: return "out of file descriptors"
        case .connectError(let error): return "connect error: \(error)"
        case .resetByServer: return "reset by server"
        case .closedByServer: return "closed by server"
        case .socketError(let error): return "socket error: \(error)"
        case .closedLocally: return "closed locally"
        case .status(let status): return "status \(status)"
        case .malformedResponse: return "malformed response"
        case .notEventStream(let type):
            return type.isEmpty
                ? "response has no Content-Type, not text/event-stream" : "response is \(type), not text/event-stream"
        case .heartbeatsStopped: return "heartbeats stopped (silent > 2 intervals)"
        case .requestLost: return "request lost with its connection"
        case .worker(let index, let why): return "worker \(index) \(why)"
        case .publish(let inner): return "publish: \(inner)"
        }
    }

    /// The class without the publisher's wrapping.
    public var underlying: LoadErrorClass {
        if case .publish(let inner) = self { return inner.underlying }
        return self
    }
}

/// The counts of a run, of one worker or of all: what a worker reports a few times a second (its
/// status), what it ends with (with its histograms, `LoadRecorder`), and what the coordinator sums.
/// One `merge` combines any two.
public struct LoadCounts: Codable, Equatable, Sendable {
    /// Connections started.
    public var attempted = 0
    /// Connections whose connect completed.
    public var opened = 0
    /// Connections that did not open.
    public var failed = 0
    /// SSE streams whose response head arrived and that are still open; HTTP connections open. At
    /// the end: those held.
    public var open = 0
    public var events = 0
    public var heartbeats = 0
    public var requests = 0
    public var bytesRead = 0
    /// Open streams that got fewer events than were published since they opened.
    public var gaps = 0
    /// Events published, as this worker last heard (merged: the most any heard).
    public var published = 0
    /// sse, reconnecting like `EventSource`: reconnections made (their response head arrived),
    /// attempts that failed (to be tried again), the most one stream made, `event: reset` openings
    /// (the server could not resume and said so: a new sequence, and the stream is no longer
    /// counted for gaps), events whose id was not after the stream's last, and streams that ever
    /// repeated an event or ended behind the publications without a reset (lost one silently).
    public var reconnects = 0
    public var reconnectFailures = 0
    public var mostReconnectsOfAStream = 0
    public var resets = 0
    public var duplicateEvents = 0
    public var streamsRepeated = 0
    public var streamsLost = 0
    /// sse, `--churn`: streams closed on purpose and reopened (their response head arrived).
    public var churned = 0
    /// sse, `--churn`: streams closed on purpose whose reopening is under way (held, for `streams.held`).
    public var reopening = 0
    /// Every connection asked for has opened or ended (merged: all have).
    public var settled = true
    public var errors: [LoadErrorClass: Int] = [:]
    /// RSS before the first connection, and with all of them open (merged: summed over processes).
    public var baselineBytes = 0
    public var residentBytes = 0
    /// http: seconds between the first connect and the stop (merged: the longest).
    public var activeSeconds = 0.0
    /// http: requests per second over `activeSeconds` (merged: summed, each worker over its own time).
    public var requestsPerSecond = 0.0

    public init() {}

    public mutating func merge(_ other: LoadCounts) {
        attempted += other.attempted
        opened += other.opened
        failed += other.failed
        open += other.open
        events += other.events
        heartbeats += other.heartbeats
        requests += other.requests
        bytesRead += other.bytesRead
        gaps += other.gaps
        published = max(published, other.published)
        reconnects += other.reconnects
        reconnectFailures += other.reconnectFailures
        mostReconnectsOfAStream = max(mostReconnectsOfAStream, other.mostReconnectsOfAStream)
        resets += other.resets
        duplicateEvents += other.duplicateEvents
        streamsRepeated += other.streamsRepeated
        streamsLost += other.streamsLost
        churned += other.churned
        reopening += other.reopening
        settled = settled && other.settled
        errors.merge(other.errors, uniquingKeysWith: +)
        baselineBytes += other.baselineBytes
        residentBytes += other.residentBytes
        activeSeconds = max(activeSeconds, other.activeSeconds)
        requestsPerSecond += other.requestsPerSecond
    }

    public func merged(_ other: LoadCounts) -> LoadCounts {
        var sum = self
        sum.merge(other)
        return sum
    }

    public mutating func error(_ kind: LoadErrorClass) {
        errors[kind, default: 0] += 1
    }

    public var errorCount: Int { errors.values.reduce(0, +) }

    /// "kind: count, …", most frequent first (ties by name, so the text is stable).
    public static func summary(_ errors: [LoadErrorClass: Int]) -> String {
        errors.map { ($0.key.description, $0.value) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            .map { "\($0.0): \($0.1)" }.joined(separator: ", ")
    }
}
