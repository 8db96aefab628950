import Reactor
import RillServer
import SSE
import SSEHub
#if canImport(Glibc)
import Glibc
#endif

/// `rill serve --workers N`: the parent. It listens on nothing; it starts N copies of itself, each of
/// which binds the address with SO_REUSEPORT and runs its own reactor, and it stays on as their
/// sequencer and supervisor:
/// - every publication comes up from the worker that took it, gets its id here, is kept in the
///   history and goes down to every worker in one order (so ids, order and replay agree everywhere);
/// - the demo ticker runs here, for the same reason;
/// - metrics come up every second and their sums go down, so `/metrics` on any worker shows totals;
/// - a worker that dies is logged and restarted (with backoff if it keeps dying) and gets the
///   history before it listens; SIGINT/SIGTERM are passed on, and it exits once all workers have.
final class ServeSupervisor: ConnectionHandler {
    struct Worker {
        var process: ChildProcess?
        var channel: Connection?
        var reader = RelayReader()
        var statistics: [Int] = []
        var startedAt: UInt64 = 0
        var restarts = 0
        var backoff: Duration = .milliseconds(100)
    }

    let loop: EventLoop
    let command: Serve
    let port: UInt16
    private var workers: [Worker]
    private var history: [String: HistoryRing] = [:]
    private var sequence: UInt64 = 0
    private var stopping = false
    private var exitedCount = 0

    init(loop: EventLoop, command: Serve, workers count: Int, port: UInt16) {
        self.loop = loop
        self.command = command
        self.port = port
        workers = Array(repeating: Worker(), count: count)
    }

    /// The worker's command line: this one, at the chosen port, with the channel and index added.
    private func arguments(index: Int) -> [String] {
        var arguments: [String] = []
        var skip = false
        for argument in CommandLine.arguments.dropFirst() {
            if skip { skip = false; continue }
            if argument == "--workers" || argument == "--port" { skip = true; continue }
            if argument.hasPrefix("--workers=") || argument.hasPrefix("--port=") { continue }
            arguments.append(argument)
        }
        return arguments + ["--port", String(port), "--worker-index", String(index), "--worker-channel", "0"]
    }

    /// Starts every worker and returns once each is listening (it has reported once), or nil with
    /// the reason a worker could not start.
    func start() -> String? {
        for index in workers.indices {
            if let failure = spawn(index) { return failure }
        }
        let deadline = MonotonicClock.nanoseconds() + 10_000_000_000
        while workers.contains(where: { $0.statistics.isEmpty }) {
            if MonotonicClock.nanoseconds() > deadline { return "workers did not start listening within 10 s" }
            if exitedCount > 0 { return "a worker exited at start (see above)" }
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        if command.tick > 0 {
            _ = loop.scheduleRepeating(every: .seconds(command.tick)) { [unowned self] in
                self.sequenced(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic, from: nil, token: 0)
            }
        }
        _ = loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in self.sendTotals() }
        return nil
    }

    private func spawn(_ index: Int) -> String? {
        let pair: (Int32, Int32)
        do { pair = try EventLoop.makeSocketPair() } catch { return "socketpair: \(error)" }
        let spawned = ChildProcess.spawn(arguments(index: index), channel: pair.1)
        _ = Glibc.close(pair.1)
        switch spawned {
        case .failure(let error):
            _ = Glibc.close(pair.0)
            return "could not start worker \(index): \(error)"
        case .success(let process):
            workers[index].process = process
        }
        do {
            let channel = try loop.adopt(connectedSocket: pair.0, handler: self, userData: UInt64(index))
            workers[index].channel = channel
            workers[index].reader = RelayReader()
            workers[index].statistics = []
            workers[index].startedAt = MonotonicClock.nanoseconds()
            // The history first, in publication order across topics, then `start`: the worker listens
            // only after it can answer any Last-Event-ID the others could.
            let kept = history.values.flatMap { ring in (0..<ring.count).map { ring[$0] } }.sorted { $0.sequence < $1.sequence }
            for entry in kept { channel.write(entry.bytes) }
            channel.write(RelayMessage.start.encoded)
        } catch {
            return "worker \(index): \(error)"
        }
        return nil
    }

    // MARK: - The relay

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        guard let messages = workers[index].reader.receive(bytes) else {
            writeStandardError("rill serve: worker \(index) sent a malformed relay message; restarting it")
            workers[index].process?.signal(SIGKILL)
            connection.close()
            return
        }
        for message in messages {
            switch message {
            case .publish(let token, let topic, let event):
                sequenced(event.outgoing, topic: topic, from: index, token: token)
            case .statistics(let values):
                workers[index].statistics = values
            case .event, .totals, .start:
                break
            }
        }
    }

    /// Gives an event its id and place in the order, keeps it, and sends it to every worker (with
    /// the request's token to the worker that took it).
    private func sequenced(_ event: OutgoingEvent, topic: String, from origin: Int?, token: UInt64) {
        sequence += 1
        let relayed = RelayMessage.RelayedEvent(data: event.data, id: event.id ?? String(sequence), name: event.name)
        let message = SharedBytes(RelayMessage.event(token: 0, topic: topic, event: relayed).encoded)
        history[topic, default: HistoryRing()].append(
            HistoryEntry(sequence: sequence, id: relayed.id!, bytes: message),
            countLimit: command.history, byteLimit: command.historyBytes)
        for index in workers.indices {
            guard let channel = workers[index].channel else { continue }
            if index == origin {
                channel.write(RelayMessage.event(token: token, topic: topic, event: relayed).encoded)
            } else {
                channel.write(message)
            }
        }
    }

    private func sendTotals() {
        let reports = workers.compactMap { $0.channel != nil && !$0.statistics.isEmpty ? $0.statistics : nil }
        guard let first = reports.first else { return }
        var sums = [Int](repeating: 0, count: first.count)
        for report in reports where report.count == sums.count {
            for index in sums.indices { sums[index] += report[index] }
        }
        let message = SharedBytes(RelayMessage.totals(sums, workers: reports.count).encoded)
        for worker in workers { worker.channel?.write(message) }
    }

    // MARK: - Supervision

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        guard workers[index].channel == connection else { return }
        workers[index].channel = nil
        collect(index)
    }

    /// Waits (without blocking the loop) for a worker whose channel closed to exit, then restarts it.
    private func collect(_ index: Int) {
        guard let process = workers[index].process else { return }
        guard let status = process.poll() else {
            loop.schedule(after: .milliseconds(20)) { [weak self] in self?.collect(index) }
            return
        }
        workers[index].process = nil
        exitedCount += 1
        if stopping { return }
        let how = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
        let lived = Double(MonotonicClock.nanoseconds() - workers[index].startedAt) / 1e9
        // A worker that dies soon after starting is restarted ever more slowly (up to 5 s).
        workers[index].backoff = lived < 2 ? min(workers[index].backoff * 2, .seconds(5)) : .milliseconds(100)
        writeStandardError("rill serve: worker \(index) (pid \(process.pid)) \(how) after \(Int(lived)) s; "
                           + "restarting it in \(workers[index].backoff)")
        loop.schedule(after: workers[index].backoff) { [weak self] in
            guard let self, !self.stopping else { return }
            self.workers[index].restarts += 1
            if let failure = self.spawn(index) { writeStandardError("rill serve: \(failure)") }
        }
    }

    /// Passes the stop on to every worker and waits for all to exit (SIGKILL after `grace`).
    func stop(grace: Duration = .seconds(5)) {
        stopping = true
        for worker in workers { worker.process?.signal(SIGTERM) }
        let deadline = MonotonicClock.nanoseconds() + UInt64(grace.components.seconds) * 1_000_000_000
        // Each worker's channel closes as it exits, and `collect` reaps it.
        while workers.contains(where: { $0.process != nil }) && MonotonicClock.nanoseconds() < deadline {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        for index in workers.indices {
            if let process = workers[index].process {
                process.signal(SIGKILL)
                _ = process.wait()
                workers[index].process = nil
            }
        }
        loop.closeAll()
    }

    var restarts: Int { workers.reduce(0) { $0 + $1.restarts } }
    var events: UInt64 { sequence }
}

/// A port for the workers to share when `--port 0` asked for any: bound (not listening, so it takes
/// no connections) with SO_REUSEPORT for as long as the supervisor runs.
struct PortReservation {
    let fd: Int32
    let port: UInt16

    init?(host: SocketAddress) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = host.ip.bigEndian
        let socket = fd
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            return nil
        }
        port = UInt16(bigEndian: address.sin_port)
    }
}
