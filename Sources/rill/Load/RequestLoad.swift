import HTTP1
import Reactor

/// HTTP mode, and the publisher beside SSE mode: keep-alive connections with one request in flight
/// each. Closed loop (the next request as soon as a response completes, as wrk does) or, with
/// `rate`, open loop: requests are due at fixed intended times and latency is measured from the
/// intended time, so a stalled server shows in the figures (no coordinated omission).
final class RequestLoad: ConnectionHandler {
    struct Client {
        var connection: Connection? = nil
        var parser = ResponseParser()
        var buffer: [UInt8] = []
        var started: UInt64 = 0
        var intended: UInt64 = 0
        var busy = false
        var status = 0
    }

    let loop: EventLoop
    let target: TargetURL
    let sources: [SocketAddress]
    /// The request bytes for the next send (a publisher stamps each one).
    let makeRequest: () -> [UInt8]
    /// Requests per second for the open loop; nil: closed loop.
    let rate: Double?
    var recorder = LoadRecorder()
    var clients: [Client] = []
    var running = false
    private var startedAt: UInt64 = 0
    private var issued = 0
    private var backlog: [UInt64] = []
    private var pacer: TimerID? = nil

    init(loop: EventLoop, target: TargetURL, sources: [SocketAddress], connections: Int, rate: Double?,
         makeRequest: @escaping () -> [UInt8]) {
        self.loop = loop
        self.target = target
        self.sources = sources
        self.rate = rate
        self.makeRequest = makeRequest
        clients = Array(repeating: Client(), count: connections)
    }

    /// Connects every client and starts sending.
    func start() {
        running = true
        startedAt = MonotonicClock.nanoseconds()
        for index in clients.indices { connect(index) }
        if rate != nil {
            pacer = loop.scheduleRepeating(every: .milliseconds(1)) { [unowned self] in self.pace() }
        }
    }

    /// Stops sending; responses in flight still count.
    func stop() {
        running = false
        if let pacer { loop.cancel(pacer) }
        pacer = nil
    }

    var inFlight: Int { clients.reduce(0) { $0 + ($1.busy ? 1 : 0) } }
    var openConnections: Int { clients.reduce(0) { $0 + ($1.connection?.isOpen == true ? 1 : 0) } }

    private func connect(_ index: Int) {
        clients[index] = Client(started: MonotonicClock.nanoseconds())
        clients[index].connection = recorder.connect(loop, to: target, sources: sources, index: index, handler: self)
    }

    func connectionDidOpen(_ connection: Connection) {
        let index = Int(connection.userData)
        recorder.opened(startedAt: clients[index].started)
        if rate == nil { send(index, intended: MonotonicClock.nanoseconds()) } else { pace() }
    }

    private func send(_ index: Int, intended: UInt64) {
        guard running, let connection = clients[index].connection, connection.isOpen else { return }
        clients[index].busy = true
        clients[index].intended = intended
        connection.write(makeRequest())
    }

    /// Open loop: queue the requests now due, and hand them to idle clients.
    private func pace() {
        guard running, let rate else { return }
        let now = MonotonicClock.nanoseconds()
        let due = Int(Double(now - startedAt) / 1e9 * rate) + 1  // request 0 is due at the start
        while issued < due {
            backlog.append(startedAt + UInt64(Double(issued) / rate * 1e9))
            issued += 1
        }
        var index = 0
        while !backlog.isEmpty && index < clients.count {
            if !clients[index].busy, clients[index].connection?.isOpen == true {
                send(index, intended: backlog.removeFirst())
            }
            index += 1
        }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        recorder.bytesRead += bytes.count
        clients[index].buffer += bytes
        var consumed = 0
        var completed = false
        var malformed = false
        clients[index].buffer.withUnsafeBytes { all in
            while !completed && !malformed {
                let step = clients[index].parser.parse(UnsafeRawBufferPointer(rebasing: all[consumed...]))
                consumed += step.consumed
                switch step.event {
                case .head:
                    if clients[index].parser.head.status >= 200 { clients[index].status = clients[index].parser.head.status }
                case .body:
                    break
                case .end:
                    completed = clients[index].status >= 200
                case .needMore:
                    return
                case .error:
                    malformed = true
                }
            }
        }
        clients[index].buffer.removeFirst(consumed)
        if malformed {
            recorder.error("malformed response")
            connection.close()
            return
        }
        guard completed else { return }
        let now = MonotonicClock.nanoseconds()
        recorder.requestLatency.record((now - clients[index].intended) / 1_000)
        recorder.requests += 1
        let status = clients[index].status
        if !(200..<300).contains(status) { recorder.error("status \(status)") }
        clients[index].busy = false
        clients[index].status = 0
        if rate == nil { send(index, intended: now) } else { pace() }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        guard clients[index].connection == connection else { return }
        if case .connectFailed = reason { recorder.connectionsFailed += 1 }
        if reason != .local {
            recorder.error(errorClass(reason))
            if clients[index].busy { recorder.error("request lost with its connection") }
        }
        clients[index].connection = nil
        clients[index].busy = false
        if running && reason != .local {
            // Keep the connection count: reconnect, but not in a tight loop against a dead server.
            loop.schedule(after: .milliseconds(100)) { [weak self] in
                guard let self, self.running, self.clients[index].connection == nil else { return }
                self.connect(index)
            }
        }
    }
}
