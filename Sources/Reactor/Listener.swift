import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on an `EventLoop`. Accepted connections are registered with the loop and
/// handed to `handler`. Loop-confined.
///
/// Running out of descriptors (EMFILE/ENFILE) or kernel memory would make a level-triggered
/// listener spin: the pending connection stays in the backlog and epoll reports it again at once.
/// Instead the listener stops watching for `pauseAfterExhaustion` and counts it; pending clients
/// wait in the backlog and are accepted once descriptors are free again.
public final class Listener {
    /// How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM.
    public static let pauseAfterExhaustion: Duration = .milliseconds(100)
    /// Accepts per wake-up: enough to amortise the wake-up over a connect storm, few enough that
    /// established connections are not starved by it (level triggering reports the rest).
    static let acceptsPerWakeup = 128

    /// The bound address (with the real port when port 0 was asked for).
    public let address: SocketAddress
    /// Receives the accepted connections. A closed listener lets go of it: the handler often owns
    /// the listener, and that cycle must end when listening does.
    public var handler: (any ConnectionHandler)? { handlerWhileOpen }
    private var handlerWhileOpen: (any ConnectionHandler)?
    public private(set) var isOpen = true
    /// Connections accepted so far.
    public private(set) var accepted = 0
    /// Accept failures other than running out of descriptors (aborted handshakes and the like).
    public private(set) var acceptErrors = 0
    /// Times accepting paused because descriptors or kernel memory ran out.
    public private(set) var exhaustionPauses = 0

    unowned(unsafe) let loop: EventLoop
    let fd: Int32
    private let noDelay: Bool
    private var resumeTimer: TimerID? = nil

    init(loop: EventLoop, fd: Int32, address: SocketAddress, noDelay: Bool, handler: any ConnectionHandler) {
        self.loop = loop
        self.fd = fd
        self.address = address
        self.noDelay = noDelay
        handlerWhileOpen = handler
    }

    /// Stops listening and closes the socket. Accepted connections stay open.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        if let resumeTimer { loop.cancel(resumeTimer) }
        resumeTimer = nil
        handlerWhileOpen = nil
        loop.releaseSlot(fd)
    }

    func acceptReady() {
        for _ in 0..<Listener.acceptsPerWakeup {
            guard isOpen, resumeTimer == nil, let handler = handlerWhileOpen else { return }
            let result: IOResult<Int>
            do {
                result = try Socket.accept(fd)
            } catch {
                acceptFailed(error)
                continue
            }
            guard case .done(let raw) = result else { return }
            let socket = OwnedFD(Int32(raw))
            let connection: Connection
            do {
                // Fails only if the client is gone already (reset before we got to it): drop it.
                if noDelay { try Socket.setOption(socket.raw, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY") }
                connection = try loop.adopt(socket, kind: .connection, handler: handler, userData: 0)
            } catch {
                acceptErrors += 1  // the socket, not handed over, is closed here
                continue
            }
            accepted += 1
            handler.connectionDidOpen(connection)
            loop.readFirst(connection)
        }
    }

    private func acceptFailed(_ error: SystemError) {
        switch error.errno {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM:
            exhaustionPauses += 1
            // If even this epoll_ctl fails (ENOMEM), the paused flag (resumeTimer) still stops
            // accepting; the listener may be reported again meanwhile, and returns at once.
            setInterest(0)
            pauseAccepting()
        default:
            // ECONNABORTED, EPROTO, EPERM (firewall), ...: this client is gone; the next may be fine.
            acceptErrors += 1
        }
    }

    private func pauseAccepting() {
        resumeTimer = loop.scheduleTask(
            after: Listener.pauseAfterExhaustion, TimerTask(action: .resumeAccepting(self), interval: 0))
    }

    func resumeAccepting() {
        resumeTimer = nil
        guard isOpen else { return }
        // The kernel short of memory even for this: try again after another pause.
        if !setInterest(CEPOLL_IN) { pauseAccepting() }
    }

    /// Sets the listening socket's epoll interest; false (counted) if the kernel refused.
    @discardableResult
    private func setInterest(_ events: UInt32) -> Bool {
        do {
            try loop.setInterest(fd, events: events)
            return true
        } catch {
            acceptErrors += 1
            return false
        }
    }
}

extension EventLoop {
    /// Listens on `address` (port 0 picks a free port; see `Listener.address`).
    /// - Parameters:
    ///   - backlog: the kernel's accept queue (capped by net.core.somaxconn).
    ///   - reusePort: SO_REUSEPORT, so several processes or loops can share the port.
    ///   - noDelay: TCP_NODELAY on accepted connections (on by default: writes are whole messages).
    public func listen(
        on address: SocketAddress, backlog: Int32 = 4096, reusePort: Bool = false,
        noDelay: Bool = true, handler: any ConnectionHandler
    ) throws(SystemError) -> Listener {
        let socket = try Socket.makeTCP()
        try Socket.setOption(socket.raw, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
        if reusePort { try Socket.setOption(socket.raw, SOL_SOCKET, CEPOLL_SO_REUSEPORT, 1, "SO_REUSEPORT") }
        try Socket.bind(socket.raw, address)
        try Socket.listen(socket.raw, backlog: backlog)
        let bound = try Socket.localAddress(socket.raw)
        let (fd, _) = try register(socket, kind: .listener, events: CEPOLL_IN)
        let listener = Listener(loop: self, fd: fd, address: bound, noDelay: noDelay, handler: handler)
        listeners[fd] = listener
        return listener
    }

    /// Registers a connected or connecting socket and gives it to `handler`.
    func adopt(
        _ socket: consuming OwnedFD, kind: FdSlot.Kind, handler: any ConnectionHandler,
        userData: UInt64
    ) throws(SystemError) -> Connection {
        let events = kind == .connecting ? CEPOLL_OUT : CEPOLL_IN
        let (fd, generation) = try register(socket, kind: kind, events: events)
        slots[Int(fd)].handler = handler
        slots[Int(fd)].userData = userData
        statistics.connectionsOpened += 1
        return Connection(loop: self, fd: fd, generation: generation)
    }
}
