import HTTPServer

/// `rill serve`'s own counters, beside the HTTP server's.
struct ApplicationCounters {
    var publishes = 0
    var ticks = 0
    var notFound = 0
    var unauthorized = 0
    var badRequests = 0
    var topicsExhausted = 0
    var staticFiles = 0
    var staticFailures = 0
    /// Streams told they could not resume (`event: reset`), by reason.
    var replayResets: [StreamReset.Reason: Int] = [:]
}

/// The server's counters (the HTTP server's and the application's; the hub, the listener and the
/// loop keep theirs); `/metrics` and the error log read them all.
public struct ServerStatistics: Sendable {
    /// Connections accepted and held (not turned away).
    public var connectionsTotal = 0
    /// Connections turned away with 503 because the server was at `maximumConnections`.
    public var connectionsRejected = 0
    /// Times the listener left the SO_REUSEPORT group at the connection limit.
    public var listenerSheds = 0
    /// Complete requests answered (event streams included).
    public var requests = 0
    /// Events published through `POST /publish`, and by the demo ticker.
    public var publishes = 0
    public var ticks = 0
    /// Requests refused: unknown route, wrong method, missing token, bad query, too many topics.
    public var notFound = 0
    public var methodNotAllowed = 0
    public var unauthorized = 0
    public var badRequests = 0
    public var topicsExhausted = 0
    /// Malformed requests, by the status they got (400, 413, 414, 431, 501, 505).
    public var parseErrors: [Int: Int] = [:]
    /// Connections closed because a request did not arrive whole in time.
    public var headerTimeouts = 0
    /// Connections closed (408) because a request body fell behind `minimumBodyRate` or stalled.
    public var bodyTimeouts = 0
    /// Requests refused (503, close) because unfinished requests held `maximumPartialRequestBytes`.
    public var partialRequestsRefused = 0
    public var idleTimeouts = 0
    public var lingerTimeouts = 0
    /// Times a connection's pipelined requests were put off to the next loop turn because it had
    /// used up its share of this one (`maximumRequestsPerTurn`, `maximumResponseBytesPerTurn`).
    public var turnsYielded = 0
    /// Connections that ended in a reset or a socket error.
    public var resets = 0
    /// Files served from the static directory, and requests for it that failed (not found, too big).
    public var staticFiles = 0
    public var staticFailures = 0

    init(http: HTTPServer.Statistics, application: ApplicationCounters) {
        connectionsTotal = http.connectionsTotal
        connectionsRejected = http.connectionsRejected
        listenerSheds = http.listenerSheds
        requests = http.requests
        publishes = application.publishes
        ticks = application.ticks
        notFound = http.notFound + application.notFound
        methodNotAllowed = http.methodNotAllowed
        unauthorized = application.unauthorized
        badRequests = application.badRequests + http.expectationsFailed
        topicsExhausted = application.topicsExhausted
        parseErrors = http.parseErrors
        headerTimeouts = http.headerTimeouts
        bodyTimeouts = http.bodyTimeouts
        partialRequestsRefused = http.partialRequestsRefused
        idleTimeouts = http.idleTimeouts
        lingerTimeouts = http.lingerTimeouts
        turnsYielded = http.turnsYielded
        resets = http.resets
        staticFiles = application.staticFiles
        staticFailures = application.staticFailures
    }
}
