import Reactor

/// One connection to Redis on an `EventLoop`, kept up: pipelined commands whose replies are matched
/// to their callbacks in order (Redis answers in order), reconnection with exponential backoff on the
/// loop's timers, and a callback on each change between connected and lost. Loop-confined; every
/// callback runs on the loop.
///
/// A command sent while not connected fails at once with `.notConnected` (from a posted task, never
/// from inside `send`): the caller decides whether to wait or refuse, nothing piles up unseen. When
/// the connection is lost every pending command fails with `.connectionLost`; one that waits past its
/// timeout closes the connection (`.timeout`), since a silent server (stopped, partitioned) would
/// otherwise hold every later reply too.
public final class RedisConnection: ConnectionHandler {
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        public var connectTimeout: Duration = .seconds(2)
        /// How long a reply may take (a blocking command adds its own block time).
        public var commandTimeout: Duration = .seconds(3)
        /// First reconnection delay, doubled after each failure up to `maximumBackoff`.
        public var minimumBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(2)
        public var limits = RESPDecoder.Limits()

        public init(endpoint: RedisEndpoint) { self.endpoint = endpoint }
    }

    public typealias Reply = (Result<RESPValue, RedisError>) -> Void

    public let configuration: Configuration
    public private(set) var isConnected = false
    /// Attempts that failed since the last successful connection.
    public private(set) var consecutiveFailures = 0
    /// Why the last attempt or connection ended, for logs.
    public private(set) var lastError: String?
    /// Called with true once connected (after SELECT, if any), false when that connection is lost.
    public var onStateChange: ((Bool) -> Void)?
    /// Called after each failed connection attempt (the first one tells a starting server Redis is
    /// unreachable).
    public var onConnectFailure: ((String) -> Void)?

    private let loop: EventLoop
    private var connection: Connection?
    private var decoder: RESPDecoder
    /// Replies awaited, oldest first, from `pendingHead` on; a nil reply is one this object consumes
    /// (its SELECT).
    private var pending: [(reply: Reply?, deadline: UInt64)] = []
    private var pendingHead = 0
    private var output: [UInt8] = []
    private var reconnectTimer: TimerID?
    private var watchdog: TimerID?
    private var running = false

    public init(loop: EventLoop, configuration: Configuration) {
        self.loop = loop
        self.configuration = configuration
        decoder = RESPDecoder(limits: configuration.limits)
    }

    deinit {
        if let reconnectTimer { loop.cancel(reconnectTimer) }
        if let watchdog { loop.cancel(watchdog) }
    }

    /// Connects, and keeps reconnecting until `stop`.
    public func start() {
        guard !running else { return }
        running = true
        let tick = max(min(configuration.commandTimeout / 4, .milliseconds(250)), .milliseconds(10))
        watchdog = loop.scheduleRepeating(every: tick) { [unowned self] in self.checkDeadlines() }
        attempt()
    }

    /// Closes the connection (pending commands fail) and stops reconnecting.
    public func stop() {
        running = false
        if let reconnectTimer { loop.cancel(reconnectTimer) }
        if let watchdog { loop.cancel(watchdog) }
        reconnectTimer = nil
        watchdog = nil
        connection?.close()
    }

    /// Commands awaiting their replies.
    public var pendingCount: Int { pending.count - pendingHead }

    /// Sends a command (name first); `reply` runs on the loop with its reply, an error reply as
    /// `.failure(.server)`, or why none came. `extraTime` lengthens the timeout (a blocking command).
    public func send(_ arguments: [[UInt8]], extraTime: Duration = .zero, _ reply: @escaping Reply) {
        guard isConnected, let connection else {
            loop.runSoon { reply(.failure(.notConnected)) }
            return
        }
        output.removeAll(keepingCapacity: true)
        RESPEncoder.append(command: arguments, to: &output)
        pending.append((reply, deadline(after: configuration.commandTimeout + extraTime)))
        connection.write(output)
    }

    /// `send` with text arguments.
    public func send(_ arguments: [String], extraTime: Duration = .zero, _ reply: @escaping Reply) {
        send(arguments.map { Array($0.utf8) }, extraTime: extraTime, reply)
    }

    // MARK: - Connecting

    private func attempt() {
        reconnectTimer = nil
        guard running else { return }
        do {
            connection = try loop.connect(
                to: configuration.endpoint.address, timeout: configuration.connectTimeout, handler: self)
        } catch {
            failed("\(error)")
        }
    }

    /// An attempt or a connection ended: reports it and schedules the next attempt.
    private func failed(_ reason: String) {
        lastError = reason
        consecutiveFailures += 1
        onConnectFailure?(reason)
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard running, reconnectTimer == nil else { return }
        let exponent = min(consecutiveFailures - 1, 20)
        var delay = configuration.minimumBackoff * (1 << max(exponent, 0))
        if delay > configuration.maximumBackoff { delay = configuration.maximumBackoff }
        reconnectTimer = loop.schedule(after: delay) { [unowned self] in self.attempt() }
    }

    public func connectionDidOpen(_ connection: Connection) {
        decoder = RESPDecoder(limits: configuration.limits)
        let database = configuration.endpoint.database
        if database != 0 {
            output.removeAll(keepingCapacity: true)
            RESPEncoder.append(command: [Array("SELECT".utf8), Array(String(database).utf8)], to: &output)
            pending.append((nil, deadline(after: configuration.commandTimeout)))
            connection.write(output)
        } else {
            becameConnected()
        }
    }

    private func becameConnected() {
        isConnected = true
        consecutiveFailures = 0
        onStateChange?(true)
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        decoder.append(bytes)
        while connection.isOpen {
            switch decoder.next() {
            case .needMore:
                return
            case .failure(let error):
                lastError = error.description
                connection.close()
                return
            case .value(let value):
                guard pendingHead < pending.count else {
                    lastError = "a reply nobody asked for"
                    connection.close()
                    return
                }
                let reply = pending[pendingHead].reply
                pendingHead += 1
                compactPending()
                if let reply {
                    if case .error(let message) = value { reply(.failure(.server(message))) } else { reply(.success(value)) }
                } else if case .error(let message) = value {
                    lastError = "SELECT \(configuration.endpoint.database): \(message)"
                    connection.close()
                } else {
                    becameConnected()
                }
            }
        }
    }

    public func connectionDidReadEOF(_ connection: Connection) {
        lastError = "closed by Redis"
        connection.close()
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        guard connection == self.connection else { return }
        self.connection = nil
        let wasConnected = isConnected
        isConnected = false
        let failedReplies = pending[pendingHead...].compactMap(\.reply)
        let timedOut = lastError == RedisError.timeout.description
        pending.removeAll()
        pendingHead = 0
        for reply in failedReplies { reply(.failure(timedOut ? .timeout : .connectionLost)) }
        if case .local = reason {} else { lastError = reason.description }
        if wasConnected { onStateChange?(false) }
        if case .connectFailed(let error) = reason {
            failed("\(error)")
        } else {
            consecutiveFailures = max(consecutiveFailures, 1)
            scheduleReconnect()
        }
    }

    // MARK: - Timeouts

    private func deadline(after delay: Duration) -> UInt64 {
        // The loop's `now` counts milliseconds.
        loop.now &+ UInt64(max(delay.components.seconds, 0)) &* 1000
            &+ UInt64(max(delay.components.attoseconds, 0) / 1_000_000_000_000_000)
    }

    private func checkDeadlines() {
        guard let connection, pendingHead < pending.count, pending[pendingHead].deadline <= loop.now else { return }
        lastError = RedisError.timeout.description
        connection.close()
    }

    private func compactPending() {
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead >= 64 && pendingHead * 2 >= pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }
}
