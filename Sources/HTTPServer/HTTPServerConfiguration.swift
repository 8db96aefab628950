import HTTP1
import Reactor

extension HTTPServer {
    /// Where an `HTTPServer` listens and every limit and timeout it enforces. The defaults are
    /// those of `rill serve`: tens of thousands of idle streams, hostile clients bounded.
    public struct Configuration: Sendable {
        /// Where to listen (numeric IPv4; port 0 picks a free one).
        public var address = SocketAddress(ip: 0x7F00_0001, port: 8080)
        /// SO_REUSEPORT on the listener, so several processes share the address.
        public var reusePort = false
        /// Connections held at once (streams and requests alike); past it a new client gets 503 with
        /// `Retry-After`. nil: what the open-file limit allows, less `reservedDescriptors`.
        public var maximumConnections: Int? = nil
        /// Descriptors kept back from the open-file limit for the listener, the loop and files.
        public static let reservedDescriptors = 32
        /// `Access-Control-Allow-Origin` on every response; with it, OPTIONS on a routed path is
        /// answered as a CORS preflight. nil: no CORS headers.
        public var corsOrigin: String? = nil
        /// Header lines added to every event-stream head (after the standard ones).
        public var eventStreamHeaders: [(name: String, value: String)] = []
        /// A client that has not sent a whole request head this long after starting one is closed
        /// (with 408 if it sent anything).
        public var headerTimeout: Duration = .seconds(10)
        /// The longest a request body may stall (see `minimumBodyRate`), then 408 and close.
        public var bodyTimeout: Duration = .seconds(5)
        /// Bytes per second a request body must keep up: each body byte earns 1/rate seconds, up to
        /// `bodyTimeout` ahead of now. 0: the whole body within `bodyTimeout` of the head.
        public var minimumBodyRate = 16 << 10
        /// Bytes all unfinished requests may hold together (heads still arriving, collected bodies,
        /// counted from their Content-Length, pipelined requests waiting); past it, 503 and close.
        public var maximumPartialRequestBytes = 64 << 20
        /// A keep-alive connection with no request in progress is closed after this long.
        public var idleTimeout: Duration = .seconds(60)
        /// After a final response on a closing connection the server reads what the client still
        /// sends for this long before closing, so the client sees the response rather than a reset.
        public var lingerTimeout: Duration = .seconds(2)
        /// Pipelined requests answered on one connection per loop turn before it yields.
        public var maximumRequestsPerTurn = 32
        /// Response bytes written to one connection per loop turn before it yields.
        public var maximumResponseBytesPerTurn = 64 << 10
        /// Response bytes written per loop turn to all connections together.
        public var maximumResponseBytesPerLoopTurn = 512 << 10
        /// Parser limits (request line, headers, body: 413 past `body`).
        public var limits = HTTPLimits()

        public init() {}

        /// The defaults, listening on `address`.
        public init(address: SocketAddress) {
            self.address = address
        }

        var timeouts: ConnectionStateMachine.Timeouts {
            ConnectionStateMachine.Timeouts(
                header: UInt32(clamping: headerTimeout.millisecondsRoundedUp),
                idle: UInt32(clamping: idleTimeout.millisecondsRoundedUp),
                linger: UInt32(clamping: lingerTimeout.millisecondsRoundedUp),
                body: UInt32(clamping: bodyTimeout.millisecondsRoundedUp),
                bodyRate: UInt32(clamping: max(0, minimumBodyRate)))
        }
    }

    /// The server's own counters (a hub, the listener and the loop keep theirs).
    public struct Statistics: Sendable {
        /// Connections accepted and held (not turned away).
        public var connectionsTotal = 0
        /// Connections turned away with 503 because the server was at `maximumConnections`.
        public var connectionsRejected = 0
        /// Times the listener left the SO_REUSEPORT group at the limit (see `shedListenerIfFull`).
        public var listenerSheds = 0
        /// Complete requests given to a handler or answered by the router.
        public var requests = 0
        /// Requests the router refused: no route (404), no route for the method (405).
        public var notFound = 0
        public var methodNotAllowed = 0
        /// Requests with an `Expect` the server does not meet (417).
        public var expectationsFailed = 0
        /// Malformed requests, by the status they got (400, 413, 414, 431, 501, 505).
        public var parseErrors: [Int: Int] = [:]
        /// Connections closed because a request head did not arrive whole in time.
        public var headerTimeouts = 0
        /// Connections closed (408) because a request body fell behind `minimumBodyRate` or stalled.
        public var bodyTimeouts = 0
        /// Requests refused (503, close) because unfinished requests held `maximumPartialRequestBytes`.
        public var partialRequestsRefused = 0
        public var idleTimeouts = 0
        public var lingerTimeouts = 0
        /// Times a connection's pipelined requests were put off to the next loop turn.
        public var turnsYielded = 0
        /// Connections that ended in a reset or a socket error.
        public var resets = 0
    }
}
