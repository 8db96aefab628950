import HTTP1
import Reactor

/// HTTP mode, and the publisher beside SSE mode: keep-alive connections with one request in flight
/// each. Closed loop (the next request as soon as a response completes, as wrk does); open loop, where
/// requests are due at fixed intended times and latency is measured from the intended time, so a
/// stalled server shows in the figures (no coordinated omission); or manual (`enqueue()`).
final class RequestLoad: ConnectionHandler {
    enum Pace {
        case closedLoop
        /// Requests per second in total.
        case openLoop(Double)
        case manual
        /// Open loop at a rate that follows `levels` (stages), latency from each intended time.
        case staged
    }

    struct Client {
        var connection: Connection? = nil
        var parser = ResponseParser()
        var buffer: [UInt8] = []
        var started: UInt64 = 0
        var intended: UInt64 = 0
        var busy = false
        var status = 0
        /// In `idle` (it may have gone busy or closed since: checked when it comes out).
        var queuedIdle = false
    }

    let loop: EventLoop
    let target: TargetURL
    let sources: [SocketAddress]
    let sourceOffset: Int
    let pace: Pace
    /// Open loop: stop after this many requests.
    let limit: Int?
    /// The request bytes for the next send (a publisher stamps each one).
    let makeRequest: () -> [UInt8]
    var recorder = LoadRecorder()
    /// Called as each request is about to be written (a scenario's publisher announces it first).
    var willSend: (() -> Void)?
    private(set) var clients: [Client] = []
    private(set) var running = false
    private var startedAt: UInt64 = 0
    /// Seconds between `start()` and `stop()` (or now, while running).
    var activeSeconds: Double { Double((running ? MonotonicClock.nanoseconds() : stoppedAt) - startedAt) / 1e9 }
    private var stoppedAt: UInt64 = 0
    /// Open loop: requests sent so far (request k is due at start + k / rate).
    private var sent = 0
    /// Manual: intended times of requests not yet sent.
    private var queued = RingQueue<UInt64>()
    /// Clients ready for a request (open loop and manual), so a dispatch costs what it sends.
    private var idle = RingQueue<Int>()
    private var schedule: OpenLoopSchedule?
    /// `.staged`: the rate over time, extended stage by stage (`move(to:over:)`).
    var levels = LevelSchedule()
    /// Clients with a connection (open or opening), and with a request in flight.
    private(set) var openConnections = 0
    private(set) var inFlight = 0
    private var pacer: TimerID? = nil

    init(
        loop: EventLoop, target: TargetURL, sources: [SocketAddress], sourceOffset: Int = 0, connections: Int,
        pace: Pace, limit: Int? = nil, makeRequest: @escaping () -> [UInt8]
    ) {
        self.loop = loop
        self.limit = limit
        self.target = target
        self.sources = sources
        self.sourceOffset = sourceOffset
        self.pace = pace
        self.makeRequest = makeRequest
        clients = Array(repeating: Client(), count: connections)
    }

    convenience init(
        loop: EventLoop, target: TargetURL, sources: [SocketAddress], sourceOffset: Int, connections: Int,
        pace: Pace, request: [UInt8]
    ) {
        self.init(
            loop: loop, target: target, sources: sources, sourceOffset: sourceOffset, connections: connections,
            pace: pace
        ) { request }
    }

    /// Connects every client and starts sending.
    func start() {
        running = true
        startedAt = MonotonicClock.nanoseconds()
        if case .openLoop(let rate) = pace { schedule = OpenLoopSchedule(start: startedAt, rate: rate, limit: limit) }
        for index in clients.indices { connect(index) }
        if case .manual = pace {} else if case .closedLoop = pace {} else {
            pacer = loop.scheduleRepeating(every: .milliseconds(1)) { [unowned self] in self.dispatch() }
        }
    }

    /// Stops sending; responses in flight still count.
    func stop() {
        if running { stoppedAt = MonotonicClock.nanoseconds() }
        running = false
        if let pacer { loop.cancel(pacer) }
        pacer = nil
    }

    /// Manual pace: one more request, sent by the first idle client.
    func enqueue() {
        queued.push(MonotonicClock.nanoseconds())
        dispatch()
    }

    private func connect(_ index: Int) {
        let queuedIdle = clients[index].queuedIdle
        clients[index] = Client(started: MonotonicClock.nanoseconds(), queuedIdle: queuedIdle)
        clients[index].connection = recorder.connect(
            loop, to: target, sources: sources, index: sourceOffset + index,
            handler: self, userData: UInt64(index))
        if clients[index].connection != nil { openConnections += 1 }
    }

    /// Client `index` is ready for the next request.
    private func ready(_ index: Int) {
        guard !clients[index].queuedIdle else { return }
        clients[index].queuedIdle = true
        idle.push(index)
    }

    /// The next ready client, if any.
    private func nextIdle() -> Int? {
        while let index = idle.pop() {
            clients[index].queuedIdle = false
            if !clients[index].busy, clients[index].connection?.isOpen == true { return index }
        }
        return nil
    }

    func connectionDidOpen(_ connection: Connection) {
        let index = Int(connection.userData)
        recorder.opened(startedAt: clients[index].started)
        if case .closedLoop = pace {
            send(index, intended: MonotonicClock.nanoseconds())
        } else {
            ready(index)
            dispatch()
        }
    }

    private func send(_ index: Int, intended: UInt64) {
        guard running, let connection = clients[index].connection, connection.isOpen else { return }
        clients[index].busy = true
        inFlight += 1
        clients[index].intended = intended
        willSend?()
        connection.write(makeRequest())
    }

    /// The next request due (open loop) or queued (manual), and its intended time.
    private func nextDue(now: UInt64) -> UInt64? {
        switch pace {
        case .closedLoop:
            return nil
        case .openLoop:
            return schedule?.due(sent, now: now)
        case .manual:
            return queued.first
        case .staged:
            if let limit, sent >= limit { return nil }
            return levels.due(sent, now: now)
        }
    }

    /// Hands the requests now due to idle clients.
    private func dispatch() {
        guard running else { return }
        let now = MonotonicClock.nanoseconds()
        while let intended = nextDue(now: now), let index = nextIdle() {
            send(index, intended: intended)
            if case .manual = pace { _ = queued.pop() } else { sent += 1 }
        }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        recorder.counts.bytesRead += bytes.count
        // Parsed straight from the read buffer; only a response split across reads is copied.
        var outcome: (consumed: Int, completed: Bool, malformed: Bool)
        if clients[index].buffer.isEmpty {
            outcome = parse(index, bytes)
            if !outcome.completed && !outcome.malformed { clients[index].buffer += bytes[outcome.consumed...] }
        } else {
            clients[index].buffer += bytes
            outcome = clients[index].buffer.withUnsafeBytes { parse(index, $0) }
            clients[index].buffer.removeFirst(outcome.consumed)
        }
        let (completed, malformed) = (outcome.completed, outcome.malformed)
        if malformed {
            recorder.error(.malformedResponse)
            connection.close()
            return
        }
        guard completed else { return }
        let now = MonotonicClock.nanoseconds()
        recorder.answered(latency: (now - clients[index].intended) / 1_000)
        recorder.counts.requests += 1
        let status = clients[index].status
        if !(200..<300).contains(status) { recorder.error(.status(status)) }
        clients[index].busy = false
        inFlight -= 1
        clients[index].status = 0
        if case .closedLoop = pace {
            send(index, intended: now)
        } else {
            ready(index)
            dispatch()
        }
    }

    /// Feeds `bytes` to client `index`'s parser up to the end of one response.
    private func parse(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> (
        consumed: Int, completed: Bool, malformed: Bool
    ) {
        var consumed = 0
        while true {
            let step = clients[index].parser.parse(UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            consumed += step.consumed
            switch step.event {
            case .head:
                if clients[index].parser.head.status >= 200 {
                    clients[index].status = clients[index].parser.head.status
                }
            case .body:
                break
            case .end:
                if clients[index].status >= 200 { return (consumed, true, false) }
            case .needMore:
                return (consumed, false, false)
            case .error:
                return (consumed, false, true)
            }
        }
    }

    /// A keep-alive connection the server closed (a clean FIN) with a request in flight counts like a
    /// reset one; between requests it is HTTP's way (a draining server closes after its response):
    /// no error, the client reconnects.
    func connectionDidReadEOF(_ connection: Connection) {
        ended(connection, reason: .eof)
        connection.close()
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        ended(connection, reason: reason)
    }

    private func ended(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        guard clients[index].connection == connection else { return }
        if case .connectFailed = reason { recorder.counts.failed += 1 }
        let idleClose = reason == .eof && !clients[index].busy
        if reason != .local && !idleClose {
            recorder.error(LoadErrorClass(reason))
            if clients[index].busy { recorder.error(.requestLost) }
        }
        clients[index].connection = nil
        openConnections -= 1
        if clients[index].busy { inFlight -= 1 }
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
