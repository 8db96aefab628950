/// Hands each accepted connection, as an `AsyncConnection`, to a new task isolated to it.
final class AsyncAcceptor: ConnectionHandler {
    typealias Handler = @Sendable (isolated AsyncConnection) async throws -> Void
    let configuration: AsyncConnection.Configuration
    let handler: Handler

    init(configuration: AsyncConnection.Configuration, handler: @escaping Handler) {
        self.configuration = configuration
        self.handler = handler
    }

    func connectionDidOpen(_ connection: Connection) {
        let async = AsyncConnection.adopt(connection, configuration: configuration, open: true)
        let handler = handler
        // The preference is what keeps the handler on the loop: a resumed continuation goes to the
        // task's preferred executor, the loop, where it is isolated already. Without one it would go
        // to the global pool and hop back (measured: twice the CPU per echoed message, 2 mallocs).
        Task(executorPreference: connection.loop.remote) { await async.serve(handler) }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        preconditionFailure("an accepted connection belongs to its AsyncConnection")
    }
}

extension AsyncConnection {
    /// Makes `connection`'s events go to a new `AsyncConnection`. Loop thread.
    static func adopt(_ connection: Connection, configuration: Configuration, open: Bool) -> AsyncConnection {
        let async = AsyncConnection(executor: connection.loop.remote, configuration: configuration)
        async.connection = connection
        connection.loop.setHandler(connection, async)
        if open { async.assumeIsolated { $0.didOpen() } }
        return async
    }

    /// Runs an accepting listener's handler, then closes the connection once its output is flushed.
    func serve(_ handler: AsyncAcceptor.Handler) async {
        do {
            try await handler(self)
        } catch {
            // The handler's error ends its connection; there is no one else to tell.
        }
        closeAfterFlush()
    }
}

extension EventLoop {
    /// Listens on `address`; every accepted connection becomes an `AsyncConnection` handed to
    /// `asyncHandler` in a task of its own, isolated to the connection (so on this loop's thread).
    /// When the handler returns or throws, the connection is closed after its output is flushed.
    public func listen(
        on address: SocketAddress, backlog: Int32 = 4096, reusePort: Bool = false, noDelay: Bool = true,
        configuration: AsyncConnection.Configuration = .init(),
        asyncHandler: @escaping @Sendable (isolated AsyncConnection) async throws -> Void
    ) throws(SystemError) -> Listener {
        try listen(
            on: address, backlog: backlog, reusePort: reusePort, noDelay: noDelay,
            handler: AsyncAcceptor(configuration: configuration, handler: asyncHandler))
    }

    /// Starts connecting to `address`; the result's `connected()` waits for the outcome.
    public func connectAsync(
        to address: SocketAddress, from source: SocketAddress? = nil, timeout: Duration? = .seconds(10),
        noDelay: Bool = true, configuration: AsyncConnection.Configuration = .init()
    ) throws(SystemError) -> AsyncConnection {
        let async = AsyncConnection(executor: remote, configuration: configuration)
        async.connection = try connect(to: address, from: source, timeout: timeout, noDelay: noDelay, handler: async)
        return async
    }

    /// Makes `handler` receive `connection`'s events from now on.
    func setHandler(_ connection: Connection, _ handler: any ConnectionHandler) {
        guard isCurrent(connection) else { return }
        slots[Int(connection.fd)].handler = handler
    }
}

extension EventLoopRemote {
    /// Connects to `address` from any task: the connect runs on the loop, and this returns once
    /// the connection is open. Throws `AsyncConnectionError.closed(.connectFailed)` if it failed.
    public func connect(
        to address: SocketAddress, configuration: AsyncConnection.Configuration = .init()
    ) async throws -> AsyncConnection {
        let async = try await submit { loop in try loop.connectAsync(to: address, configuration: configuration) }
        try await async.connected()
        return async
    }
}

extension AsyncConnection {
    /// Waits until an outgoing connection is open; throws `AsyncConnectionError.closed` if it failed.
    public func connected() async throws { try await opened() }
}
