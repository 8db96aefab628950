import Reactor
import Workers

/// `rill load agent --listen ADDR:PORT --token T`: waits for coordinators. Each one that says the
/// right token and protocol version gets a worker process of its own (`rill load … --worker-channel
/// 0`, as a local run's workers are started), and the agent relays frames between the coordinator's
/// TCP connection and the worker's socket pair unchanged. The worker ends when the coordinator
/// goes (its channel closes) and the connection ends when the worker does.
public final class AgentServer: ConnectionHandler {
    let loop: EventLoop
    let token: String
    let workerPath: String
    /// This build's version, told to coordinators (for their errors).
    let rillVersion: String
    /// One line per run accepted, refused or ended.
    let log: (String) -> Void
    /// Connections one worker may hold here, told to coordinators in the welcome.
    let capacity: Int
    private var listener: Listener?
    private var sessions: [Connection: AgentSession] = [:]
    /// Sessions that ended, kept until their worker is reaped.
    private var ending: [AgentSession] = []
    private var sweeper: TimerID?
    /// Runs refused (wrong token, version or arguments) and accepted so far.
    public private(set) var refusals = 0
    public private(set) var accepted = 0

    /// The bound address (its real port when port 0 was asked for).
    public var address: SocketAddress? { listener?.address }

    /// Listens on `address` for coordinators that know `token` (which must not be empty).
    public init(
        loop: EventLoop, address: SocketAddress, token: String, capacity: Int, rillVersion: String,
        workerPath: String = ChildProcess.executablePath, log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.log = log
        self.loop = loop
        self.rillVersion = rillVersion
        self.token = token
        self.capacity = capacity
        self.workerPath = workerPath
        listener = try loop.listen(on: address, handler: self)
        sweeper = loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in self.sweep() }
    }

    /// Stops listening and ends every session's worker.
    public func close() {
        listener?.close()
        listener = nil
        if let sweeper { loop.cancel(sweeper) }
        sweeper = nil
        for session in sessions.values { session.end() }
        for session in Array(sessions.values) + ending { session.supervisor?.stopAndWait() }
        sessions = [:]
        ending = []
    }

    public func connectionDidOpen(_ connection: Connection) {
        let session = AgentSession(server: self, connection: connection)
        sessions[connection] = session
        session.deadline = loop.schedule(after: AgentProtocol.handshakeTimeout) { [weak session] in
            session?.handshakeTimedOut()
        }
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        sessions[connection]?.received(bytes)
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        guard let session = sessions.removeValue(forKey: connection) else { return }
        session.end()
        if session.supervisor != nil { ending.append(session) }
    }

    func counted(_ connection: Connection, accepted wasAccepted: Bool, _ detail: String) {
        if wasAccepted { accepted += 1 } else { refusals += 1 }
        let peer = (try? connection.peerAddress()).map { "\($0)" } ?? "?"
        log("\(wasAccepted ? "accepted" : "refused") a run from \(peer): \(detail)")
    }

    /// Lets go of sessions whose worker has been reaped.
    private func sweep() {
        ending.removeAll { session in
            guard session.supervisor?.finished ?? true else { return false }
            session.supervisor?.stopAndWait()  // reaped already: cancels its timer, closes its channel
            return true
        }
    }
}

/// One coordinator's connection to the agent: the handshake, then the relay.
final class AgentSession: SupervisorDelegate {
    unowned let server: AgentServer
    let connection: Connection
    /// Small frames only, before and after the hello: a coordinator sends nothing larger.
    private var decoder = FrameDecoder(maximumLength: AgentProtocol.maximumHelloBytes)
    private var arguments: [String] = []
    private(set) var supervisor: Supervisor?
    var deadline: TimerID?
    private var relaying = false
    private var ended = false

    init(server: AgentServer, connection: Connection) {
        self.server = server
        self.connection = connection
    }

    func received(_ bytes: UnsafeRawBufferPointer) {
        do {
            try decoder.receive(bytes) { (type, payload) throws(FrameError) in
                if relaying {
                    guard type == WorkerMessage.json else { throw .malformed(type: type) }
                    supervisor?.send(Frame.encode(type: type) { $0 += payload }, to: 0)
                } else {
                    guard type == AgentProtocol.helloFrame else { throw .malformed(type: type) }
                    hello(payload)
                }
            }
        } catch {
            connection.close()
        }
    }

    private func hello(_ payload: UnsafeRawBufferPointer) {
        if let deadline { server.loop.cancel(deadline) }
        deadline = nil
        guard let probe = AgentProtocol.decode(payload, as: AgentProtocol.VersionProbe.self) else {
            return connection.close()
        }
        guard probe.protocolVersion == AgentProtocol.version,
            let hello = AgentProtocol.decode(payload, as: AgentProtocol.Hello.self)
        else { return refuse(.version(theirs: probe.protocolVersion)) }
        guard AgentProtocol.tokenMatches(hello.token, expected: server.token) else { return refuse(.token) }
        // Only `rill load` runs here, never `serve` or anything else a token holder might name.
        guard hello.arguments.first == "load", !hello.arguments.contains("--worker-channel") else {
            return refuse(.arguments("the command line must be `load URL …` without --worker-channel"))
        }
        arguments = hello.arguments + ["--worker-channel", "0"]
        var policy = RestartPolicy()
        policy.restarts = false
        policy.grace = .seconds(2)
        let supervisor = Supervisor(loop: server.loop, workers: 1, policy: policy, path: server.workerPath, delegate: self)
        self.supervisor = supervisor
        if let failure = supervisor.start() {
            supervisor.stopAndWait()
            self.supervisor = nil
            return refuse(.start(failure.description))
        }
        relaying = true
        server.counted(connection, accepted: true, hello.arguments.joined(separator: " "))
        connection.write(AgentProtocol.encode(welcome(nil)))
    }

    private func welcome(_ refusal: AgentProtocol.Refusal?) -> AgentProtocol.Welcome {
        AgentProtocol.Welcome(
            protocolVersion: AgentProtocol.version, rillVersion: server.rillVersion, refusal: refusal,
            capacity: server.capacity)
    }

    private func refuse(_ refusal: AgentProtocol.Refusal) {
        server.counted(connection, accepted: false, "\(refusal)")
        connection.write(AgentProtocol.encode(welcome(refusal)))
        connection.closeAfterFlush()
    }

    func handshakeTimedOut() {
        deadline = nil
        if !relaying { connection.close() }
    }

    /// The coordinator went: the worker is told to stop (it also stops when its channel closes).
    func end() {
        guard !ended else { return }
        ended = true
        if let deadline { server.loop.cancel(deadline) }
        deadline = nil
        supervisor?.stop()
    }

    // MARK: - SupervisorDelegate

    func supervisor(_ supervisor: Supervisor, argumentsFor index: Int) -> [String] { arguments }
    func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection) {}

    func supervisor(
        _ supervisor: Supervisor, received type: UInt8, payload: UnsafeRawBufferPointer, from index: Int
    ) throws(FrameError) {
        connection.write(Frame.encode(type: type) { $0 += payload })
    }

    func supervisor(
        _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
        restartIn: Duration?
    ) {
        server.log("a run's worker ended (\(status))")
        connection.closeAfterFlush()
    }
}
