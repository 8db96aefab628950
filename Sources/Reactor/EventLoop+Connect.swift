import CEpoll
#if canImport(Glibc)
import Glibc
#endif

extension EventLoop {
    /// Starts a non-blocking connect. The handler's `connectionDidOpen` is called once it completes;
    /// if it fails or `timeout` passes first, `connectionDidClose(.connectFailed(error))` is called
    /// instead. Bytes written before the connection opens are queued and sent once it does.
    /// - Parameters:
    ///   - source: a local address to bind first (port 0: the kernel picks the port at connect time,
    ///     thanks to IP_BIND_ADDRESS_NO_PORT, so ports are shared across destinations). Spreading
    ///     connections over 127.0.0.2, 127.0.0.3, ... lifts the ~28k ephemeral-port limit per pair.
    /// - Throws: errors found at once: EMFILE, EADDRNOTAVAIL, an immediate ECONNREFUSED, ...
    public func connect(
        to address: SocketAddress, from source: SocketAddress? = nil,
        timeout: Duration? = .seconds(10), noDelay: Bool = true,
        handler: any ConnectionHandler, userData: UInt64 = 0
    ) throws(SystemError) -> Connection {
        let socket = try Socket.makeTCP()
        if let source {
            do {
                try Socket.setOption(
                    socket.raw, Int32(IPPROTO_IP), CEPOLL_IP_BIND_ADDRESS_NO_PORT, 1, "IP_BIND_ADDRESS_NO_PORT")
            } catch  where error.errno == ENOPROTOOPT {
                // A kernel before 4.2: bind picks the port now; connections still spread over sources.
            }
            try Socket.bind(socket.raw, source)
        }
        if noDelay { try Socket.setOption(socket.raw, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY") }
        // Connected at once or in progress: either way EPOLLOUT reports the outcome, so the handler
        // always hears of it from the loop, never from inside this call.
        _ = try Socket.connect(socket.raw, address)
        let connection = try adopt(socket, kind: .connecting, handler: handler, userData: userData)
        if let timeout {
            slots[Int(connection.fd)].connectTimer = scheduleTask(
                after: timeout, TimerTask(action: .connectTimeout(connection), interval: 0))
        }
        return connection
    }

    func connectReady(_ connection: Connection, mask: UInt32) {
        let index = Int(connection.fd)
        let code = Socket.pendingError(connection.fd)
        if code != 0 || mask & (CEPOLL_ERR | CEPOLL_HUP) != 0 {
            let error = SystemError(operation: "connect", errno: code != 0 ? code : ECONNREFUSED)
            close(connection, reason: .connectFailed(error))
            return
        }
        cancel(slots[index].connectTimer)
        slots[index].connectTimer = .none
        slots[index].kind = .connection
        refreshInterest(connection.fd)
        slots[index].handler?.connectionDidOpen(connection)
        if isCurrent(connection) && slots[index].queue != nil { flush(connection) }
    }

    func connectTimedOut(_ connection: Connection) {
        guard isCurrent(connection), slots[Int(connection.fd)].kind == .connecting else { return }
        slots[Int(connection.fd)].connectTimer = .none
        close(connection, reason: .connectFailed(SystemError(operation: "connect", errno: ETIMEDOUT)))
    }
}
