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
///   it reports every second, or leaves more than `--worker-queue-limit` bytes unread), after a SIGKILL; SIGINT/SIGTERM are passed on, and it exits once all workers have;
/// - SIGHUP replaces the workers (`roll`, see `Supervision.Roll`): every slot's successor starts
///   from the binary on disk, gets the history and listens (it is ready at its first report); then
///   the old workers stop accepting (SIGUSR1) and drain one at a time (SIGTERM). The relay sends every
///   event to every seat in one order meanwhile, the successors' history and the events after it
///   included, so ids stay continuous whichever worker a stream resumes on.
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
    /// The last sums sent to the workers (a new worker gets them with its start).
    private var lastTotals: SharedBytes?

    /// The memory engine's epoch (see `ServerConfiguration.epochBase`): ids continue from it, and
    /// every worker, restarted ones too, is told it.
    let epochBase: UInt64
    /// The kernel's listen-queue counters at the supervisor's start: every worker counts from them.
    let listenQueueBaseline: ListenQueueCounters?

    /// `handover`: what the image before an exec (SIGUSR2) left; ids, history and workers go on from it.
    init(loop: EventLoop, command: Serve, workers count: Int, port: UInt16, handover: SupervisorHandover? = nil) {
        self.loop = loop
        epochBase =
            handover?.epochBase ?? command.epochBase
            ?? ServerConfiguration.epochBase(nanoseconds: WallClock.nanoseconds())
        sequence = handover?.sequence ?? epochBase
        listenQueueBaseline =
            handover.map(\.listenQueueBaseline) ?? command.givenListenQueueBaseline ?? ListenQueueCounters.read()
        self.command = command
        self.port = port
        workers = Array(repeating: Worker(), count: 2 * count)  // one per seat (see Supervisor)
        var policy = RestartPolicy()
        // Each worker drains for the window (and 1.5 s for clients to close) before it exits.
        policy.grace = max(policy.grace, .milliseconds(Int64(command.drainWindow * 1_000) + 2_000))
        // A roll's old workers stop accepting once every successor listens (see Supervision.Roll).
        policy.quiesceSignal = SIGUSR1
        let liveness =
            command.workerLiveness
            ?? Serve.defaultLiveness(workers: count, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        policy.liveness = liveness > 0 ? .seconds(liveness) : nil
        // Never less than two of the largest publications: one such event is queued whole, and
        // drained, by a worker that reads.
        policy.maximumQueuedBytes = max(command.workerQueueLimit, 2 * command.maxBody)
        supervisor = Supervisor(loop: loop, workers: count, policy: policy, delegate: self)
        for entry in handover?.history ?? [] { restore(entry.sequence, entry.message) }
    }

    /// The worker's command line: this one, at the chosen port, with the channel and index (its
    /// slot: a successor has its predecessor's) added.
    func supervisor(_ supervisor: Supervisor, argumentsFor seat: Int) -> [String] {
        let arguments = Serve.commandLine(
            without: ["--workers", "--port", "--epoch-base", "--listen-queue-baseline", "--supervisor-state"])
        return arguments + [
            "--port", String(port), "--worker-index", String(supervisor.supervision.slot(of: seat)),
            "--worker-channel", "0",
            "--epoch-base", String(epochBase),
        ] + (listenQueueBaseline.map { ["--listen-queue-baseline", "\($0.overflows),\($0.drops)"] } ?? [])
    }

    /// Starts every worker and returns once each is listening (it has reported once), or nil with
    /// the reason a worker could not start.
    func start() -> String? {
        if let failure = supervisor.start() { return failure.description }
        // Fifty workers starting at once on two CPUs take a while: 10 s, and 200 ms more per worker.
        let seconds = 10 + supervisor.supervision.active.count / 5
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds) * 1_000_000_000
        while supervisor.supervision.active.contains(where: { workers[$0].statistics.isEmpty }) {
            if MonotonicClock.nanoseconds() > deadline { return "workers did not start listening within \(seconds) s" }
            if exitedAtStart { return "a worker exited at start (see above)" }
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        startTimers()
        return nil
    }

    /// Takes over the workers of the image before the exec, then rolls them (so they run the new
    /// binary too).
    func resume(_ handover: SupervisorHandover) {
        supervisor.adopt(handover.workers)
        startTimers()
        roll()
    }

    private func startTimers() {
        if command.tick > 0 && command.redis == nil {  // under Redis there is no ticker (see Serve)
            _ = loop.scheduleRepeating(every: .seconds(command.tick)) { [unowned self] in
                self.sequenced(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic, from: nil, token: 0)
            }
        }
        _ = loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in self.sendTotals() }
    }

    func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection) {
        workers[index].statistics = []
        // The history first, in publication order across topics, then `start`: the worker listens
        // only after it can answer any Last-Event-ID the others could.
        let kept = history.values.flatMap(\.kept).sorted { $0.sequence < $1.sequence }
        for entry in kept { channel.write(entry.message) }
        channel.write(RelayMessage.start.encoded)
        // The latest sums at once: until its first totals a worker's /metrics would show its own
        // (empty) figures, and a scrape in the meantime would see the whole server drop to zero.
        if let totals = lastTotals { channel.write(totals) }
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
            let first = workers[index].statistics.isEmpty
            workers[index].statistics = values
            // The first report comes once the worker listens with the history: a roll's successor
            // may take over.
            if first { supervisor.ready(index) }
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

    /// Keeps an event of the history handed over across an exec, as `sequenced` kept it.
    private func restore(_ sequence: UInt64, _ bytes: [UInt8]) {
        guard bytes.count > Frame.headerSize,
            let message = bytes.withUnsafeBytes({
                RelayMessage(type: $0[4], payload: UnsafeRawBufferPointer(rebasing: $0[Frame.headerSize...]))
            }),
            case .event(_, let topic, let relayed) = message, let id = relayed.id,
            let framed = try? EventEncoder.encodeShared(relayed.outgoing)
        else { return }
        history[topic, default: TopicHistory()].append(
            sequence: sequence, id: id, framed: framed, message: SharedBytes(bytes),
            countLimit: command.history, byteLimit: command.historyBytes)
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
        let totals = SharedBytes(RelayMessage.totals(sums, workers: reports.count).encoded)
        lastTotals = totals
        supervisor.broadcast(totals)
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

    /// SIGHUP: replaces the workers one at a time (see the type's notes); logged, and ignored while a
    /// roll is under way.
    func roll() {
        let started = supervisor.roll()
        LogLine(
            .info,
            started
                ? "rill serve: rolling restart of \(supervisor.supervision.workers) workers (successors first, then the old ones drain one at a time)"
                : "rill serve: SIGHUP ignored: a rolling restart is under way (or the workers are stopping)",
            fields: [("roll", .text(started ? "started" : "ignored"))]
        ).write(command.logFormat)
    }

    func supervisor(_ supervisor: Supervisor, rollEnded abandoned: Bool) {
        rolls += abandoned ? 0 : 1
        LogLine(
            abandoned ? .error : .info,
            abandoned
                ? "rill serve: rolling restart abandoned: a new worker did not start (the others keep serving)"
                : "rill serve: rolling restart done: \(supervisor.supervision.workers) workers replaced",
            fields: [("roll", .text(abandoned ? "abandoned" : "done"))]
        ).write(command.logFormat)
    }

    /// Rolling restarts completed.
    private(set) var rolls = 0

    /// SIGUSR2 asked for a re-exec; done by `reexec` once the loop has returned.
    var upgradeRequested = false

    /// SIGUSR2: replaces this image with the binary on disk (same pid, same arguments), handing over
    /// the ids, the history and the workers, whose listeners keep the port open throughout; the new
    /// image then rolls the workers. Returns only if that could not be done, with why (this image
    /// goes on serving).
    func reexec(arguments: [String]) -> String {
        guard let workers = supervisor.prepareHandover() else {
            return "a rolling restart or a stop is under way, or a worker's channel did not flush"
        }
        let kept = history.values.flatMap(\.kept).sorted { $0.sequence < $1.sequence }
        let handover = SupervisorHandover(
            epochBase: epochBase, sequence: sequence, listenQueueBaseline: listenQueueBaseline, workers: workers,
            history: kept.map { ($0.sequence, $0.message.array) })
        guard let state = handover.store() else {
            supervisor.resumeAfterFailedHandover(workers)
            return "could not store the state (mkstemp in /tmp: \(String(cString: strerror(errno))))"
        }
        let path = ServeSupervisor.binaryOnDisk
        let argv: [UnsafeMutablePointer<CChar>?] =
            ([path] + arguments + ["--supervisor-state", String(state)]).map { strdup($0) } + [nil]
        flushStandardOutput()
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        argv.forEach { free($0) }
        close(state)
        supervisor.resumeAfterFailedHandover(workers)
        return "exec \(path): \(reason)"
    }

    /// The path this process was started from, as it is on disk now: /proc/self/exe names the
    /// running file, with " (deleted)" once an upgrade has replaced it.
    static var binaryOnDisk: String {
        let running = ChildProcess.executablePath
        return running.hasSuffix(" (deleted)") ? String(running.dropLast(" (deleted)".count)) : running
    }

    /// Passes the stop on to every worker and waits for all to exit (SIGKILL after the grace).
    func stop() {
        supervisor.stopAndWait()
        loop.closeAll()
    }

    var restarts: Int { supervisor.supervision.restarts }
    /// Events sequenced since the epoch began (ids continue from the epoch base).
    var events: UInt64 { sequence - epochBase }
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
