import Reactor
import Workers

/// One agent, seen from the coordinator: a worker on another host, driven over TCP exactly as a
/// worker process is over its socket pair (`RemoteWorker`): commands down, statuses and the result
/// up. A connection that ends before the result is an error in the report, as a dead worker is.
final class AgentWorker: LoadWorker, ConnectionHandler {
    enum Phase: Equatable {
        case connecting, awaitingWelcome, ready
        case failed(AgentError)
        case closed
    }

    let address: SocketAddress
    let index: Int
    private let hello: [UInt8]
    private(set) var phase = Phase.connecting
    private(set) var capacity = 0
    private var connection: Connection?
    private var decoder = FrameDecoder()
    private(set) var status: LoadCounts = {
        var counts = LoadCounts()
        counts.settled = false
        return counts
    }()
    private(set) var result: LoadRecorder?

    init(address: SocketAddress, index: Int, hello: [UInt8]) {
        self.address = address
        self.index = index
        self.hello = hello
    }

    func start(_ loop: EventLoop) {
        do {
            connection = try loop.connect(to: address, timeout: AgentProtocol.handshakeTimeout, handler: self)
        } catch {
            phase = .failed(.unreachable(address, error.description))
        }
    }

    func send(_ command: WorkerCommand) {
        guard phase == .ready else { return }
        connection?.write(WorkerMessage.encode(command))
    }

    /// Gives up on an agent that has not welcomed us: connected, but silent.
    func timedOut() {
        switch phase {
        case .connecting: phase = .failed(.unreachable(address, "no connection within \(AgentProtocol.handshakeTimeout)"))
        case .awaitingWelcome: phase = .failed(.noWelcome(address))
        default: return
        }
        connection?.close()
    }

    func close() { connection?.close() }

    func connectionDidOpen(_ connection: Connection) {
        phase = .awaitingWelcome
        connection.write(hello)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        do {
            try decoder.receive(bytes) { (type, payload) throws(FrameError) in
                if type == AgentProtocol.helloFrame {
                    welcomed(payload)
                } else {
                    switch try WorkerMessage.decode(type, payload, as: WorkerReply.self) {
                    case .status(let status): self.status = status
                    case .result(let result): self.result = result
                    }
                }
            }
        } catch {
            died("sent a message that does not decode: \(error)")
            connection.close()
        }
    }

    private func welcomed(_ payload: UnsafeRawBufferPointer) {
        guard phase == .awaitingWelcome else { return }
        guard let probe = AgentProtocol.decode(payload, as: AgentProtocol.VersionProbe.self),
            probe.protocolVersion == AgentProtocol.version,
            let welcome = AgentProtocol.decode(payload, as: AgentProtocol.Welcome.self)
        else {
            let probe = AgentProtocol.decode(payload, as: AgentProtocol.VersionProbe.self)
            phase = .failed(
                .otherVersion(
                    address, agent: probe?.protocolVersion ?? -1, agentRill: probe?.rillVersion,
                    ours: AgentProtocol.version))
            connection?.close()
            return
        }
        switch welcome.refusal {
        case nil:
            capacity = welcome.capacity
            phase = .ready
        case .token: phase = .failed(.refusedToken(address))
        case .version:
            phase = .failed(
                .otherVersion(
                    address, agent: welcome.protocolVersion, agentRill: welcome.rillVersion, ours: AgentProtocol.version))
        case .arguments(let why), .start(let why): phase = .failed(.refused(address, why))
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        self.connection = nil
        switch phase {
        case .connecting:
            phase = .failed(.unreachable(address, reason.description))
        case .awaitingWelcome:
            phase = .failed(.noWelcome(address))
        case .ready:
            phase = .closed
            // An agent that goes away shows as end of file here, closed on our side: say only what else went wrong.
            died("(agent \(address)) closed its connection before its result" + (reason == .local ? "" : " (\(reason))"))
        case .failed, .closed: break
        }
    }

    private func died(_ why: String) {
        guard result == nil else { return }
        var recorder = LoadRecorder()
        recorder.error(.worker(index, why))
        result = recorder
        status.settled = true
    }
}

/// The agents of a run: connects to each, says hello, and waits (at most the handshake timeout)
/// until every one has welcomed the run, or throws the first `AgentError`.
public enum AgentLinks {
    /// Connects to `addresses` with `token`; `arguments` is the worker's command line (`load URL …`,
    /// without --agent flags); workers are numbered from `firstIndex` in errors.
    static func connect(
        loop: EventLoop, addresses: [SocketAddress], token: String, arguments: [String], rillVersion: String,
        firstIndex: Int
    ) throws(AgentError) -> [AgentWorker] {
        let hello = AgentProtocol.encode(
            AgentProtocol.Hello(
                protocolVersion: AgentProtocol.version, rillVersion: rillVersion, token: token, arguments: arguments))
        let agents = addresses.enumerated().map { AgentWorker(address: $1, index: firstIndex + $0, hello: hello) }
        for agent in agents { agent.start(loop) }
        let deadline = MonotonicClock.nanoseconds() + UInt64(AgentProtocol.handshakeTimeout.components.seconds) * 1_000_000_000
        func pending() -> Bool {
            agents.contains { $0.phase == .connecting || $0.phase == .awaitingWelcome }
        }
        while pending() && MonotonicClock.nanoseconds() < deadline && !loop.remote.isStopRequested {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        for agent in agents { agent.timedOut() }
        for agent in agents {
            if case .failed(let error) = agent.phase {
                for other in agents { other.close() }
                throw error
            }
        }
        return agents
    }
}

extension AgentLinks {
    /// The agents of `plan`, welcomed and checked against their share of `total` connections (what
    /// their worker may open: the agent's hard limit, or the run's `fdLimit` if lower); numbered
    /// after this host's `workers` in errors.
    static func connect(
        loop: EventLoop, plan: AgentPlan, total: Int, fdLimit: Int?, after workers: [LoadWorker]
    ) throws(AgentError) -> [AgentWorker] {
        let agents = try connect(
            loop: loop, addresses: plan.addresses, token: plan.token, arguments: plan.arguments,
            rillVersion: plan.rillVersion, firstIndex: workers.count)
        let share = LoadShares.split(total, weights: [Double](repeating: 1, count: agents.count + 1))
        for (index, agent) in agents.enumerated() {
            let capacity = min(agent.capacity, fdLimit.map { $0 - LoadSession.reservedFiles } ?? Int.max)
            guard share[index + 1] > capacity else { continue }
            for agent in agents { agent.close() }
            throw .tooSmall(agent.address, share: share[index + 1], capacity: capacity)
        }
        return agents
    }
}
