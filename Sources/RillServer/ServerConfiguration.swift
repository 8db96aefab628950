import HTTP1
import HTTPServer
import Reactor
import SSE
import SSEHub

/// Everything `rill serve` can be told. The defaults suit tens of thousands of idle subscribers.
public struct ServerConfiguration: Sendable {
    /// Where to listen (numeric IPv4; port 0 picks a free one).
    public var address = SocketAddress(ip: 0x7F00_0001, port: 8080)
    /// Hub settings: heartbeat interval, history bounds, slow-subscriber limit.
    public var hub = Hub.Configuration()
    /// The memory engine's epoch: ids start after it (`hub.sequenceBase`, and the supervisor's
    /// sequence under `--workers`), and a decimal Last-Event-ID at or below it is from an earlier
    /// start, answered with `event: reset` (reason `epoch`). `rill serve` sets it per start
    /// (`epochBase(nanoseconds:)`); nil: ids start at 1, unchecked.
    public var epochBase: UInt64? = nil

    /// A per-start epoch base: milliseconds since 2025-01-01 times 1,000. A start's ids stay below
    /// the next start's base unless it published more than a million events per second on average
    /// over its whole life; and ids keep to 15 digits (until 2056), a small string that costs no
    /// allocation per event.
    public static func epochBase(nanoseconds: UInt64) -> UInt64 {
        let since2025 = 1_735_689_600_000 as UInt64
        return (max(nanoseconds / 1_000_000, since2025 + 1) - since2025) * 1_000
    }
    /// Connections held at once (streams and requests alike); past it a new client gets 503 with
    /// `Retry-After`. nil: what the open-file limit allows, less `reservedDescriptors`.
    public var maximumConnections: Int? = nil
    /// Descriptors kept back from the open-file limit for the listener, the loop and static files.
    public static let reservedDescriptors = HTTPServer.Configuration.reservedDescriptors
    /// How often the demo ticker publishes the server time to topic `time`; nil or zero: off.
    public var tick: Duration? = .seconds(1)
    /// Directory served under `/static/`; nil: the route is off (404).
    public var staticDirectory: String? = nil
    /// `Access-Control-Allow-Origin` on every response (and preflight answers); nil: no CORS headers.
    public var corsOrigin: String? = nil
    /// Required as `Authorization: Bearer <token>` on `POST /publish`; nil: publishing is open.
    public var publishToken: String? = nil
    /// A client that has not sent a whole request head this long after starting one is closed
    /// (with 408 if it sent anything). The body, if any, has its own deadline: `bodyTimeout` and
    /// `minimumBodyRate`.
    public var headerTimeout: Duration = .seconds(10)
    /// The longest a request body may stall: after the head, and after the latest body bytes, it
    /// has this long (plus the credit its bytes earned, see `minimumBodyRate`) before 408 and close.
    public var bodyTimeout: Duration = .seconds(5)
    /// Bytes per second a request body must keep up: each body byte earns 1/rate seconds, up to
    /// `bodyTimeout` ahead of now, so a body trickled in slower than this is closed (408) within
    /// about `bodyTimeout` of falling behind, however long the header timeout. 0: no credit, the
    /// whole body within `bodyTimeout` of the head.
    public var minimumBodyRate = 16 << 10
    /// Bytes all unfinished requests may hold together (heads still arriving, bodies being
    /// collected, whose Content-Length is counted in full from the head, and pipelined requests
    /// waiting for their turn). A request that would pass it gets 503 with `Retry-After` and the
    /// connection closes, so memory stays bounded whatever the number of connections.
    public var maximumPartialRequestBytes = 64 << 20
    /// A keep-alive connection with no request in progress is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// After an error response (or a 503) the server shuts down its side and reads what the client
    /// still sends for this long before closing, so the client sees the response rather than a reset.
    public var lingerTimeout: Duration = .seconds(2)
    /// Pipelined requests answered on one connection per loop turn; past it, or once its responses
    /// of this turn reach `maximumResponseBytesPerTurn`, reading pauses and the rest waits for the
    /// next turn (or for the socket to drain), so that a client pipelining thousands of requests
    /// costs each turn a bounded amount of work and every other client is served in between.
    public var maximumRequestsPerTurn = 32
    /// Response bytes (heads and bodies) written to one connection per loop turn, see above.
    /// A response is never split: the turn ends after the one that reaches the bound.
    public var maximumResponseBytesPerTurn = 64 << 10
    /// Response bytes written per loop turn to all connections together: past it, a connection
    /// with more pipelined requests yields after its current one, and connections that yielded
    /// earlier wait (in order) for a later turn, so that a thousand pipelining clients cannot make
    /// one turn (and so every event, heartbeat and new client) wait for all their shares.
    public var maximumResponseBytesPerLoopTurn = 512 << 10
    /// Parser limits; `body` bounds a published event's data (413 past it).
    public var limits = HTTPLimits()
    /// Distinct topics subscriptions may create, and, counted apart, distinct topics publications
    /// may create: clients naming new topics past it get 503, so a client cannot grow the server's
    /// tables without bound (the hub holds at most twice this). Apart, so that subscribers (who need
    /// no token) cannot use up the topics a publisher needs.
    public var maximumTopics = 10_000
    /// Topics one subscription may name.
    public var maximumTopicsPerSubscription = 16
    /// Largest file served from `staticDirectory`.
    public var maximumStaticFileBytes = 16 << 20
    /// How often error counts are logged (one line per error class that occurred); nil: never.
    public var logInterval: Duration? = .seconds(10)
    /// How log lines are written.
    public var logFormat = LogFormat.text

    /// SO_REUSEPORT on the listener, so several worker processes share the address.
    public var reusePort = false
    /// This process's index among `rill serve --workers` (sent as `X-Rill-Worker` on event streams).
    public var workerIndex: Int? = nil
    /// This loop's index among `rill serve --threads` (sent as `X-Rill-Thread` on event streams).
    public var threadIndex: Int? = nil
    /// The kernel's listen-queue counters at the start `/metrics` counts from (a supervisor's, so
    /// a restarted worker reports the same span); nil: this server's start.
    public var listenQueueBaseline: ListenQueueCounters? = nil

    public init() {}

    /// The HTTP server's part.
    var http: HTTPServer.Configuration {
        var http = HTTPServer.Configuration()
        http.address = address
        http.reusePort = reusePort
        http.maximumConnections = maximumConnections
        http.corsOrigin = corsOrigin
        if let workerIndex { http.eventStreamHeaders.append(("X-Rill-Worker", "\(workerIndex)")) }
        if let threadIndex { http.eventStreamHeaders.append(("X-Rill-Thread", "\(threadIndex)")) }
        http.headerTimeout = headerTimeout
        http.bodyTimeout = bodyTimeout
        http.minimumBodyRate = minimumBodyRate
        http.maximumPartialRequestBytes = maximumPartialRequestBytes
        http.idleTimeout = idleTimeout
        http.lingerTimeout = lingerTimeout
        http.maximumRequestsPerTurn = maximumRequestsPerTurn
        http.maximumResponseBytesPerTurn = maximumResponseBytesPerTurn
        http.maximumResponseBytesPerLoopTurn = maximumResponseBytesPerLoopTurn
        http.limits = limits
        return http
    }

    /// The topic of a subscription or publication that names none.
    public static let defaultTopic = "default"
    /// The topic the demo ticker publishes to.
    public static let tickTopic = "time"
}
