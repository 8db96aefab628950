import Reactor
import RillServer
import SSE
import SSEHub
import Workers
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
///   history before it listens; so is one that stalls (sends nothing for `--worker-liveness`, though
///   it reports every second, or leaves more than `--worker-queue-limit` bytes unread), after a SIGKILL; SIGINT/SIGTERM are passed on, and it exits once all workers have.
final class ServeSupervisor: SupervisorDelegate {
    struct Worker {
        var statistics: [Int] = []
    }

    let loop: EventLoop
    let command: Serve
    let port: UInt16
    private var workers: [Worker]
    private var supervisor: Supervisor!
    private var history: [String: TopicHistory] = [:]
    private var sequence: UInt64 = 0
    private var exitedAtStart = false

    /// The memory engine's epoch (see `ServerConfiguration.epochBase`): ids continue from it, and
    /// every worker, restarted ones too, is told it.
    let epochBase: UInt64

    init(loop: EventLoop, command: Serve, workers count: Int, port: UInt16) {
        self.loop = loop
        epochBase = command.epochBase ?? ServerConfiguration.epochBase(nanoseconds: WallClock.nanoseconds())
        sequence = epochBase
        self.command = command
        self.port = port
        workers = Array(repeating: Worker(), count: count)
        var policy = RestartPolicy()
        // Each worker drains for the window (and 1.5 s for clients to close) before it exits.
        policy.grace = max(policy.grace, .milliseconds(Int64(command.drainWindow * 1_000) + 2_000))
        policy.liveness = command.workerLiveness > 0 ? .seconds(command.workerLiveness) : nil
        // Never less than two of the largest publications: one such event is queued whole, and
        // drained, by a worker that reads.
        policy.maximumQueuedBytes = max(command.workerQueueLimit, 2 * command.maxBody)
        supervisor = Supervisor(loop: loop, workers: count, policy: policy, delegate: self)
    }

    /// The worker's command line: this one, at the chosen port, with the channel and index added.
    func supervisor(_ supervisor: Supervisor, argumentsFor index: Int) -> [String] {
        var arguments: [String] = []
        var skip = false
        for argument in CommandLine.arguments.dropFirst() {
            if skip {
                skip = false
                continue
            }
            if argument == "--workers" || argument == "--port" || argument == "--epoch-base" {
                skip = true
                continue
            }
            if argument.hasPrefix("--workers=") || argument.hasPrefix("--port=") { continue }
            arguments.append(argument)
        }
        return arguments + [
            "--port", String(port), "--worker-index", String(index), "--worker-channel", "0",
            "--epoch-base", String(epochBase),
        ]
    }

    /// Starts every worker and returns once each is listening (it has reported once), or nil with
    /// the reason a worker could not start.
    func start() -> String? {
        if let failure = supervisor.start() { return failure.description }
        // Fifty workers starting at once on two CPUs take a while: 10 s, and 200 ms more per worker.
        let seconds = 10 + workers.count / 5
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds) * 1_000_000_000
        while workers.contains(where: { $0.statistics.isEmpty }) {
            if MonotonicClock.nanoseconds() > deadline { return "workers did not start listening within \(seconds) s" }
            if exitedAtStart { return "a worker exited at start (see above)" }
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        if command.tick > 0 && command.redis == nil {  // under Redis there is no ticker (see Serve)
            _ = loop.scheduleRepeating(every: .seconds(command.tick)) { [unowned self] in
                self.sequenced(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic, from: nil, token: 0)
            }
        }
        _ = loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in self.sendTotals() }
        return nil
    }

    func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection) {
        workers[index].statistics = []
        // The history first, in publication order across topics, then `start`: the worker listens
        // only after it can answer any Last-Event-ID the others could.
        let kept = history.values.flatMap(\.kept).sorted { $0.sequence < $1.sequence }
        for entry in kept { channel.write(entry.message) }
        channel.write(RelayMessage.start.encoded)
    }

    // MARK: - The relay

    func supervisor(
        _ supervisor: Supervisor, received type: UInt8, payload: UnsafeRawBufferPointer,
        from index: Int
    ) throws(FrameError) {
        guard let message = RelayMessage(type: type, payload: payload) else { throw .malformed(type: type) }
        switch message {
        case .publish(let token, let topic, let event):
            sequenced(event.outgoing, topic: topic, from: index, token: token)
        case .statistics(let values):
            workers[index].statistics = values
        case .event, .totals, .start:
            break
        }
    }

    func supervisor(_ supervisor: Supervisor, worker index: Int, sentCorruptFrames error: FrameError) {
        LogLine(
            .error, "rill serve: worker \(index) sent a malformed relay message (\(error)); restarting it",
            fields: [("worker", .number(index)), ("error", .text("\(error)"))]
        ).write(command.logFormat)
    }

    /// Gives an event its id and place in the order, keeps it, and sends it to every worker (with
    /// the request's token to the worker that took it).
    private func sequenced(_ event: OutgoingEvent, topic: String, from origin: Int?, token: UInt64) {
        sequence += 1
        let relayed = RelayMessage.RelayedEvent(data: event.data, id: event.id ?? String(sequence), name: event.name)
        let message = SharedBytes(RelayMessage.event(token: 0, topic: topic, event: relayed).encoded)
        // Kept as the workers' hubs keep it (framed; one they cannot frame they refuse, and keep not).
        if let framed = try? EventEncoder.encodeShared(relayed.outgoing) {
            history[topic, default: TopicHistory()].append(
                sequence: sequence, id: relayed.id!, framed: framed, message: message,
                countLimit: command.history, byteLimit: command.historyBytes)
        }
        // Each worker's copy is queued on its own channel: a worker that does not read holds up no
        // other (the origin's request is answered when its own copy arrives), and its queue is
        // bounded by the Supervisor (past the bound it is killed and restarted).
        for index in workers.indices {
            if index == origin {
                supervisor.send(RelayMessage.event(token: token, topic: topic, event: relayed).encoded, to: index)
            } else {
                supervisor.send(message, to: index)
            }
        }
    }

    private func sendTotals() {
        let reports = workers.indices.compactMap {
            supervisor.channel($0) != nil && !workers[$0].statistics.isEmpty ? workers[$0].statistics : nil
        }
        guard let first = reports.first else { return }
        var sums = [Int](repeating: 0, count: first.count)
        for report in reports where report.count == sums.count {
            for index in sums.indices { sums[index] += report[index] }
        }
        supervisor.broadcast(SharedBytes(RelayMessage.totals(sums, workers: reports.count).encoded))
    }

    // MARK: - Supervision (restarts with backoff are the Supervisor's)

    func supervisor(
        _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
        restartIn: Duration?
    ) {
        workers[index].statistics = []
        exitedAtStart = true  // only `start` looks, while it waits for the first reports
        guard let restartIn else { return }
        LogLine(
            .warning,
            "rill serve: worker \(index) \(status) after \(lived.components.seconds) s; restarting it in \(restartIn)",
            fields: [
                ("worker", .number(index)), ("exit", .text("\(status)")),
                ("livedSeconds", .number(Int(lived.components.seconds))),
                ("restartIn", .text("\(restartIn)"))
            ]
        ).write(command.logFormat)
    }

    func supervisor(_ supervisor: Supervisor, worker index: Int, stalled reason: Supervision.Stall) {
        LogLine(
            .error, "rill serve: worker \(index) \(reason) (stopped or hung); killing it",
            fields: [("worker", .number(index)), ("stall", .text("\(reason)"))]
        ).write(command.logFormat)
    }

    func supervisor(_ supervisor: Supervisor, worker index: Int, failedToStart error: SpawnError, restartIn: Duration?)
    {
        exitedAtStart = true
        LogLine(
            .error,
            "rill serve: could not start worker \(index): \(error)"
                + (restartIn.map { "; trying again in \($0)" } ?? ""),
            fields: [("worker", .number(index)), ("error", .text("\(error)"))]
        ).write(command.logFormat)
    }

    /// Passes the stop on to every worker and waits for all to exit (SIGKILL after the grace).
    func stop() {
        supervisor.stopAndWait()
        loop.closeAll()
    }

    var restarts: Int { supervisor.supervision.restarts }
    var events: UInt64 { sequence - epochBase }  // ids continue from the epoch base
}

/// A topic's history exactly as every worker's hub keeps it, so that a restarted worker can replay
/// what its peers do: the ring holds each event SSE-framed, as a hub does, and is bounded by the same
/// count and bytes (a bound on the relay messages' size would keep fewer events than the hubs do);
/// beside it, the same events as relay messages, which is what a (re)started worker is sent.
struct TopicHistory {
    private var ring = HistoryRing()
    /// The relay messages of the ring's entries, oldest first, from `head` on.
    private var messages: [SharedBytes] = []
    private var head = 0

    mutating func append(
        sequence: UInt64, id: String, framed: SharedBytes, message: SharedBytes, countLimit: Int, byteLimit: Int
    ) {
        ring.append(
            HistoryEntry(sequence: sequence, id: id, bytes: framed), countLimit: countLimit, byteLimit: byteLimit)
        messages.append(message)
        // The ring keeps the newest `ring.count`: drop the messages of those it let go.
        head = messages.count - ring.count
        // Compact once the dropped prefix is most of the array (amortized O(1) per event).
        if head > 64 && head * 2 > messages.count {
            messages.removeFirst(head)
            head = 0
        }
    }

    /// The kept events' sequences and relay messages, oldest first.
    var kept: [(sequence: UInt64, message: SharedBytes)] {
        (0..<ring.count).map { (ring[$0].sequence, messages[head + $0]) }
    }
}
